"""Filters through the CLI on the real server: a filter that would crash RediSearch answers, and the server lives.

How filters and --where compile, without a server: tests/unit/test_filters.py.
"""

from __future__ import annotations

import pytest


def _pid(redis_client) -> int:
    return int(redis_client.info("server")["process_id"])


@pytest.mark.parametrize("expression", [
    "@productDisplayName:((is)|(an)|watch)",
    "@productDisplayName:(is|an|watch)",
    "@gender:{Men} @productDisplayName:((a)|(the)|shoe)",
])
def test_a_crashing_filter_through_the_cli_returns_hits_and_the_server_lives(cli, products, redis_client, expression) -> None:
    pid = _pid(redis_client)
    hits = cli.jsonl("query", products, "--like", "1653", "-k", "3", "--filter", expression)
    assert hits
    assert _pid(redis_client) == pid


def test_a_broken_filter_through_the_cli_is_one_error_line(cli, products) -> None:
    from tests.e2e.conftest import one_error_line

    result = cli("query", products, "--like", "1653", "--filter", "@gender:{Men", ok=False)
    assert result.exit_code == 2
    assert one_error_line(result) == "vsearch: error: --filter: unclosed brace '{' at column 9"
