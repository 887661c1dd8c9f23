"""Identical documents shown once (vsearch.query.collapse): the grouping and the paging over it, on made-up rankings
(the same against the server: tests/e2e/test_collapse.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vsearch.query.collapse import collapse, collapsed_page, first_ask
from vsearch.store import Hit


def ranking(keys: list[str | None]) -> tuple[list[Hit], dict[str, str]]:
    """Hits d0, d1, ... ranked in that order, with descending scores; d_i's content key is keys[i] (None: none)."""
    hits = [Hit(i + 1, f"d{i}", 1.0 - i / 1000, {}) for i in range(len(keys))]
    return hits, {f"d{i}": key for i, key in enumerate(keys) if key is not None}


def test_copies_go_under_the_best_ranked_one_and_ranks_close_up() -> None:
    hits, keys = ranking(["a", "a", "b", "a", "c", "b"])
    shown = collapse(hits, keys)
    assert [(h.rank, h.id, h.copies) for h in shown] == [(1, "d0", ("d1", "d3")), (2, "d2", ("d5",)), (3, "d4", ())]
    assert [h.score for h in shown] == [hits[0].score, hits[2].score, hits[4].score]  # the best one's score


def test_a_document_without_a_fingerprint_is_nobodys_copy() -> None:
    hits, keys = ranking([None, None, "a", "a"])
    assert [(h.id, h.copies) for h in collapse(hits, keys)] == [("d0", ()), ("d1", ()), ("d2", ("d3",))]


class Ranking:
    """A fake search: the best n of a fixed ranking, counting what it was asked for."""

    def __init__(self, keys: list[str | None]) -> None:
        self.hits, self.keys = ranking(keys)
        self.asked: list[int] = []

    def fetch(self, n: int) -> list[Hit]:
        self.asked.append(n)
        return self.hits[:n]

    def keys_of(self, ids):
        return {i: self.keys[i] for i in ids if i in self.keys}


def test_a_page_asks_twice_what_it_shows_then_more_while_copies_leave_it_short() -> None:
    search = Ranking([f"k{i}" for i in range(100)])
    assert [h.id for h in collapsed_page(search.fetch, search.keys_of, 0, 5)] == [f"d{i}" for i in range(5)]
    assert search.asked == [10]
    copies = Ranking(["same"] * 30 + [f"k{i}" for i in range(30)])  # 30 copies of one document, then distinct ones
    page = collapsed_page(copies.fetch, copies.keys_of, 0, 5)
    assert [h.id for h in page] == ["d0", "d30", "d31", "d32", "d33"]
    assert page[0].copies == tuple(f"d{i}" for i in range(1, 30))
    assert copies.asked == [10, 20, 40]


def test_a_ranking_shorter_than_the_page_gives_what_there_is() -> None:
    search = Ranking(["a", "a", "b"])
    assert [h.id for h in collapsed_page(search.fetch, search.keys_of, 0, 10)] == ["d0", "d2"]
    assert search.asked == [20]


def test_the_first_ask_is_bounded_by_what_redis_returns() -> None:
    assert first_ask(0, 10) == 20 and first_ask(5, 5) == 20 and first_ask(0, 10, collapse=False) == 10
    assert first_ask(0, 10_000) == 9_999


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.one_of(st.none(), st.sampled_from("abcdefgh")), max_size=60),
       k=st.integers(1, 8), pages=st.integers(1, 4))
def test_pages_are_the_collapsed_ranking_cut_in_order(keys: list[str | None], k: int, pages: int) -> None:
    """Page after page is the one collapsed ranking, cut: no document twice, none skipped, each with every copy
    the ranking holds before the next page's end (copies may sit past what a page asked for)."""
    search = Ranking(keys)
    whole = collapse(search.hits, search.keys)
    seen = []
    for page in range(pages):
        shown = collapsed_page(search.fetch, search.keys_of, page * k, k)
        assert [h.rank for h in shown] == list(range(page * k + 1, page * k + 1 + len(shown)))
        seen += shown
    assert [h.id for h in seen] == [h.id for h in whole[:pages * k]]
    assert len({h.id for h in seen}) == len(seen)
    in_view = set(range(len(keys)))
    for hit, full in zip(seen, whole):
        assert set(hit.copies) <= set(full.copies) and all(int(c[1:]) in in_view for c in hit.copies)
