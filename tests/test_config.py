"""vsearch/config.py: setting precedence, URL redaction, and the connection errors a user sees."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import one_error_line
from vsearch import server
from vsearch.config import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, redact_url, resolve

# ---------------------------------------------------------------------------------------------------
# Precedence: flag > VSEARCH_* (then REDIS_URL for the URL) > config file > default

LAYERS = {
    # setting: (resolve() keyword, environment variables in order, config-file key)
    "redis_url": ("redis_url", ["VSEARCH_REDIS_URL", "REDIS_URL"], "redis_url"),
    "model": ("model", ["VSEARCH_MODEL"], "model"),
    "image_model": ("image_model", ["VSEARCH_IMAGE_MODEL"], "image_model"),
    "home": ("home", ["VSEARCH_HOME"], "home"),
    "device": ("device", ["VSEARCH_DEVICE"], "device"),
}


def _cases() -> list:
    cases = []
    for setting, (_, variables, _) in LAYERS.items():
        sources = ["flag", *variables, "file", "default"]
        for i, winner in enumerate(sources):
            cases.append(pytest.param(setting, sources[i:], winner, id=f"{setting}-{winner}"))
    return cases


def _value(setting: str, source: str) -> str:
    if setting == "home":
        return f"/srv/home-from-{source.lower()}"
    if setting == "redis_url":
        return f"redis://{source.lower().replace('_', '-')}.example:6379/0"
    return f"{setting}-from-{source.lower()}"


def _write_config(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()), encoding="utf-8")


@pytest.mark.parametrize(("setting", "present", "winner"), _cases())
def test_precedence(tmp_path, setting, present, winner) -> None:
    keyword, _, file_key = LAYERS[setting]
    config = tmp_path / "config.toml"
    env = {"VSEARCH_CONFIG": str(config), "XDG_DATA_HOME": str(tmp_path / "data")}
    flags: dict[str, object] = {}
    file_values: dict[str, str] = {}
    for source in present:
        if source == "flag":
            flags[keyword] = Path(_value(setting, source)) if setting == "home" else _value(setting, source)
        elif source == "file":
            file_values[file_key] = _value(setting, source)
        elif source != "default":
            env[source] = _value(setting, source)
    _write_config(config, file_values)

    settings = resolve(env=env, **flags)
    got = getattr(settings, setting)
    if winner == "default":
        expected = {"redis_url": None, "model": DEFAULT_TEXT_MODEL, "image_model": DEFAULT_IMAGE_MODEL,
                    "home": tmp_path / "data" / "vsearch", "device": None}[setting]
    elif setting == "home":
        expected = Path(_value(setting, winner))
    else:
        expected = _value(setting, winner)
    assert got == expected
    if setting == "redis_url":
        assert settings.embedded is (winner == "default")


def test_no_redis_url_anywhere_means_the_embedded_server(tmp_path) -> None:
    settings = resolve(env={"VSEARCH_CONFIG": str(tmp_path / "absent.toml"), "XDG_DATA_HOME": str(tmp_path)})
    assert settings.redis_url is None and settings.embedded
    assert settings.home == tmp_path / "vsearch"


def test_empty_values_fall_through(tmp_path) -> None:
    """An empty variable is not a setting; an empty redis_url in the file means the embedded server."""
    config = tmp_path / "config.toml"
    _write_config(config, {"redis_url": "", "model": "file-model"})
    env = {"VSEARCH_CONFIG": str(config), "VSEARCH_REDIS_URL": "", "REDIS_URL": "redis://plain:6379",
           "VSEARCH_MODEL": "", "XDG_DATA_HOME": str(tmp_path)}
    settings = resolve(env=env)
    assert settings.redis_url == "redis://plain:6379"
    assert settings.model == "file-model"
    del env["REDIS_URL"]
    assert resolve(env=env).embedded


def test_home_from_the_config_file_expands_tilde(tmp_path) -> None:
    config = tmp_path / "config.toml"
    _write_config(config, {"home": "~/vsearch-data"})
    assert resolve(env={"VSEARCH_CONFIG": str(config)}).home == Path.home() / "vsearch-data"


# ---------------------------------------------------------------------------------------------------
# redact_url


@pytest.mark.parametrize(
    ("url", "redacted", "secret"),
    [
        ("redis://user:pass@host:6379/0", "redis://user:***@host:6379/0", "pass"),
        ("rediss://:pass@host", "rediss://:***@host", "pass"),
        ("rediss://default:s3cr%40t@cache.example.com:6380/2", "rediss://default:***@cache.example.com:6380/2", "s3cr"),
        ("redis://u:hunter2@[::1]:6379", "redis://u:***@[::1]:6379", "hunter2"),
    ],
)
def test_redact_url_hides_the_password(url, redacted, secret) -> None:
    assert redact_url(url) == redacted
    assert secret not in redact_url(url)


@pytest.mark.parametrize(
    "url",
    ["redis://localhost:6379/0", "redis://user@host:6379", "rediss://cache.example.com", "unix:///tmp/redis.sock",
     "redis://[::1]:6379/1"],
)
def test_redact_url_leaves_urls_without_a_password_alone(url) -> None:
    assert redact_url(url) == url


@pytest.mark.parametrize("url", ["redis://user:s3cret@host:abc/0", "redis://user:s3cret@host:99999/0"])
def test_redact_url_survives_a_bad_port(url) -> None:
    assert "s3cret" not in redact_url(url)


def test_redact_url_hides_a_password_in_the_query() -> None:
    assert "s3cret" not in redact_url("unix:///tmp/redis.sock?db=0&password=s3cret")


def test_redact_url_hides_a_password_with_a_slash() -> None:
    assert "cret" not in redact_url("redis://u:s3/cret@127.0.0.1:1/0")


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
