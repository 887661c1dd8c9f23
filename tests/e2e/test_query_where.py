"""`query --where` (typed filters compiled with the escaping each field needs) and `--explain`, on the real server."""

from __future__ import annotations

import json

from tests.e2e.conftest import one_error_line


def test_where_operators_on_the_sample_catalogue(cli, products) -> None:
    men = cli.jsonl("query", products, "watch", "-k", "20", "--where", "gender=Men")
    assert men and all(h["gender"] == "Men" for h in men)
    not_men = cli.jsonl("query", products, "watch", "-k", "20", "--where", "gender!=Men")
    assert not_men and all(h["gender"] != "Men" for h in not_men)
    some = cli.jsonl("query", products, "watch", "-k", "30", "--where", "articleType in (Watches, Belts)")
    assert some and {h["articleType"] for h in some} <= {"Watches", "Belts"}
    recent = cli.jsonl("query", products, "shirt", "-k", "20", "--where", "year>=2012", "--where", "gender=Men")
    assert recent and all(int(h["year"]) >= 2012 and h["gender"] == "Men" for h in recent)
    between = cli.jsonl("query", products, "shirt", "-k", "20", "--where", "year between 2010 and 2011")
    assert between and all(2010 <= int(h["year"]) <= 2011 for h in between)
    words = cli.jsonl("query", products, "shirt", "-k", "20", "--where", "productDisplayName~the leather")
    assert words and all("leather" in h["productDisplayName"].lower() for h in words)


def test_where_values_are_escaped_whatever_they_hold(cli, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--dim", "2", "--tag", "brand", "--algorithm", "flat")
    brands = ["Levi's", "a b", "x-y|z", "{curly}", "@at*", "naïve café", "C:\\path"]
    rows = [{"id": str(i), "brand": b, "v": [1, i]} for i, b in enumerate(brands)]
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("load", index_name, path, "--vector-column", "v")
    for i, brand in enumerate(brands):
        hits = cli.jsonl("query", index_name, "--vector", "[1, 0]", "--where", f"brand={brand}")
        assert [h["id"] for h in hits] == [str(i)], brand


def test_where_errors_name_the_field_and_list_the_index(cli, products) -> None:
    unknown = cli("query", products, "x", "--where", "colour=Red", ok=False)
    line = one_error_line(unknown)
    assert unknown.exit_code == 2 and "no field 'colour'" in line and "gender (tag)" in line
    wrong = cli("query", products, "x", "--where", "gender>=Men", ok=False)
    assert wrong.exit_code == 2 and "tag field 'gender' does not take '>='" in one_error_line(wrong)


def test_explain_prints_the_command_and_sends_nothing(cli, products, redis_client) -> None:
    calls = int(redis_client.info("commandstats").get("cmdstat_FT.SEARCH", {}).get("calls", 0))
    out = cli("query", products, "black watch", "--where", "gender=Men", "--where", "year>=2012", "--explain").stdout
    assert out.startswith("FT.SEARCH sample-products '(@gender:{Men} @year:[2012 +inf])=>[KNN $K @text_vector $BLOB")
    assert "DIALECT 2" in out
    assert int(redis_client.info("commandstats").get("cmdstat_FT.SEARCH", {}).get("calls", 0)) == calls
