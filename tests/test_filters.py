"""Filters reach RediSearch in a form that cannot trigger its DIALECT 2 stopword-union crash."""

from __future__ import annotations

import pytest

from vsearch.store.search import safe_filter


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("@body:(is|an|hip)", '@body:("is"|"an"|hip)'),
        ("@body:( is | an | hip )", '@body:( "is" | "an" | hip )'),
        ("@body:is|an|hip", '@body:"is"|"an"|hip'),
        ("@body:(the running)", "@body:(the running)"),  # intersection: RediSearch drops stopwords itself
        ("hip|is", 'hip|"is"'),
        ("@gender:{Men} @year:[2010 2012]", "@gender:{Men} @year:[2010 2012]"),
        ("@tag:{is|an}", "@tag:{is|an}"),  # tag values are exact strings, never stopwords
        ('"is"|an', '"is"|"an"'),
        ("@is:(a|b)", '@is:("a"|b)'),  # a field named like a stopword stays a field name
        ("-@kind:{bag} @title:(for|the|kids)", '-@kind:{bag} @title:("for"|"the"|kids)'),
        (r"@title:(it\'s|ok)", r"@title:(it\'s|ok)"),
    ],
)
def test_stopwords_in_unions_are_quoted(typed: str, sent: str) -> None:
    assert safe_filter(typed) == sent


def test_a_guarded_filter_keeps_the_server_alive(cli, products, redis_client) -> None:
    for expression in ("@productDisplayName:(is|an|watch)", "@productDisplayName:(a|the|of|shoe)"):
        hits = cli.jsonl("query", products, "watch", "-k", "3", "--filter", expression)
        assert hits
        assert redis_client.ping()
