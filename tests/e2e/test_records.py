"""vsearch/records.py through the CLI: the errors a user sees (the readers themselves: tests/unit/test_records.py)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import one_error_line


def test_unknown_format_through_the_cli(cli, tmp_path) -> None:
    path = tmp_path / "notes.dat"
    path.write_text("just some words\n", encoding="utf-8")
    result = cli("load", "someindex", path, ok=False)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--format" in line and str(path) in line


def test_encode_numbers_text_lines_by_line(cli, tmp_path) -> None:
    path = tmp_path / "texts.txt"
    path.write_text("alpha\n\n\nbeta\n", encoding="utf-8")
    rows = cli.jsonl("encode", path)
    assert [row["id"] for row in rows] == ["1", "4"]


def test_missing_file_through_the_cli(cli, tmp_path) -> None:
    path = tmp_path / "missing.txt"
    result = cli("similarity", "hello", "--file", path, ok=False)
    assert result.exit_code == 1
    assert one_error_line(result) == f"vsearch: error: file not found: {path}"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.jsonl", '{"id": "1", "text": "ok"}\n{"id": "2", "text": \n', "line 2: malformed JSON"),
        ("bad.csv", "id,text\n1,ok\n2,too,many\n", "line 3: 3 fields, but the header has 2"),
        ("bad.json", '[\n {"id": "1", "text": "ok"},\n 7\n]', "line 3: expected a JSON object, got int"),
    ],
    ids=["jsonl", "csv", "json"],
)
def test_malformed_input_through_the_cli(cli, tmp_path, name, content, expected) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = cli("encode", path, "--field", "text", ok=False)
    assert result.exit_code == 1
    assert one_error_line(result).startswith(f"vsearch: error: {path} {expected}")

