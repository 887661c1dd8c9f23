"""Filters reach RediSearch in a form that cannot crash it; --where and text queries compile to exact filters."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsearch.errors import UsageError
from vsearch.filters import STOPWORDS, _Parser, compile_where, escape_tag, guard_filter, text_query
from vsearch.schema import TAG_SEPARATOR


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
        ("@body:((is)|(an)|hip)", '@body:(("is")|("an")|hip)'),
        ("@body:(((the))|hip)", '@body:((("the"))|hip)'),
        ("@body:(~is|-an|hip)", '@body:("is"|"an"|hip)'),  # `-"an"` would match everything: the `-` goes
        ("is an|hip", '"is" "an"|hip'),
        ("(is|an)|(the|a)|hip", '("is"|"an")|("the"|"a")|hip'),
        ("@body:(is|an)", "@body:(is|an)"),  # all stopwords: NULL, which RediSearch handles
        ("hello (is|an|the)", "hello (is|an|the)"),
        ("(@body:((is)|(an)|hip))=>{$weight: 2}", '(@body:(("is")|("an")|hip))=>{$weight: 2}'),
        ("hip*|*is|%is%|$is|is", 'hip*|*is|%is%|$is|"is"'),
        ('"the a"|is|an', '"the a"|"is"|"an"'),
        ("@n:[(1 +inf] | is | an", '@n:[(1 +inf] | "is" | "an"'),
        ("@loc:[13.4 52.5 10 km]|is|an", '@loc:[13.4 52.5 10 km]|"is"|"an"'),
        (r"@t:{a\ b\}|is}|is|an", r'@t:{a\ b\}|is}|"is"|"an"'),
        ("ismissing(@x)|is|an", 'ismissing(@x)|"is"|"an"'),
        ("*", "*"),
        ("", ""),
    ],
)
def test_stopword_union_members_are_quoted_and_the_rest_is_kept(typed: str, sent: str) -> None:
    assert guard_filter(typed) == sent


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("@body:(hip", "--filter: unbalanced parenthesis at column 7"),
        ("hip)", "--filter: unbalanced parenthesis at column 4"),
        ('"hip', "--filter: unclosed quote '\"' at column 1"),
        ("@t:{x", "--filter: unclosed brace '{' at column 4"),
        ("@n:[1 2", "--filter: unclosed bracket '[' at column 4"),
        ("a||b", "--filter: nothing before '|' at column 3"),
        ("@body", "--filter: a field name needs a ':' after it, e.g. @title:word at column 1"),
        ("hip -", "--filter: nothing after '-' at column 6"),
        ("{x}", "--filter: '{' needs a field before it, e.g. @field:{... at column 1"),
    ],
)
def test_a_filter_that_cannot_be_parsed_is_one_usage_error(typed: str, message: str) -> None:
    with pytest.raises(UsageError) as error:
        guard_filter(typed)
    assert str(error.value) == message


TYPES = {"gender": "tag", "year": "numeric", "price": "numeric", "name": "text", "location": "geo"}


@pytest.mark.parametrize(
    ("where", "sent"),
    [
        (["gender=Men"], "@gender:{Men}"),
        (["gender!=Men"], "-@gender:{Men}"),
        (["gender = Men"], "@gender:{Men}"),
        (["gender=Big & Tall"], r"@gender:{Big\ \&\ Tall}"),
        ([r'gender=a-b|{c}@*\"'], r'@gender:{a\-b\|\{c\}\@\*\\\"}'),
        (["gender=Männer"], "@gender:{Männer}"),
        (["gender in (Watches, Belts)"], r"@gender:{Watches | Belts}"),
        (['gender in ("a, b", c)'], r"@gender:{a\,\ b | c}"),
        (["year>=2012"], "@year:[2012 +inf]"),
        (["year>2012"], "@year:[(2012 +inf]"),
        (["price<20.5"], "@price:[-inf (20.5]"),
        (["price<=20.5"], "@price:[-inf 20.5]"),
        (["year=2012"], "@year:[2012 2012]"),
        (["year!=2012"], "-@year:[2012 2012]"),
        (["year between 2010 and 2012"], "@year:[2010 2012]"),
        (["year in (2010, 2012)"], "(@year:[2010 2010] | @year:[2012 2012])"),
        (["name~the leather boots!"], "@name:(leather boots)"),
        (["location near 52.52,13.40 10km"], "@location:[13.40 52.52 10 km]"),
        (["gender=Men", "year>=2012"], "@gender:{Men} @year:[2012 +inf]"),
        ([], "*"),
    ],
)
def test_where_compiles_to_an_exact_filter(where: list[str], sent: str) -> None:
    assert compile_where(where, TYPES) == sent


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("colour=red", "no field 'colour' in this index; its fields: gender (tag), year (numeric), price (numeric), "
                       "name (text), location (geo)"),
        ("year~2012", "numeric field 'year' does not take '~'"),
        ("gender>Men", "tag field 'gender' does not take '>'"),
        ("name~the a of", "no words to search for once stopwords"),
        ("year>=soon", "'soon' is not a number"),
        ("year>=nan", "'nan' is not a finite number"),
        ("gender=", "empty tag value"),
        ("location near 95,10 1km", "latitude must be within ±90"),
        ("location near here", "expected FIELD near LAT,LON RADIUS"),
        ("has:gender", "INDEXMISSING"),
        ("missing:gender", "INDEXMISSING"),
        ("gender", "expected FIELD OP VALUE"),
    ],
)
def test_a_bad_where_is_one_usage_error_that_names_the_problem(where: str, message: str) -> None:
    with pytest.raises(UsageError) as error:
        compile_where([where], TYPES)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "fields", "sent"),
    [
        ("leather boots", ["title", "body"], "@title|body:(leather|boots)"),
        ("Is it the leather boots?!", None, "(leather|boots)"),
        ("boots BOOTS boots", None, "(boots)"),
        ("t-shirt (men's)", None, "(t|shirt|men|s)"),
        ("the a of", None, None),
        ("¿?!", None, None),
    ],
)
def test_text_query_is_a_stopword_free_or_query(text: str, fields: list[str] | None, sent: str | None) -> None:
    assert text_query(text, fields) == sent


# ---------------------------------------------------------------------------------------------------
# More of --where: ranges, lists, geo, legacy tag separators


@pytest.mark.parametrize(
    ("where", "sent"),
    [
        ("year BETWEEN 2010 AND 2012", "@year:[2010 2012]"),
        ("year >= 2012 ", "@year:[2012 +inf]"),
        ("price=-0", "@price:[0 0]"),
        ("price = 1e20", "@price:[1e+20 1e+20]"),
        ("price in (1.5, 2)", "(@price:[1.5 1.5] | @price:[2 2])"),
        ("gender IN (a)", "@gender:{a}"),
        ('gender in ("x")', "@gender:{x}"),
        ("gender==x", r"@gender:{\=x}"),  # the value is everything after the first operator
        ("location NEAR 1,2 3km", "@location:[2 1 3 km]"),
        ("location near 52.52 , 13.40 0.5MI", "@location:[13.40 52.52 0.5 mi]"),
        ("location near -33.9,-70.6 800 ft", "@location:[-70.6 -33.9 800 ft]"),
        ("name ~ Men's shoes", "@name:(Men s shoes)"),
        ("odd-name>3", r"@odd\-name:[(3 +inf]"),
    ],
)
def test_where_operators_in_any_case_and_spacing(where: str, sent: str) -> None:
    assert compile_where([where], {**TYPES, "odd-name": "numeric"}) == sent


def test_blank_where_conditions_are_no_conditions() -> None:
    assert compile_where(["  ", ""], TYPES) == "*"
    assert compile_where(["", "year=1"], TYPES) == "@year:[1 1]"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("year between 2010", "expected FIELD between LOW and HIGH"),
        ("year between a and 3", "'a' is not a number"),
        ("year in 2010", "expected FIELD in (VALUE, VALUE, ...)"),
        ("year in ()", "the list is empty"),
        ("year in (1, x)", "'x' is not a number"),
        ("year=+inf", "'+inf' is not a finite number"),
        ("year<>3", "'>3' is not a number"),
        ("gender in (a, , b)", "empty tag value"),
        ("gender in (a,b", "expected FIELD in (VALUE, VALUE, ...)"),
        ("location near 52.52,13.40 10", "with a unit of m, km, mi or ft"),
        ("location near 1.2.3,4 5km", "expected FIELD near LAT,LON RADIUS"),
        ("location near 0,181 1m", "latitude must be within ±90 and longitude within ±180"),
        ("location near 52.5,13.4 0km", "the radius must be more than 0"),
        ("location near 52.5,13.4 0.0 mi", "the radius must be more than 0"),
        ("name~...", "no words to search for once stopwords"),
        ("GENDER=x", "no field 'GENDER' in this index"),  # field names are exact
        ("my field=x", "expected FIELD OP VALUE"),
        ("location=x", "geo field 'location' does not take '=' (it takes near)"),
        ("name in (a)", "text field 'name' does not take 'in' (it takes ~)"),
    ],
)
def test_more_bad_where_conditions_each_name_their_problem(where: str, message: str) -> None:
    with pytest.raises(UsageError) as error:
        compile_where([where], TYPES)
    assert str(error.value).startswith(f"--where '{where}': ") and message in str(error.value)
    assert error.value.exit_code == 2


def test_an_index_that_splits_tags_at_commas_refuses_a_value_holding_one() -> None:
    with pytest.raises(UsageError) as error:
        compile_where(["gender=Shoes, Boots"], TYPES, tag_separator=",")
    assert "this index splits TAG values at ','" in str(error.value)
    assert "vsearch load NAME FILE --rebuild" in str(error.value)
    assert compile_where(["gender=Shoes"], TYPES, tag_separator=",") == "@gender:{Shoes}"
    # vsearch's separator, and none at all (JSON), keep such a value whole.
    for separator in (TAG_SEPARATOR, ""):
        assert compile_where(["gender=Shoes, Boots"], TYPES, tag_separator=separator) == r"@gender:{Shoes\,\ Boots}"


def test_escape_tag_escapes_ascii_punctuation_and_spaces_only() -> None:
    assert escape_tag("a b-c_d.é\\") == "a\\ b\\-c\\_d\\.é\\\\"
    assert escape_tag("Männer東京") == "Männer東京"
    assert text_query("Men's T-shirt", ["title body", "x"]) == r"@title\ body|x:(Men|s|T|shirt)"


# ---------------------------------------------------------------------------------------------------
# Hostile values, drawn by hypothesis

few = settings(max_examples=50, deadline=None)
# Filters made of what the parser cares about: brackets, operators, stopwords, scopes, attributes.
PIECES = st.sampled_from([*'()|-~@:{}[]"%*$=\\ \'', "is", "an", "the", "hip", "x", "@b:", '"x y"', "%w%", "w*",
                          "$p", "=>{$weight:2}", "@t:{a|is}", "@n:[1 2]", "ismissing(@x)", "w'a*'", "é", "\t"])
filters = st.lists(PIECES, max_size=20).map("".join) | st.text(max_size=20)


def _nodes(node):
    yield node
    for child in node.children:
        yield from _nodes(child)


@few
@given(text=filters)
def test_guard_filter_takes_any_text_and_only_ever_quotes_stopwords(text) -> None:
    try:
        sent = guard_filter(text)
    except UsageError as error:
        assert str(error).startswith("--filter: ") and " at column " in str(error)
        return
    assert guard_filter(sent) == sent  # nothing left to guard
    # Byte-for-byte as typed, but for quotes added and a '-' or '~' dropped before a quoted stopword.
    assert sent.translate(str.maketrans("", "", '"-~')) == text.translate(str.maketrans("", "", '"-~'))
    # What crashes RediSearch is a union with a NULL member and a real one: none is left.
    for node in _nodes(_Parser(sent).parse()):
        if node.kind == "or" and not node.null:
            assert not any(member.null for member in node.children), (text, sent)


@few
@given(value=st.text(min_size=1, max_size=20).filter(lambda v: v.strip() and TAG_SEPARATOR not in v))
def test_any_tag_value_is_sent_as_exactly_itself(value) -> None:
    sent = compile_where([f"gender={value}"], TYPES)
    assert sent.startswith("@gender:{") and sent.endswith("}")
    assert re.sub(r"\\(.)", r"\1", sent[len("@gender:{"):-1], flags=re.DOTALL) == value.strip()
    assert guard_filter(sent) == sent  # and the filter it makes parses whole


@few
@given(value=st.text(max_size=24), op=st.sampled_from(["=", "!=", "<", "<=", ">", ">=", " between ", " in ", "~",
                                                       " near "]),
       field=st.sampled_from(list(TYPES)))
def test_any_where_value_compiles_to_a_parsable_filter_or_one_usage_error(value, op, field) -> None:
    try:
        sent = compile_where([f"{field}{op}{value}"], TYPES)
    except UsageError as error:
        assert str(error).startswith("--where '")
        return
    assert guard_filter(sent) == sent


# Field names as an index has them: no control characters or spaces (text_query escapes ASCII ones only).
field_names = st.text(st.characters(exclude_categories=("Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=6)


@few
@given(text=st.text(max_size=30), fields=st.none() | st.lists(field_names, min_size=1, max_size=2))
def test_any_text_query_is_a_parsable_or_of_words_without_stopwords(text, fields) -> None:
    sent = text_query(text, fields)
    if sent is None:
        assert all(w.lower() in STOPWORDS for w in re.findall(r"[^\W_]+", text))
        return
    assert guard_filter(sent) == sent
    terms = sent[sent.index("(") + 1:-1].split("|") if fields is None else sent.rsplit(":(", 1)[1][:-1].split("|")
    assert not {t.lower() for t in terms} & STOPWORDS
