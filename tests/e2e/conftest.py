"""Test fixtures: a real embedded Redis Stack on a temporary socket, started by vsearch's own code."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ["HF_HUB_OFFLINE"] = "1"
for variable in ("REDIS_URL", "VSEARCH_REDIS_URL", "VSEARCH_MODEL", "VSEARCH_IMAGE_MODEL", "VSEARCH_DEVICE"):
    os.environ.pop(variable, None)

from vsearch import server  # noqa: E402
from vsearch.cli import app  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="session")
def vsearch_home() -> Iterator[Path]:
    """vsearch's data directory for the whole run; short, because a unix socket path has a length limit."""
    home = Path(tempfile.mkdtemp(prefix="vs-"))
    os.environ["VSEARCH_HOME"] = str(home)
    os.environ["VSEARCH_CONFIG"] = str(home / "no-config.toml")
    server.ensure_running(home)
    yield home
    server.stop(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_client(vsearch_home: Path):
    client = server.client(vsearch_home, protocol=2)
    yield client
    client.close()


class Cli:
    """Runs vsearch commands in-process, the way a user types them; models stay loaded between calls."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | bytes | None = None, ok: bool = True):
        result = self.runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False, prog_name="vsearch")
        if ok and result.exit_code != 0:
            raise AssertionError(f"vsearch {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}")
        return result

    def jsonl(self, *args: str, input: str | None = None) -> list[dict]:
        result = self(*args, input=input)
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def one_error_line(result) -> str:
    """The single line a failed command printed on stderr; fails the test if there is more, or a traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vsearch: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


MODEL_LIBRARIES = ("torch", "sentence_transformers", "transformers")


def run_in_fresh_process(vsearch_home: Path, args: list[str], stdin: str = "") -> tuple[str, str]:
    """Run `vsearch ARGS` in a fresh interpreter: its first line of stdout, and which model libraries it imported
    (e.g. "[]"), so a test can tell a torch-free path from one that only looks fast."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from vsearch.cli import app\n"
        f"res = CliRunner().invoke(app, {args!r}, input={stdin!r})\n"
        "assert res.exit_code == 0, res.output\n"
        "print(res.stdout.splitlines()[0])\n"
        f"print(sorted(m for m in {MODEL_LIBRARIES!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "VSEARCH_HOME": str(vsearch_home)})
    assert result.returncode == 0, result.stderr
    first, imported = result.stdout.splitlines()
    return first, imported


@pytest.fixture(scope="session")
def cli(vsearch_home: Path) -> Cli:
    return Cli()


@pytest.fixture
def index_name() -> str:
    """A fresh index name (and so a fresh key prefix) for each test."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def products(cli: Cli) -> str:
    """The sample catalogue loaded once (text and image vectors, tag/text/numeric fields), shared read-only."""
    name = "sample-products"
    cli("create-index", name, "--tag", "gender", "--tag", "articleType", "--text", "productDisplayName",
        "--numeric", "year", "--image")
    cli("load", name, SAMPLE / "products.csv", "--text-field", "productDisplayName", "--image-field", "image")
    return name
