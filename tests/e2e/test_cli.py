"""The command line as a whole: help everywhere, python -m, lazy model imports, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from tests.e2e.conftest import ROOT
from vsearch.cli import app

COMMANDS = ["similarity", "encode", "create-index", "drop-index", "list", "info", "load", "query",
            "server start", "server stop", "server status", "server setup", "models prepare", "export"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(cli, command: str) -> None:
    result = cli(*command.split(), "--help")
    assert "Example: vsearch" in result.stdout
    assert "Usage: vsearch" in result.stdout


def test_every_registered_command_is_covered() -> None:
    group = typer.main.get_command(app)
    names = set()
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            names |= {f"{name} {sub}" for sub in command.commands}
        else:
            names.add(name)
    assert names == set(COMMANDS)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_python_dash_m_help() -> None:
    result = subprocess.run([sys.executable, "-m", "vsearch", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "create-index" in result.stdout


def test_commands_that_need_no_model_never_import_torch(products) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from vsearch.cli import app\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['server', 'status'], ['info', '%s'],\n"
        "             ['query', '%s', '--like', '1653', '-k', '2']):\n"
        "    res = r.invoke(app, args)\n"
        "    assert res.exit_code == 0, (args, res.output)\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))\n"
    ) % (products, products)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_errors_are_one_line_without_traceback(cli) -> None:
    result = cli("query", "missing-index", "--vector", "[1,2]", ok=False)
    assert result.exit_code == 2  # the index named does not exist
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    usage = cli("query", "x", "--top", "0", ok=False)
    assert usage.exit_code == 2


def test_stdout_is_data_only(cli, products) -> None:
    result = cli("query", products, "--like", "1653", "-k", "3")
    assert [line[0] for line in result.stdout.splitlines()] == ["{", "{", "{"]
    assert result.stderr == ""


def test_cuda_without_a_gpu_is_one_line(cli) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    result = cli("similarity", "a", "b", "--device", "cuda", ok=False)
    assert result.exit_code == 1
    assert "torch sees no CUDA GPU here: use --device cpu" in result.stderr
