"""vsearch/store/keys.py: which keys belong to what, without a server.

Redis indexes every key that starts with an index's prefix, so two overlapping prefixes see, and with
`drop-index --delete-documents` delete, each other's documents: every rule here guards that.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vsearch.errors import EXIT_USAGE, UsageError
from vsearch.store.keys import (NAMESPACE, base_prefix, check_prefix, check_user_prefix, default_prefix,
                                generation_prefix, lock_key, overlaps, record_key)

few = settings(max_examples=30, deadline=None)
names = st.text(min_size=1, max_size=10)
# What --prefix and schema files may hold: anything but '~' (check_user_prefix).
user_prefixes = st.text(st.characters(exclude_characters="~"), min_size=1, max_size=10)
generations = st.integers(1, 1000)


def refused(prefix: str, taken) -> str:
    with pytest.raises(UsageError) as caught:
        check_prefix(prefix, taken)
    assert caught.value.exit_code == EXIT_USAGE
    return str(caught.value)


# ---------------------------------------------------------------------------------------------------
# vsearch's own keys


def test_records_and_locks_live_in_vsearch_s_namespace() -> None:
    assert record_key("docs") == "__vsearch:index:docs" and lock_key("docs") == "__vsearch:lock:docs"
    assert record_key("a:b").startswith(NAMESPACE) and lock_key("a:b").startswith(NAMESPACE)


@pytest.mark.parametrize("prefix", ["__vsearch:", "__vsearch:index:", "__vs", "_", "__vsearch:lock:docs"])
def test_a_prefix_overlapping_vsearch_s_namespace_is_refused(prefix) -> None:
    assert refused(prefix, []) == (f"prefix '{prefix}' overlaps vsearch's own keys ('__vsearch:*'): pick another "
                                   "name or --prefix")


def test_an_empty_prefix_would_index_every_key_and_is_refused() -> None:
    assert refused("", []) == "an empty --prefix would index every key in the database: give a prefix such as 'docs:'"


# ---------------------------------------------------------------------------------------------------
# Default prefixes


@pytest.mark.parametrize(
    ("name", "generation", "prefix"),
    [("docs", 1, "docs:"), ("docs", 0, "docs:"), ("docs", 2, "docs~2:"), ("docs", 12, "docs~12:"),
     ("pa:b", 1, "pa%3Ab:"), ("50%", 1, "50%25:"), ("a~2", 1, "a%7E2:"),
     ("東京", 3, "東京~3:")],
)
def test_default_prefix_encodes_the_name_and_marks_the_generation(name, generation, prefix) -> None:
    assert default_prefix(name, generation) == prefix


def test_names_that_share_a_start_get_prefixes_that_do_not() -> None:
    # `pa:` and `pa:b:` would overlap: the colon of a name is encoded, so `pa:b` gets `pa%3Ab:`.
    assert not overlaps(default_prefix("pa"), default_prefix("pa:b"))
    check_prefix(default_prefix("pa:b"), [(default_prefix("pa"), "pa")])


@few
@given(a=names, b=names, i=generations, j=generations)
def test_default_prefixes_of_two_names_never_overlap_whatever_their_generations(a, b, i, j) -> None:
    assume(a != b)
    assert not overlaps(default_prefix(a, i), default_prefix(b, j))


@few
@given(name=names, i=generations, j=generations)
def test_the_generations_of_one_name_never_overlap(name, i, j) -> None:
    assume(i != j)
    assert not overlaps(default_prefix(name, i), default_prefix(name, j))


# ---------------------------------------------------------------------------------------------------
# Generations of a prefix the user chose


@pytest.mark.parametrize(("prefix", "generation", "expected"),
                         [("doc:", 1, "doc:"), ("doc:", 2, "doc~2:"), ("doc", 2, "do~2c"), ("d", 7, "~7d"),
                          ("doc~3:", 4, "doc~4:"), ("doc~2~", 3, "do~3c")])
def test_a_generation_s_mark_goes_before_the_last_character(prefix, generation, expected) -> None:
    assert generation_prefix(prefix, generation) == expected


@pytest.mark.parametrize(("prefix", "base"), [("doc~3:", "doc:"), ("doc:", "doc:"), ("do~12c", "doc"),
                                              ("doc~2~", "doc"), ("a~b:", "a~b:")])
def test_base_prefix_is_the_first_generation_of_the_family(prefix, base) -> None:
    assert base_prefix(prefix) == base


@few
@given(prefix=user_prefixes, generation=st.integers(2, 10**6))
def test_a_later_generation_is_never_an_extension_of_its_base_and_comes_back_to_it(prefix, generation) -> None:
    later = generation_prefix(prefix, generation)
    # Dropping the old generation deletes its prefix's keys: it must not hold the new one's.
    assert not overlaps(later, prefix)
    assert base_prefix(later) == prefix
    assert generation_prefix(later, generation + 1) == generation_prefix(prefix, generation + 1)


@few
@given(a=user_prefixes.filter(lambda p: not p[-1].isdigit()), b=user_prefixes.filter(lambda p: not p[-1].isdigit()),
       i=generations, j=generations)
def test_prefixes_the_check_lets_apart_stay_apart_in_every_generation(a, b, i, j) -> None:
    try:
        check_prefix(b, [(a, "first")])
    except UsageError:
        return
    assert not overlaps(generation_prefix(a, i), generation_prefix(b, j))


def test_a_generation_that_would_meet_another_index_s_is_refused_when_it_is_made() -> None:
    # A prefix ending in a digit: generation 2 of `doc1` is `doc~21`, a start of generation 21 of `docs`. The bases
    # are apart, so create-index let both be; the rebuild that would make the overlap is refused instead.
    assert not overlaps("doc1", "docs")
    check_prefix("docs", [("doc1", "one")])
    message = refused(generation_prefix("docs", 21), [(generation_prefix("doc1", 2), "one")])
    assert message.startswith("prefix 'doc~21s' overlaps index 'one' (prefix 'doc~21')")


# ---------------------------------------------------------------------------------------------------
# check_prefix and check_user_prefix


@pytest.mark.parametrize(
    ("prefix", "other"),
    [("doc:", "doc:"), ("doc:a:", "doc:"), ("do", "doc:"), ("doc~2:", "doc:"), ("doc~2:", "doc~3:"),
     ("doc:", "doc~7:")],
    ids=["same", "longer", "shorter", "own-family", "two-generations", "against-a-generation"],
)
def test_a_prefix_overlapping_another_index_or_its_family_is_refused(prefix, other) -> None:
    message = refused(prefix, [("ok:", "fine"), (other, "theirs")])
    assert message == (f"prefix '{prefix}' overlaps index 'theirs' (prefix '{other}'): its documents would be "
                       "indexed, and deleted, by both; pick another name or --prefix")


def test_an_index_of_another_tool_without_a_prefix_takes_every_key() -> None:
    assert "overlaps index 'legacy' (prefix '(none: every key)')" in refused("docs:", [("", "legacy")])


@few
@given(prefix=st.text(max_size=8), taken=st.lists(st.tuples(st.text(max_size=8), names), max_size=4))
def test_a_prefix_the_check_lets_through_overlaps_no_one(prefix, taken) -> None:
    try:
        check_prefix(prefix, taken)
    except UsageError as error:
        assert "\n" not in str(error) or "\n" in prefix + "".join(o + n for o, n in taken)
        return
    assert prefix and not overlaps(prefix, NAMESPACE)
    assert not any(overlaps(prefix, other) for other, _ in taken)


@pytest.mark.parametrize("prefix", ["doc~2:", "~", "a~"])
def test_a_user_prefix_with_a_tilde_is_refused(prefix) -> None:
    with pytest.raises(UsageError) as caught:
        check_user_prefix(prefix)
    assert str(caught.value) == (f"prefix '{prefix}' holds '~', which vsearch keeps for an index's generations "
                                 "(`doc~2:` is the second one of `doc:`): pick a prefix without it")


@few
@given(prefix=user_prefixes)
def test_any_user_prefix_without_a_tilde_is_taken(prefix) -> None:
    check_user_prefix(prefix)


def test_overlaps_is_symmetric_prefix_of_either_way() -> None:
    assert overlaps("a:", "a:b") and overlaps("a:b", "a:") and overlaps("x", "x")
    assert not overlaps("a:", "b:") and not overlaps("ab", "ac")


@pytest.mark.parametrize("prefix", ["doc\n", "a\nb\n", "\n"])
def test_a_prefix_ending_in_a_newline_keeps_its_family(prefix) -> None:
    # `.` and `$` of the generation mark's pattern stopped at a final newline: `doc~2\n` was its own base, and the
    # next rebuild made `doc~2~3\n` of it instead of `doc~3\n`.
    assert base_prefix(generation_prefix(prefix, 2)) == prefix
    assert generation_prefix(generation_prefix(prefix, 2), 3) == generation_prefix(prefix, 3)
    assert base_prefix(prefix[:-1] + "~2~" + "\n") == prefix[:-1] + "~2~\n"  # not the old mark: that ends the prefix
