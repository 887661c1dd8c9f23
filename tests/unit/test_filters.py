"""Filters reach RediSearch in a form that cannot crash it; --where and text queries compile to exact filters."""

from __future__ import annotations

import pytest

from vsearch.errors import UsageError
from vsearch.filters import compile_where, guard_filter, text_query


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
