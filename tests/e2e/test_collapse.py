"""Identical documents shown once, against the real server and model: five copies of one changelog filled a top 5.

What a user notices: a top 5 of five different documents, the copies' ids on the one shown (`copies`), in every mode,
page 2 continuing page 1, and --no-collapse for every copy in its own row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHANGELOG = ("libfoo (2.1-3) unstable; urgency=medium\n\n  * Fix the build on arm64.\n  * New upstream release with "
             "faster parsing of configuration files.\n\n -- Maintainer <m@example.org>  Mon, 02 Dec 2024\n")
OTHERS = {
    "gardening.md": "# Gardening\n\nPlant tomatoes after the last frost and water them in the morning.\n",
    "release-notes.txt": "Version 4 parses configuration files twice as fast and fixes the arm64 build.\n",
    "bread.txt": "Sourdough bread needs a lively starter, flour, water, salt and a long slow rise.\n",
    "trains.txt": "The night train leaves at ten and arrives in the morning, with sleeping cars.\n",
    "guitar.md": "# Guitar\n\nChange the strings every few months and keep the guitar away from heaters.\n",
    "config.rst": "Configuration\n=============\n\nThe parser reads configuration files from /etc and the home folder.\n",
}
COPIES = [f"libfoo{n}/changelog.md" for n in ("", "-dev", "-doc", "-tools", "1")]


@pytest.fixture
def docs(cli, index_name: str, tmp_path: Path) -> str:
    """A folder as /usr/share/doc holds it: five packages with one changelog, and six other texts."""
    folder = tmp_path / "doc"
    for path in COPIES:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(CHANGELOG)
    for name, text in OTHERS.items():
        (folder / name).write_text(text)
    cli("create-index", index_name, "--text", "text", "--tag", "path")
    cli("load", index_name, str(folder))
    return index_name


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
def test_copies_are_one_result_with_the_others_ids(cli, docs: str, mode: str) -> None:
    rows = cli.jsonl("query", docs, "configuration files parsing arm64 build", "-k", "5", "--mode", mode, "-f", "jsonl")
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) and len(ids) == (3 if mode == "text" else 5), ids  # text: 3 hold the words
    changelogs = [r for r in rows if r["id"] in COPIES]
    assert len(changelogs) == 1, ids  # one of the five, not five of them
    shown = changelogs[0]
    assert sorted([shown["id"], *shown["copies"]]) == sorted(COPIES)
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert all("copies" not in r for r in rows if r is not shown)


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_no_collapse_shows_every_copy(cli, docs: str, mode: str) -> None:
    query = ["query", docs, "configuration files parsing arm64 build", "-k", "20", "--mode", mode, "-f", "jsonl"]
    every = cli.jsonl(*query, "--no-collapse")
    assert len(every) == len(COPIES) + len(OTHERS) and all("copies" not in r for r in every)
    ranks = [i for i, r in enumerate(every) if r["id"] in COPIES]
    assert ranks == list(range(ranks[0], ranks[0] + len(COPIES)))  # identical texts score alike: side by side
    assert len(cli.jsonl(*query)) == 1 + len(OTHERS)


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
def test_page_two_continues_page_one(cli, docs: str, mode: str) -> None:
    query = ["query", docs, "configuration files", "--mode", mode, "-f", "jsonl"]
    whole = [r["id"] for r in cli.jsonl(*query, "-k", "6")]
    pages = [r["id"] for r in cli.jsonl(*query, "-k", "3")] + [r["id"] for r in cli.jsonl(*query, "-k", "3",
                                                                                             "--offset", "3")]
    assert pages == whole and len(set(whole)) == len(whole)


def test_like_a_copy_finds_other_documents_not_its_copies(cli, docs: str) -> None:
    rows = cli.jsonl("query", docs, "--like", COPIES[0], "-k", "3", "-f", "jsonl")
    assert len(rows) == 3
    assert sum(r["id"] in COPIES for r in rows) == 1  # the other four copies are one result, at score 1
    first = rows[0]
    assert first["id"] in COPIES and abs(first["score"] - 1.0) < 1e-5 and len(first["copies"]) == 3


def test_a_batch_collapses_each_query(cli, docs: str, tmp_path: Path) -> None:
    batch = tmp_path / "queries.txt"
    batch.write_text("arm64 build fix\nsourdough starter\n")
    rows = cli.jsonl("query", docs, "--batch", str(batch), "-k", "4", "--mode", "vector", "-f", "jsonl")
    for query in ("arm64 build fix", "sourdough starter"):
        ids = [r["id"] for r in rows if r["query"] == query]
        assert len(ids) == 4 and sum(i in COPIES for i in ids) == 1


def test_a_table_counts_the_copies(cli, docs: str) -> None:
    result = cli("query", docs, "arm64 build fix", "-k", "3", "--mode", "vector", "--return", "path", "-f", "table")
    assert "copies" in result.stdout and "4:" in result.stdout and "libfoo" in result.stdout


def test_explain_says_how_copies_are_shown_once(cli, docs: str) -> None:
    shown = cli("query", docs, "arm64", "-k", "5", "--mode", "vector", "--explain").stdout
    assert "'K' 10" in shown or " K 10 " in shown
    assert "identical documents shown once" in shown and "hits 1 to 5 shown" in shown
    plain = cli("query", docs, "arm64", "-k", "5", "--mode", "vector", "--explain", "--no-collapse").stdout
    assert " K 5 " in plain and "identical" not in plain
