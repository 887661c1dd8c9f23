"""vsearch/errors.py: the exit codes cron and alerting tell apart, and the messages of the errors with a fixed text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vsearch import errors
from vsearch.errors import (EXIT_FAILURE, EXIT_LOCKED, EXIT_OK, EXIT_PRUNE_REFUSED, EXIT_REJECTED, EXIT_USAGE,
                            ConfigError, ConnectionLost, IndexNotFound, InputError, LockHeld, LockLost, ModelError,
                            PruneRefused, ServerError, StoreError, UsageError, VsearchError)

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_exit_codes_are_the_ones_the_readme_gives() -> None:
    assert (EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_REJECTED, EXIT_PRUNE_REFUSED, EXIT_LOCKED) == (0, 1, 2, 4, 5, 75)
    documented = README.read_text(encoding="utf-8")
    line = documented[documented.index("Exit codes: "):].split("\n\n")[0]
    assert {int(code) for code in re.findall(r"`(\d+)`", line)} == {0, 1, 2, 4, 5, 75}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (VsearchError("x"), EXIT_FAILURE),
        (UsageError("x"), EXIT_USAGE),
        (ConfigError("x"), EXIT_USAGE),  # settings are part of the command line
        (InputError("x"), EXIT_FAILURE),
        (ServerError("x"), EXIT_FAILURE),
        (StoreError("x"), EXIT_FAILURE),
        (ConnectionLost("x"), EXIT_FAILURE),
        (ModelError("x"), EXIT_FAILURE),
        (IndexNotFound("docs"), EXIT_USAGE),  # the command line names something that is not there
        (LockHeld("docs", 0), EXIT_LOCKED),
        (LockLost("docs", 12.0, 11.0, 10.0), EXIT_FAILURE),
        (PruneRefused("x"), EXIT_PRUNE_REFUSED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_error_exits_with_its_code(error, code) -> None:
    assert isinstance(error, VsearchError) and error.exit_code == code


def test_every_error_the_cli_reports_is_a_vsearch_error() -> None:
    classes = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, Exception)]
    assert len(classes) == 12 and all(issubclass(c, VsearchError) for c in classes)
    assert issubclass(ConnectionLost, StoreError) and issubclass(LockLost, StoreError)  # retried like store errors


def test_an_unknown_index_says_how_to_make_it() -> None:
    assert str(IndexNotFound("docs")) == "index 'docs' does not exist: run `vsearch create-index docs` first"


@pytest.mark.parametrize(("waited", "shown"), [(0, "another run is writing to index 'docs': try again later"),
                                               (2.5, "another run is writing to index 'docs' after waiting 2.5 s: "),
                                               (30.0, "after waiting 30 s: ")])
def test_a_held_lock_says_whether_it_waited(waited, shown) -> None:
    message = str(LockHeld("docs", waited))
    assert shown in message and message.endswith("or wait for it with --wait SECONDS")


def test_a_lost_lock_says_when_and_that_nothing_more_was_written() -> None:
    assert str(LockLost("docs", 12.4, 10.6, 10.0)) == (
        "lost the write lock of index 'docs' after 12 s: its lease lapsed, unrenewed for 10.6 s of its 10 s (was the "
        "process paused or starved of CPU?), so another run may hold it; stopped before writing anything more")


def test_a_lock_removed_while_renewed_says_so_rather_than_that_it_lapsed() -> None:
    message = str(LockLost("docs", 40.0, 3.4, 10.0))
    assert "removed or taken while renewed" in message and "lapsed" not in message