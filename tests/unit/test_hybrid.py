"""Fusion functions of hybrid mode (pure: no server, no model). Text and hybrid mode on the real server:
tests/e2e/test_hybrid.py, which shares `cases` of this file."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsearch.query.hybrid import linear, min_max, rrf


def cases(n: int) -> settings:
    # derandomized: the same cases every run, so a failure here is reproducible and never flaky
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                    database=None)


# ---------------------------------------------------------------------------------------------------
# Fusion functions


def test_rrf_adds_reciprocal_ranks() -> None:
    fused = dict(rrf([["a", "b", "c"], ["c", "a"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["b"] == pytest.approx(1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert [doc for doc, _ in rrf([["a", "b", "c"], ["c", "a"]], k=60)] == ["a", "c", "b"]


def test_min_max_rescales_to_the_unit_interval() -> None:
    assert min_max([3.0, 1.0, 2.0]) == [1.0, 0.0, 0.5]
    assert min_max([0.7]) == [1.0]  # a lone candidate is its list's best
    assert min_max([2.0, 2.0]) == [1.0, 1.0]
    assert min_max([]) == []


def test_linear_is_a_convex_combination_of_normalised_scores() -> None:
    vector = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    text = [("c", 12.0), ("d", 8.0), ("a", 4.0)]
    fused = dict(linear(vector, text, alpha=0.25))
    assert fused["a"] == pytest.approx(0.25 * 1.0 + 0.75 * 0.0)
    assert fused["b"] == pytest.approx(0.25 * 0.5)  # absent from the text list: 0 there
    assert fused["c"] == pytest.approx(0.25 * 0.0 + 0.75 * 1.0)
    assert fused["d"] == pytest.approx(0.75 * 0.5)
    assert [doc for doc, _ in linear(vector, text, alpha=1.0)][:3] == ["a", "b", "c"]


ranked_lists = st.lists(st.tuples(st.sampled_from("abcdefghij"), st.floats(-50, 50)), max_size=10).map(
    lambda pairs: sorted(dict(pairs).items(), key=lambda p: -p[1]))


@cases(100)
@given(vector=ranked_lists, text=ranked_lists, alpha=st.floats(0, 1), k=st.integers(0, 100))
def test_fusions_rank_the_union_best_first(vector, text, alpha, k) -> None:
    union = {d for d, _ in vector} | {d for d, _ in text}
    for fused in (linear(vector, text, alpha), rrf([[d for d, _ in vector], [d for d, _ in text]], k)):
        assert {d for d, _ in fused} == union and len(fused) == len(union)
        scores = [s for _, s in fused]
        assert scores == sorted(scores, reverse=True)
    assert all(-1e-9 <= s <= 1 + 1e-9 for _, s in linear(vector, text, alpha))
    if vector and text and vector[0][0] == text[0][0]:  # best on both sides: best fused, whatever the weights
        assert linear(vector, text, alpha)[0][1] == pytest.approx(1.0)
        assert rrf([[d for d, _ in vector], [d for d, _ in text]], k)[0][0] == vector[0][0]
