"""Every error vsearch reports to a user, in one place.

The CLI turns a VsearchError into one line on stderr and its exit code; anything else is a bug.
"""

from __future__ import annotations


class VsearchError(Exception):
    """A failure the user can act on. `str(error)` is the whole message, hint included."""

    exit_code = 1


class UsageError(VsearchError):
    """The command line itself is wrong (bad option combination or value)."""

    exit_code = 2


class InputError(VsearchError):
    """A record, file or value in the user's input is malformed or missing."""


class ConfigError(VsearchError):
    """Settings (flags, environment, config file) are invalid."""

    exit_code = 2


class ServerError(VsearchError):
    """The embedded Redis Stack server cannot be set up, started or stopped."""


class StoreError(VsearchError):
    """Redis refused, lost or cannot serve a request."""


class IndexNotFound(StoreError):
    """The named index does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(f"index '{name}' does not exist: run `vsearch create-index {name}` first")


class ModelError(VsearchError):
    """A model cannot be loaded or cannot embed the kind of input it was given."""
