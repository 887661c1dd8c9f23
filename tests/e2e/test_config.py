"""vsearch/config.py through the CLI: the connection errors a user sees, never with a password in them.

Precedence and redact_url themselves: tests/unit/test_config.py.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import one_error_line
from tests.unit.test_config import PASSWORD_FORMS, PASSWORDS, _leaks, _write_config, _written
from vsearch import server

NON_SECRET = ("vsearch: error: cannot reach Redis at invalid Redis URL redis:// rediss:// unix:// user:***@ "
              "127.0.0.1:1/0?db=0&password=*** Error 111 connecting to 127.0.0.1:1. Connection refused. "
              "Error 2 connecting to unix socket: /tmp/vs-none.sock. No such file or directory. "
              "an '@' after the host part; percent-encode '/', '?', '#' and '@' in a user name or password "
              "(%2F, %3F, %23, %40) Port could not be cast to integer value as Invalid value for in connection URL.")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=PASSWORDS.filter(lambda p: len(p.strip()) >= 6), form=st.sampled_from(PASSWORD_FORMS))
def test_the_cli_error_line_never_shows_a_password(cli, password, form) -> None:
    result = cli("info", "x", "--redis-url", _written(form, password), ok=False)
    assert result.exit_code in (1, 2)
    line = one_error_line(result)
    # The CLI folds whitespace; fold the password the same way.
    assert not _leaks(" ".join(password.split()), line, NON_SECRET), line


@pytest.mark.parametrize("url", ["redis://user:12345/x@127.0.0.1:1", "redis://:a?b@127.0.0.1:1",
                                 "redis://127.0.0.1:1/0?password=a@b"])
def test_a_password_read_as_the_host_is_refused(cli, url) -> None:
    """redis-py would connect to host `user`, port 12345, and name them in its error."""
    result = cli("info", "x", "--redis-url", url, ok=False)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "percent-encode" in line and "12345" not in line and "a@b" not in line


@pytest.mark.parametrize("password", ["[0000]", "[secret", "se]cret"])
def test_a_password_urllib_cannot_parse_is_not_quoted(cli, password) -> None:
    # urllib took "[0000]" for an IPv6 host and said "'0000' does not appear to be an IPv4 or IPv6 address",
    # which the error line repeated (found by the property test above).
    result = cli("info", "x", "--redis-url", f"redis://user:{password}@127.0.0.1:1/0", ok=False)
    assert result.exit_code in (1, 2)
    line = one_error_line(result)
    assert password.strip("[]") not in line and "percent-encode" in line, line


# ---------------------------------------------------------------------------------------------------
# Through the CLI: unreachable servers, servers without the search module, broken config files

UNREACHABLE = "redis://user:s3cret@127.0.0.1:1/0"


def assert_unreachable_without_secret(result) -> None:
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "cannot reach Redis" in line and "127.0.0.1:1" in line
    assert "s3cret" not in result.output


def test_unreachable_redis_url_flag(cli) -> None:
    assert_unreachable_without_secret(cli("query", "someindex", "hello", "--redis-url", UNREACHABLE, ok=False))


@pytest.mark.parametrize("variable", ["REDIS_URL", "VSEARCH_REDIS_URL"])
def test_unreachable_redis_url_from_the_environment(cli, monkeypatch, variable) -> None:
    monkeypatch.setenv(variable, UNREACHABLE)
    assert_unreachable_without_secret(cli("query", "someindex", "hello", ok=False))


def test_unreachable_redis_url_from_the_config_file(cli, monkeypatch, tmp_path) -> None:
    config = tmp_path / "config.toml"
    _write_config(config, {"redis_url": UNREACHABLE})
    monkeypatch.setenv("VSEARCH_CONFIG", str(config))
    assert_unreachable_without_secret(cli("info", "someindex", ok=False))


def test_redis_url_with_a_bad_port_is_one_error_line(cli) -> None:
    result = cli("info", "someindex", "--redis-url", "redis://user:s3cret@127.0.0.1:abc/0", ok=False)
    assert result.exit_code in (1, 2)
    one_error_line(result)
    assert "s3cret" not in result.output


def test_invalid_config_file(cli, monkeypatch, tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('redis_url = "redis://unterminated\nmodel = \n', encoding="utf-8")
    monkeypatch.setenv("VSEARCH_CONFIG", str(config))
    result = cli("info", "someindex", ok=False)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert str(config) in line and "config" in line


@pytest.fixture(scope="module")
def plain_redis(vsearch_home: Path):
    """A real redis-server with no modules loaded, on a unix socket only."""
    folder = Path(tempfile.mkdtemp(prefix="vs-"))
    socket = folder / "plain.sock"
    process = subprocess.Popen(
        [str(server.server_binary()), "--port", "0", "--unixsocket", str(socket), "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--dir", str(folder)],
        env=server._server_env(vsearch_home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited {process.returncode}: {process.stderr.read().decode()[-500:]}")
            if socket.exists():
                client = redis.Redis(unix_socket_path=str(socket), socket_connect_timeout=1)
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    pass
                finally:
                    client.close()
            if time.monotonic() > deadline:
                pytest.fail("redis-server did not answer PING within 15 s")
            time.sleep(0.05)
        yield socket
    finally:
        process.kill()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_redis_without_the_search_module(cli, plain_redis) -> None:
    result = cli("info", "x", "--redis-url", f"unix://{plain_redis}", ok=False)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "has no search module" in line
    assert str(plain_redis) in line
