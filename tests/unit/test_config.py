"""vsearch/config.py: setting precedence and URL redaction (the connection errors a user sees, through the CLI:
tests/e2e/test_config.py, which shares the password strategies of this file)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsearch.config import (DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, check_redis_url, config_path, has_userinfo,
                            redact_url, resolve)
from vsearch.errors import ConfigError

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


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://user:12345/x@127.0.0.1:1", "redis://user:***@127.0.0.1:1"),
        ("redis://user:pa?ss@127.0.0.1:1/0", "redis://user:***@127.0.0.1:1/0"),
        ("redis://user:pa#ss@127.0.0.1:1/0", "redis://user:***@127.0.0.1:1/0"),
        ("redis://127.0.0.1:1/0?db=2&password=a@b&protocol=2", "redis://127.0.0.1:***@***&protocol=2"),
        ("unix://user:pw@/tmp/redis.sock?db=1&password=pw2", "unix://user:***@/tmp/redis.sock?db=1&password=***"),
        ("redis://h:1/0?ssl_password=pw&ssl_cert_reqs=none#frag", "redis://h:1/0?ssl_password=***&ssl_cert_reqs=none"),
    ],
)
def test_redact_url_by_structure(url, redacted) -> None:
    assert redact_url(url) == redacted


# Every way a password gets into a URL that redis-py reads; {pw} is the password as written there.
PASSWORD_FORMS = [
    "redis://user:{raw}@127.0.0.1:1/0",
    "redis://user:{encoded}@127.0.0.1:1/0",
    "rediss://:{raw}@127.0.0.1:1",
    "rediss://:{encoded}@127.0.0.1:1",
    "unix://user:{raw}@/tmp/vs-none.sock?db=0",
    "unix://user:{encoded}@/tmp/vs-none.sock",
    "redis://127.0.0.1:1/0?password={encoded}",
    "redis://127.0.0.1:1/0?db=0&password={raw}",
    "unix:///tmp/vs-none.sock?db=0&password={plus}",
]
# Any printable text, with the characters that have a meaning in a URL drawn often.
PASSWORDS = st.text(st.one_of(st.sampled_from("/#?@:%&=+ "), st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))),
                    min_size=1, max_size=24)


def _written(form: str, password: str) -> str:
    return form.format(raw=password, encoded=quote(password, safe=""), plus=quote_plus(password))


def _forms(password: str) -> set[str]:
    """The password as a reader might recognise it: as typed, percent-encoded, percent-decoded."""
    return {password, quote(password, safe=""), quote_plus(password), unquote(password)} - {""}


def _leaks(password: str, shown: str, non_secret: str) -> list[str]:
    """Parts of the password (4 characters or more, or all of a shorter one) that `shown` gives away:
    those in it that are not also in the text any password would show."""
    found = []
    for secret in _forms(password):
        size = min(4, len(secret))
        parts = {secret[i:i + n] for n in range(size, len(secret) + 1) for i in range(len(secret) - n + 1)}
        found += [part for part in parts if part in shown and part not in non_secret]
    return found


@settings(max_examples=100, deadline=None)
@given(password=PASSWORDS, form=st.sampled_from(PASSWORD_FORMS))
def test_redact_url_never_shows_a_password(password, form) -> None:
    shown = redact_url(_written(form, password))
    # What any password shows: the URL's syntax around the hidden part. A secret that is part of that
    # (a one-character password "@") tells nothing about the real one.
    skeleton = "\n".join(redact_url(_written(form, neutral)) for neutral in ["", *"@/?#&=:%"])
    assert not _leaks(password, shown, skeleton), shown


# ---------------------------------------------------------------------------------------------------
# Where the config file is, and what a broken one says


def test_the_config_file_is_found_by_vsearch_config_then_xdg_then_home() -> None:
    assert config_path({"VSEARCH_CONFIG": "~/my.toml", "XDG_CONFIG_HOME": "/x"}) == Path.home() / "my.toml"
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/vsearch/config.toml")
    assert config_path({"VSEARCH_CONFIG": "", "XDG_CONFIG_HOME": ""}) == Path.home() / ".config/vsearch/config.toml"


def test_the_environment_given_is_the_only_one_read(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VSEARCH_MODEL", "from-the-process")
    monkeypatch.setenv("REDIS_URL", "redis://process:6379")
    settings = resolve(env={"VSEARCH_CONFIG": str(tmp_path / "absent.toml"), "XDG_DATA_HOME": str(tmp_path)})
    assert settings.model == DEFAULT_TEXT_MODEL and settings.redis_url is None


def test_config_values_that_are_not_strings_are_taken_as_text(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('home = "~/data"\nmodel = 7\ndevice = "cuda:1"\n', encoding="utf-8")
    settings = resolve(env={"VSEARCH_CONFIG": str(config)})
    assert (settings.home, settings.model, settings.device) == (Path.home() / "data", "7", "cuda:1")


def test_a_folder_named_as_the_config_file_is_no_config(tmp_path) -> None:
    assert resolve(env={"VSEARCH_CONFIG": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}).model == DEFAULT_TEXT_MODEL


@pytest.mark.parametrize(("body", "reason"), [(b'model = "unterminated\n', "at line 1"),
                                              (b"model = \n", "Invalid value (at line 1, column 9)"),
                                              (b'model = "\xff"\n', "can't decode byte 0xff")],
                         ids=["unterminated", "no-value", "not-utf8"])
def test_a_broken_config_file_is_a_config_error_naming_it(tmp_path, body, reason) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(body)
    with pytest.raises(ConfigError) as caught:
        resolve(env={"VSEARCH_CONFIG": str(config)})
    assert str(caught.value).startswith(f"cannot read config file {config}: ") and reason in str(caught.value)
    assert caught.value.exit_code == 2


# ---------------------------------------------------------------------------------------------------
# URLs whose password would be read as a host, and redaction of any text


@pytest.mark.parametrize("url", ["redis://u:p@h:1/0", "unix:///s.sock", "redis://user@host", "h:1", "redis://:p@h",
                                 "rediss://h?ssl_password=x&db=2", "redis://u:p%2Fq@h"])
def test_a_url_redis_py_reads_as_written_is_accepted(url) -> None:
    check_redis_url(url)


@pytest.mark.parametrize("url", ["redis://user:12345/x@127.0.0.1:1", "redis://:a?b@h", "redis://:a#b@h",
                                 "redis://h:1/0?password=x@y"])
def test_a_url_with_an_at_after_the_host_part_is_refused_without_its_secret(url) -> None:
    with pytest.raises(ConfigError) as caught:
        check_redis_url(url)
    message = str(caught.value)
    assert message.startswith(f"invalid Redis URL {redact_url(url)}: an '@' after the host part; percent-encode")
    assert caught.value.exit_code == 2
    for secret in ("12345/x", "a?b", "a#b", "x@y"):
        assert secret not in message


@pytest.mark.parametrize(("url", "has"), [("redis://u:p@h", True), ("redis://u@h", True), ("redis://h", False),
                                          ("redis://h/0?password=a@b", False), ("u:p@h", True)])
def test_has_userinfo_looks_before_the_host_only(url, has) -> None:
    assert has_userinfo(url) is has


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://h/0?a=1&b&c=2#frag", "redis://h/0?a=***&***&c=***"),  # every argument but the settings
        ("redis://h?%64b=2", "redis://h?%64b=2"),  # `db`, percent-encoded, is still the setting
        ("redis://h?pass word=1", "redis://h?***"),
        ("redis://u:p@h#x@y", "redis://u:***@y"),  # the last '@' ends the user part, whatever comes before
        ("redis://user:pw@h:6379?db=3&protocol=3", "redis://user:***@h:6379?db=3&protocol=3"),
    ],
)
def test_redact_url_keeps_only_what_is_surely_not_a_secret(url, redacted) -> None:
    assert redact_url(url) == redacted


@settings(max_examples=60, deadline=None)
@given(url=st.text(st.sampled_from("redis:/u@p?#&=%h1.[]~ ") | st.characters(), max_size=40))
def test_redact_url_takes_any_text_and_its_output_is_already_redacted(url) -> None:
    shown = redact_url(url)
    assert redact_url(shown) == shown
    if "@" not in url and "?" not in url and "#" not in url:
        assert shown == url  # nothing that could hold a secret: shown as written
