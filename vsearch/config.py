"""One settings resolver: flag > VSEARCH_* environment variable > config file > default.

`REDIS_URL`, the Redis ecosystem's variable, is honoured right after `VSEARCH_REDIS_URL`. No
`redis_url` anywhere means "use the embedded Redis Stack server that vsearch manages".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import unquote_plus

from vsearch.errors import ConfigError

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
# EfficientNet-Lite0 with its feature map GeM-pooled (p=3); "efficientnet-lite0" (mean-pooled) stays loadable
# for the indexes made with it (see models.CNN_IMAGE_MODELS).
DEFAULT_IMAGE_MODEL = "efficientnet-lite0-gem"


class Engine(str, Enum):
    local = "local"
    ray = "ray"


@dataclass(frozen=True)
class EngineOptions:
    """Where the models of `encode` and `load` run (`--engine`): this process, or a pool of Ray actors."""

    engine: Engine = Engine.local
    address: str | None = None  # Ray: None starts Ray in local mode on this machine
    workers: int = 1
    gpus_per_worker: float = 0.0

    @property
    def ray(self) -> bool:
        return self.engine is Engine.ray


@dataclass(frozen=True)
class Settings:
    redis_url: str | None
    home: Path
    model: str
    image_model: str
    device: str | None

    @property
    def embedded(self) -> bool:
        return self.redis_url is None


def config_path(env: Mapping[str, str]) -> Path:
    if env.get("VSEARCH_CONFIG"):
        return Path(env["VSEARCH_CONFIG"]).expanduser()
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "vsearch" / "config.toml"


def read_config_file(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    import tomllib  # only when there is a file to read: most runs have none, and every command resolves settings

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


def resolve(
    *,
    redis_url: str | None = None,
    home: Path | None = None,
    model: str | None = None,
    image_model: str | None = None,
    device: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting once. Flags are passed as None when the user did not give them."""
    env = os.environ if env is None else env
    file = read_config_file(config_path(env))

    def pick(flag: object, *names: str, key: str, default: object = None) -> object:
        if flag is not None:
            return flag
        for name in names:
            if env.get(name):
                return env[name]
        return file.get(key, default)

    data_home = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "vsearch"
    return Settings(
        redis_url=_optional_str(pick(redis_url, "VSEARCH_REDIS_URL", "REDIS_URL", key="redis_url")),
        home=Path(str(pick(home, "VSEARCH_HOME", key="home", default=data_home))).expanduser(),
        model=str(pick(model, "VSEARCH_MODEL", key="model", default=DEFAULT_TEXT_MODEL)),
        image_model=str(pick(image_model, "VSEARCH_IMAGE_MODEL", key="image_model", default=DEFAULT_IMAGE_MODEL)),
        device=_optional_str(pick(device, "VSEARCH_DEVICE", key="device")),
    )


def _optional_str(value: object) -> str | None:
    return None if value in (None, "") else str(value)


# Query arguments whose values are settings, never secrets; every other value is hidden.
PUBLIC_QUERY_KEYS = frozenset({
    "db", "protocol", "timeout", "socket_timeout", "socket_connect_timeout", "socket_read_size", "socket_keepalive",
    "retry_on_timeout", "max_connections", "health_check_interval", "ssl_check_hostname", "ssl_cert_reqs",
    "ssl_min_version", "ssl_ca_certs", "ssl_ca_path", "client_name", "decode_responses", "encoding",
})
HIDDEN = "***"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _netloc_end(rest: str) -> int:
    """Where urllib (and so redis-py) ends the host part of `rest`, a URL after its scheme: at the first '/',
    '?' or '#'."""
    return min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))


def has_userinfo(url: str) -> bool:
    """Whether the URL carries a user name or password before its host (`user:password@host`)."""
    scheme = match.group(0) if (match := _SCHEME.match(url)) else ""
    rest = url[len(scheme):]
    return "@" in rest[:_netloc_end(rest)]


def redact_url(url: str) -> str:
    """The URL with everything that could be a password hidden, safe to print or log.

    Works on the structure of the text rather than on a parse, and assumes the worst of each ambiguity:
    a password holding an unencoded '/', '?', '#' or '@' must not move the secret into the "host".
    What stays visible: the scheme, a user name, the host, port and path after the last '@', and the
    values of query arguments that are settings (db=, protocol=...).
    """
    scheme = match.group(0) if (match := _SCHEME.match(url)) else ""
    rest = url[len(scheme):]
    head, at, tail = rest.rpartition("@")
    shown = f"{_redact_userinfo(head)}@" if at else ""
    if at and _query_value_continues(rest, len(head)):
        # The '@' sits inside a query argument's value (`?password=a@b`): the text after it belongs to
        # that value until the next argument.
        _, amp, tail = tail.partition("&")
        shown += HIDDEN + amp
    return scheme + shown + _redact_query(tail)


def _redact_userinfo(userinfo: str) -> str:
    """`user:password` keeps the user; anything else that is not plainly a user name is hidden."""
    user, colon, _ = userinfo.partition(":")
    if any(c in user for c in "/?#&=@%") and user != "":
        return HIDDEN  # not a clean user name: part of a password or of a query may hide in it
    return f"{user}:{HIDDEN}" if colon else user


def _query_value_continues(rest: str, at: int) -> bool:
    """Whether the '@' at `rest[at]` lies in a query argument that has a value, as urllib splits it."""
    netloc_end = _netloc_end(rest)
    if at < netloc_end:
        return False
    before = rest[netloc_end:at]
    query = before.find("?")
    if query < 0 or "#" in before:
        return False
    argument = before[query + 1:].rpartition("&")[2] + rest[at:].partition("&")[0]
    return "=" in argument


def _redact_query(text: str) -> str:
    """Hide every query argument but the public settings; drop the fragment, which Redis never uses."""
    base, question, query = text.partition("#")[0].partition("?")
    if not question:
        return base
    shown = []
    for argument in query.split("&"):
        key, equals, _ = argument.partition("=")
        if equals and unquote_plus(key) in PUBLIC_QUERY_KEYS:
            shown.append(argument)
        elif equals and key.isidentifier():
            shown.append(f"{key}={HIDDEN}")
        else:
            shown.append(HIDDEN)
    return f"{base}?{'&'.join(shown)}"


def check_redis_url(url: str) -> None:
    """Refuse a URL whose password would be read as a host, port or path.

    urllib (and so redis-py) ends the host part at the first '/', '?' or '#': with such a character
    unencoded in the password, redis-py would connect to a "host" made of the password's first part and
    put it in its error messages.
    """
    scheme = match.group(0) if (match := _SCHEME.match(url)) else ""
    rest = url[len(scheme):]
    if "@" in rest[_netloc_end(rest):]:
        raise ConfigError(
            f"invalid Redis URL {redact_url(url)}: an '@' after the host part; percent-encode '/', '?', '#' and '@' "
            "in a user name or password (%2F, %3F, %23, %40)"
        )
