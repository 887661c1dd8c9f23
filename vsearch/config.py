"""One settings resolver: flag > VSEARCH_* environment variable > config file > default.

`REDIS_URL`, the Redis ecosystem's variable, is honoured right after `VSEARCH_REDIS_URL`. No
`redis_url` anywhere means "use the embedded Redis Stack server that vsearch manages".
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vsearch.errors import ConfigError

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_IMAGE_MODEL = "efficientnet-lite0"


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


def redact_url(url: str) -> str:
    """The URL with its password (in the userinfo or a password= argument) replaced, safe to print or log.

    Works on the text rather than a parsed URL, so a malformed port or an unencoded '/' in a password
    cannot make it fail or let the secret through.
    """
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, hostpart = rest.rpartition("@")
        if ":" in userinfo:
            rest = f"{userinfo.split(':', 1)[0]}:***@{hostpart}"
    rest = re.sub(r"([?&]password=)[^&#]*", r"\g<1>***", rest, flags=re.IGNORECASE)
    return f"{scheme}{sep}{rest}"
