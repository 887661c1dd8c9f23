"""vsearch/output.py: result rows as a table for people and JSONL, JSON or CSV for pipes.

Control characters, NaN and line breaks in stored data must never reach a terminal live, break a JSON parser, or
split one row into two for a reader. (Hostile tables at length: test_hostile_inputs.py.)
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsearch.output import OutputFormat, VectorFormat, default_format, json_line, render, safe_text

ROWS = [{"rank": 1, "id": "a1", "score": 0.123456, "tags": ["x", "y"]},
        {"rank": 2, "id": "b2", "score": 0.5, "title": "Größe, \"quoted\"", "meta": {"k": "ü"}, "none": None}]


def rendered(rows, fmt: OutputFormat, title: str | None = None) -> str:
    out = io.StringIO()
    render(rows, fmt, title=title, stream=out)
    return out.getvalue()


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# ---------------------------------------------------------------------------------------------------
# JSONL and JSON


def test_jsonl_is_one_object_a_line_with_utf8_as_it_is() -> None:
    lines = rendered(ROWS, OutputFormat.jsonl).splitlines()
    assert [json.loads(line) for line in lines] == ROWS
    assert '"title": "Größe, \\"quoted\\""' in lines[1]  # not \u00f6


def test_json_is_one_indented_array() -> None:
    text = rendered(ROWS, OutputFormat.json)
    assert json.loads(text) == ROWS and text.startswith("[\n  {\n") and text.endswith("]\n")
    assert rendered([], OutputFormat.json) == "[]\n"
    assert rendered([], OutputFormat.jsonl) == ""


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("fmt", [OutputFormat.jsonl, OutputFormat.json])
def test_a_score_that_is_not_a_number_is_null_not_a_bare_nan(fmt, value) -> None:
    text = rendered([{"id": "z", "score": value, "nested": [{"x": value}]}], fmt)
    assert "NaN" not in text and "Infinity" not in text
    row = json.loads(text)[0] if fmt is OutputFormat.json else json.loads(text)
    assert row == {"id": "z", "score": None, "nested": [{"x": None}]}


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c", "\n", "\r"])
def test_a_jsonl_row_stays_one_line_for_every_reader(char) -> None:
    line = json_line({"id": f"a{char}b"})
    assert len(line.splitlines()) == 1 and json.loads(line) == {"id": f"a{char}b"}


@settings(max_examples=60, deadline=None)
@given(row=st.dictionaries(st.text(max_size=5), st.text() | st.floats() | st.integers() | st.none(), max_size=4))
def test_any_row_is_one_line_of_valid_json(row) -> None:
    line = json_line(row)
    assert len(line.splitlines()) == 1 and "NaN" not in line.replace('"NaN"', "")
    parsed = json.loads(line)
    assert set(parsed) == set(row)


# ---------------------------------------------------------------------------------------------------
# CSV


def test_csv_has_a_header_of_every_column_in_order_of_appearance() -> None:
    assert csv_rows(rendered(ROWS, OutputFormat.csv)) == [
        ["rank", "id", "score", "tags", "title", "meta", "none"],
        ["1", "a1", "0.1235", '["x", "y"]', "", "", ""],
        ["2", "b2", "0.5000", "", 'Größe, "quoted"', '{"k": "ü"}', ""],
    ]


def test_csv_lines_end_in_lf_and_quote_what_needs_it() -> None:
    text = rendered([{"id": "1", "t": 'a,"b"'}, {"id": "2", "t": "line\nbreak"}], OutputFormat.csv)
    assert text == 'id,t\n1,"a,""b"""\n2,"line\nbreak"\n'


@pytest.mark.parametrize("cell", ["a\rb", "a\r\nb", "\r", "x\r\ny\rz"])
def test_a_cr_in_a_csv_cell_is_quoted_and_kept(cell) -> None:
    text = rendered([{"id": "1", "t": cell}, {"id": "2", "t": "x"}], OutputFormat.csv)
    assert csv_rows(text) == [["id", "t"], ["1", cell], ["2", "x"]]
    assert text.endswith("2,x\n")


@settings(max_examples=60, deadline=None)
@given(cells=st.lists(st.text(), min_size=1, max_size=3))
def test_any_csv_row_reads_back_as_written(cells) -> None:
    row = {f"c{i}": cell for i, cell in enumerate(cells)}
    assert csv_rows(rendered([row], OutputFormat.csv)) == [list(row), cells]


# ---------------------------------------------------------------------------------------------------
# Tables


def test_a_table_shows_the_title_columns_and_scores_to_four_places() -> None:
    text = rendered(ROWS, OutputFormat.table, title="products: red shoes")
    assert text.startswith("products: red shoes")
    for shown in ("rank", "score", "0.1235", "0.5000", '["x", "y"]', '{"k": "ü"}', "Größe"):
        assert shown in text


def test_a_table_without_rows_says_so() -> None:
    # rich prints nothing at all for a table without columns: the caption and the title were lost, and a query
    # without hits printed one blank line.
    text = rendered([], OutputFormat.table, title="products: nothing like this")
    assert "products: nothing like this" in text and "no results" in text


@pytest.mark.parametrize(("text", "shown"), [("a\x1b[31mb", "a\\x1b[31mb"), ("\u202eevil", "\\u202eevil"),
                                             ("c\x9bd", "c\\x9bd"), ("bad\udcff", "bad\\udcff"),
                                             ("tab\there", "tab\\there"), ("zero\u200bwidth", "zero\\u200bwidth"),
                                             ("line\nbreak", "line\nbreak")])
def test_safe_text_writes_control_characters_as_visible_escapes(text, shown) -> None:
    assert safe_text(text) == shown


def test_a_one_line_title_escapes_newlines_too() -> None:
    assert safe_text("a\nb", newlines=False) == "a\\nb"


# ---------------------------------------------------------------------------------------------------
# Formats


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_people_get_a_table_and_pipes_get_jsonl() -> None:
    assert default_format(Terminal()) is OutputFormat.table
    assert default_format(io.StringIO()) is OutputFormat.jsonl


def test_the_format_names_users_type() -> None:
    assert [f.value for f in OutputFormat] == ["table", "jsonl", "json", "csv"]
    assert [f.value for f in VectorFormat] == ["jsonl", "npy", "f32"]
