"""The command line as a whole, without running a command: every registered command is one the tests know.

Help for each of them, python -m, lazy model imports and one-line errors: tests/e2e/test_cli.py, which takes
COMMANDS from here.
"""

from __future__ import annotations

import typer

from vsearch.cli import app

COMMANDS = ["similarity", "encode", "create-index", "drop-index", "list", "info", "load", "query",
            "server start", "server stop", "server status", "server setup", "models prepare", "export"]


def test_every_registered_command_is_covered() -> None:
    group = typer.main.get_command(app)
    names = set()
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            names |= {f"{name} {sub}" for sub in command.commands}
        else:
            names.add(name)
    assert names == set(COMMANDS)
