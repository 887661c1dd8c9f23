"""Every error vsearch reports to a user, in one place.

The CLI turns a VsearchError into one line on stderr and its exit code; anything else is a bug.
"""

from __future__ import annotations


# Exit codes that cron and alerting can tell apart (README, `vsearch load --help`).
EXIT_OK = 0
EXIT_FAILURE = 1  # a runtime failure: what was committed before it is intact
EXIT_USAGE = 2
EXIT_REJECTED = 4  # the run finished, but some records were rejected (see --rejects)
EXIT_PRUNE_REFUSED = 5  # --prune (or --rebuild --prune) would delete more than --prune-limit: nothing was deleted
EXIT_LOCKED = 75  # another run holds the index's lock (EX_TEMPFAIL: try again later)


class VsearchError(Exception):
    """A failure the user can act on. `str(error)` is the whole message, hint included."""

    exit_code = EXIT_FAILURE


class UsageError(VsearchError):
    """The command line itself is wrong (bad option combination or value)."""

    exit_code = EXIT_USAGE


class InputError(VsearchError):
    """A record, file or value in the user's input is malformed or missing."""


class ConfigError(VsearchError):
    """Settings (flags, environment, config file) are invalid."""

    exit_code = 2


class ServerError(VsearchError):
    """The embedded Redis Stack server cannot be set up, started or stopped."""


class StoreError(VsearchError):
    """Redis refused, lost or cannot serve a request."""


class ConnectionLost(StoreError):
    """The connection to Redis broke mid-command: the work may be retried once the server is back."""


class IndexNotFound(StoreError):
    """The named index does not exist: the command line names something that is not there, a usage error."""

    exit_code = EXIT_USAGE

    def __init__(self, name: str) -> None:
        super().__init__(f"index '{name}' does not exist: run `vsearch create-index {name}` first")


class ModelError(VsearchError):
    """A model cannot be loaded or cannot embed the kind of input it was given."""


class LockHeld(VsearchError):
    """Another run is writing to the index."""

    exit_code = EXIT_LOCKED

    def __init__(self, name: str, waited_s: float) -> None:
        waited = f" after waiting {waited_s:g} s" if waited_s else ""
        super().__init__(f"another run is writing to index '{name}'{waited}: try again later, or wait for it "
                         "with --wait SECONDS")


class LockLost(StoreError):
    """This run's lock on the index is gone (its lease lapsed, or the key was removed), so another run may be
    writing: it stops before writing more."""

    def __init__(self, name: str, held_s: float, longest_gap_s: float, ttl_s: float) -> None:
        if longest_gap_s >= ttl_s:
            why = (f"its lease lapsed, unrenewed for {longest_gap_s:.1f} s of its {ttl_s:g} s "
                   "(was the process paused or starved of CPU?)")
        else:
            why = "it was removed or taken while renewed (a FLUSHALL, a server restarted without its data, another tool?)"
        super().__init__(f"lost the write lock of index '{name}' after {held_s:.0f} s: {why}, so another run may "
                         "hold it; stopped before writing anything more")


class PruneRefused(VsearchError):
    """--prune would delete more of the index than --prune-limit allows: the input looks truncated."""

    exit_code = EXIT_PRUNE_REFUSED
