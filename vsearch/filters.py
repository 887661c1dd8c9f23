"""Query text that reaches RediSearch: user filters made crash-proof, `--where` conditions, full-text queries.

Why a guard is needed (RediSearch 2.10.5, DIALECT 2, measured on the embedded server, HASH and JSON indexes,
plain FT.SEARCH and as a KNN pre-filter alike): the parser turns a bare stopword into a NULL node, and so is
every group made only of them (`(is)`, `((the))`, `~is`, `-is`, `@body:is`, `is an`). `union ::= expr | expr`
turns two NULL members into a NULL union, and `union ::= union | expr` then adds the next member to that NULL
union: a segfault. So a union crashes when its first two members are NULL and a later one is not. When only
one of the first two is NULL, the other (a single term, not a union) gets the later members added as children:
`@body:(is|"an"|hip)` silently returns nothing instead of the `hip` documents, and `is|-(-(world))|hip` crashes.

    crash:  @body:(is|an|hip)  @body:((is)|(an)|hip)  @body:((a)|(the)|world)  is|an|hip  (is)|(an)|hip
            @body:(is|an|the|hip)  @tag:{x} @body:(is|an|hip)  hello (is|an|hip)  @body:(is|an|hip) world
            (@body:((is)|(an)|hip))=>[KNN 3 @v $B AS d]  -(is|an|hip)  ~(is|an|hip)  @body:(~is|~an|hip)
            @body:(is an|the|hip)  @body:(is|an|hip*)  @body:(is|an|-hip)  @title|body:(is|an|hip)
            @body:(is|an|hip)=>{$weight:2}  is|-(-(world))|hip
    fine:   @body:(hip|is|an)  @body:(is|hip)  @body:(is|hip|an)  @body:(is|an)  @body:("is"|"an"|hip)

`guard_filter` quotes the stopwords of every NULL member of a union that also has a real member: a quoted
stopword is a real term that no document holds (stopwords are not indexed), so the member still adds nothing
to the union, as RediSearch meant, and the union can no longer be NULL. Unions of stopwords only, and
stopwords in intersections, stay as they are: RediSearch drops them there without crashing.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field

from vsearch.errors import UsageError
from vsearch.schema import TAG_SEPARATOR

# RediSearch's default English stopwords (what an index created without STOPWORDS uses).
STOPWORDS = frozenset(
    "a is the an and are as at be but by for if in into it no not of on or such that their then there these "
    "they this to was will with".split()
)

# A hand-written recursive-descent parser rather than lark: the grammar needed to find union members is small
# (groups, unions, juxtaposition, two prefix modifiers, field scopes), the bracketed parts are skipped whole,
# and every output byte must be the input's byte, which span edits on a hand-made tree give for free.

_STRUCTURE = set('()|-~@:{}[]"%*$=\\')
# prefix*, *suffix, *contains*, $param, escapes (`it\\'s`) and numbers (`20.5`) are terms, as RediSearch lexes them.
_TERM = re.compile(r"(\*?)(\$?)((?:\w|[^\x00-\x7f]|\\.)+(?:\.\w+)*)(\*?)")


@dataclass
class _Node:
    kind: str  # term, phrase, opaque, group, not, optional, scope, and, or
    start: int
    end: int
    children: list[_Node] = field(default_factory=list)
    stopword: bool = False  # a bare term that RediSearch drops

    @property
    def null(self) -> bool:
        """Whether RediSearch parses this node to nothing (NULL), as its stopword rules make it."""
        if self.kind == "term":
            return self.stopword
        if self.kind in ("group", "not", "optional", "scope"):
            return bool(self.children) and self.children[0].null
        if self.kind in ("and", "or"):
            return all(c.null for c in self.children)
        return False


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def fail(self, message: str, at: int | None = None) -> UsageError:
        return UsageError(f"--filter: {message} at column {(self.i if at is None else at) + 1}")

    def peek(self) -> str:
        while self.i < len(self.text) and (self.text[self.i].isspace() or self._stray(self.i)):
            self.i += 1
        return self.text[self.i] if self.i < len(self.text) else ""

    def _stray(self, i: int) -> bool:
        # Punctuation with no meaning in the query language: RediSearch's lexer skips it, and so does this.
        c = self.text[i]
        return c.isascii() and not c.isalnum() and c not in _STRUCTURE and c not in "_'"

    def parse(self) -> _Node:
        if not self.peek():
            return _Node("and", 0, 0)
        node = self.union()
        if self.peek():
            raise self.fail(f"unexpected '{self.peek()}'" if self.peek() != ")" else "unbalanced parenthesis")
        return node

    def union(self) -> _Node:
        members = [self.intersection()]
        while self.peek() == "|":
            self.i += 1
            members.append(self.intersection())
        return members[0] if len(members) == 1 else _Node("or", members[0].start, members[-1].end, members)

    def intersection(self) -> _Node:
        items: list[_Node] = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.unary())
        if not items:
            raise self.fail("nothing before '|'" if self.peek() == "|" else "empty expression")
        return items[0] if len(items) == 1 else _Node("and", items[0].start, items[-1].end, items)

    def unary(self) -> _Node:
        start = self.i
        char = self.peek()
        if char in "-~":
            self.i += 1
            if self.peek() in ("", "|", ")"):
                raise self.fail(f"nothing after '{char}'")
            child = self.unary()
            return _Node("not" if char == "-" else "optional", start, child.end, [child])
        return self.attributes(self.atom())

    def attributes(self, node: _Node) -> _Node:
        # `=>{$weight: 2}` (and any `=>[...]`) after an atom stays verbatim; it never makes a node NULL.
        if self.text.startswith("=>", self.i) and self.text[self.i + 2:self.i + 3] in ("{", "["):
            self.i = self.closing(self.i + 2)
            node.end = self.i
        return node

    def atom(self) -> _Node:
        start, char = self.i, self.peek()
        if char == "(":
            self.i += 1
            inner = self.union()
            if self.peek() != ")":
                raise self.fail("unbalanced parenthesis", start)
            self.i += 1
            return _Node("group", start, self.i, [inner])
        if char == "@":
            return self.scope()
        if char == '"':
            self.i = self.closing(start)
            return _Node("phrase", start, self.i)
        if char in "{[":
            raise self.fail(f"'{char}' needs a field before it, e.g. @field:{char}...")
        if char == ")":
            raise self.fail("unbalanced parenthesis")
        if char == "%":
            return self.fuzzy()
        return self.term()

    def scope(self) -> _Node:
        start = self.i
        match = re.compile(r"@(?:[^\s:|()\\]|\\.)+(?:\|(?:[^\s:|()\\]|\\.)+)*:").match(self.text, self.i)
        if not match:
            raise self.fail("a field name needs a ':' after it, e.g. @title:word")
        self.i = match.end()
        if self.i < len(self.text) and self.text[self.i] in "{[":
            self.i = self.closing(self.i)
            return self.attributes(_Node("opaque", start, self.i))
        if self.peek() in ("", "|", ")"):
            raise self.fail(f"nothing after '{match.group(0)}'")
        child = self.unary()
        return _Node("scope", start, child.end, [child])

    def fuzzy(self) -> _Node:
        start = self.i
        match = re.compile(r"(%{1,3})((?:[^\s%\\]|\\.)+)\1(?!%)").match(self.text, self.i)
        if not match:
            raise self.fail("unclosed '%' (fuzzy terms look like %word%)")
        self.i = match.end()
        return _Node("opaque", start, self.i)

    def term(self) -> _Node:
        start = self.i
        if self.text.startswith("w'", self.i):  # wildcard pattern w'foo*bar'
            end = self.text.find("'", self.i + 2)
            if end < 0:
                raise self.fail("unclosed w'...' pattern")
            self.i = end + 1
            return _Node("opaque", start, self.i)
        if self.text.lower().startswith("ismissing(", self.i):
            end = self.text.find(")", self.i)
            if end < 0:
                raise self.fail("unbalanced parenthesis", self.i + 9)
            self.i = end + 1
            return _Node("opaque", start, self.i)
        match = _TERM.match(self.text, self.i)
        if not match:
            if self.text[self.i] == "*":  # a lone `*`: the wildcard
                self.i += 1
                return _Node("opaque", start, self.i)
            raise self.fail(f"unexpected '{self.text[self.i]}'")
        self.i = match.end()
        bare = not (match.group(1) or match.group(2) or match.group(4))
        return _Node("term", start, self.i, stopword=bare and match.group(3).lower() in STOPWORDS)

    def closing(self, start: int) -> int:
        """The index after the bracket or quote that closes the one at `start`, skipping `\\` escapes."""
        close = {"{": "}", "[": "]", '"': '"'}[self.text[start]]
        i = start + 1
        while i < len(self.text):
            if self.text[i] == "\\":
                i += 2
            elif self.text[i] == close:
                return i + 1
            else:
                i += 1
        name = {"}": "brace", "]": "bracket", '"': "quote"}[close]
        raise self.fail(f"unclosed {name} '{self.text[start]}'", start)


def _null_member_edits(node: _Node, text: str, edits: list[tuple[int, int, str]]) -> None:
    """Edits that turn a NULL union member into one that matches nothing: stopwords quoted, `-`/`~` dropped
    (a negated or optional NULL is NULL too, so its quoted form must not be negated: `-"is"` would match all)."""
    if node.kind == "term":
        edits.append((node.start, node.end, f'"{text[node.start:node.end]}"'))
    elif node.kind in ("not", "optional"):
        edits.append((node.start, node.start + 1, ""))
    for child in node.children:
        _null_member_edits(child, text, edits)


def _guard_edits(node: _Node, text: str, edits: list[tuple[int, int, str]]) -> None:
    if node.kind == "or" and not node.null:
        for member in node.children:
            if member.null:
                _null_member_edits(member, text, edits)
            else:
                _guard_edits(member, text, edits)
        return
    for child in node.children:
        _guard_edits(child, text, edits)


def guard_filter(expression: str) -> str:
    """The RediSearch filter in a form that cannot crash the server, otherwise byte-for-byte as typed.

    Example: `@body:((is)|(an)|hip)` becomes `@body:(("is")|("an")|hip)`. Raises UsageError when the
    expression cannot be parsed (unbalanced parentheses, unclosed quotes or brackets).
    """
    tree = _Parser(expression).parse()
    edits: list[tuple[int, int, str]] = []
    _guard_edits(tree, expression, edits)
    out = expression
    for start, end, replacement in sorted(edits, reverse=True):
        out = out[:start] + replacement + out[end:]
    return out


# ---------------------------------------------------------------------------------------------------
# --where: typed conditions a person can type

_SYMBOL = re.compile(r"^\s*(?P<field>[^\s=!<>~]+)\s*(?P<op>!=|>=|<=|=|<|>|~)\s*(?P<value>.*?)\s*$", re.DOTALL)
_WORDS = re.compile(r"^\s*(?P<field>\S+)\s+(?P<op>in|between|near)\s+(?P<value>.*?)\s*$", re.DOTALL | re.IGNORECASE)
_OPERATORS = {
    "tag": ("=", "!=", "in"),
    "numeric": ("=", "!=", "<", "<=", ">", ">=", "between", "in"),
    "text": ("~",),
    "geo": ("near",),
}


def compile_where(expressions: list[str], field_types: dict[str, str], tag_separator: str = TAG_SEPARATOR) -> str:
    """`--where` conditions (all must hold) as one RediSearch filter; "*" when there are none.

    Examples: `gender=Men`, `gender!=Men`, `articleType in (Watches, Belts)`, `year>=2012`, `price<20.5`,
    `year between 2010 and 2012`, `name~leather boots` (every word, stopwords left out),
    `location near 52.52,13.40 10km` (latitude first, as people write it).
    """
    parts = [_condition(e, field_types, tag_separator) for e in expressions if e.strip()]
    return " ".join(parts) if parts else "*"


def _condition(expression: str, field_types: dict[str, str], tag_separator: str) -> str:
    match = _SYMBOL.match(expression) or _WORDS.match(expression)
    if expression.strip().lower().startswith(("has:", "missing:")):
        raise UsageError(f"--where '{expression}': has:/missing: need fields indexed with INDEXMISSING, "
                         "which vsearch indexes do not have (RediSearch 2.10)")
    if not match:
        raise UsageError(f"--where '{expression}': expected FIELD OP VALUE, with OP one of = != < <= > >= ~ "
                         "in between near")
    name, op, value = match["field"], match["op"].lower(), match["value"]
    kind = field_types.get(name)
    fields = ", ".join(f"{n} ({t})" for n, t in field_types.items()) or "none"
    if kind is None:
        raise UsageError(f"--where '{expression}': no field '{name}' in this index; its fields: {fields}")
    if op not in _OPERATORS[kind]:
        raise UsageError(f"--where '{expression}': {kind} field '{name}' does not take '{op}' "
                         f"(it takes {' '.join(_OPERATORS[kind])}); the index's fields: {fields}")
    scope = f"@{escape_tag(name)}:"
    if kind == "tag":
        values = _list(expression, value) if op == "in" else [value]
        for v in values:
            if not v.strip():
                raise UsageError(f"--where '{expression}': empty tag value")
            if tag_separator and tag_separator in v:  # the index split such a value into several tags when it stored it
                raise UsageError(f"--where '{expression}': this index splits TAG values at {tag_separator!r} (it was "
                                 "made before vsearch kept them whole), so no tag holds one; rebuild it with "
                                 "`vsearch load NAME FILE --rebuild`")
        tags = " | ".join(escape_tag(v) for v in values)
        return f"{'-' if op == '!=' else ''}{scope}{{{tags}}}"
    if kind == "numeric":
        return _numeric(expression, scope, op, value)
    if kind == "text":
        words = [w for w in _words(value) if w.lower() not in STOPWORDS]
        if not words:
            raise UsageError(f"--where '{expression}': no words to search for once stopwords "
                             "(a, the, is, ...) are left out")
        return f"{scope}({' '.join(escape_tag(w) for w in words)})"
    return _geo(expression, scope, value)


def _numeric(expression: str, scope: str, op: str, value: str) -> str:
    if op == "between":
        bounds = re.split(r"\s+and\s+", value, flags=re.IGNORECASE)
        if len(bounds) != 2:
            raise UsageError(f"--where '{expression}': expected FIELD between LOW and HIGH")
        low, high = (_number(expression, b) for b in bounds)
        return f"{scope}[{low} {high}]"
    if op == "in":
        ranges = [f"{scope}[{n} {n}]" for n in (_number(expression, v) for v in _list(expression, value))]
        return f"({' | '.join(ranges)})"
    n = _number(expression, value)
    ranges = {"=": f"[{n} {n}]", "!=": f"[{n} {n}]", "<": f"[-inf ({n}]", "<=": f"[-inf {n}]",
              ">": f"[({n} +inf]", ">=": f"[{n} +inf]"}
    return f"{'-' if op == '!=' else ''}{scope}{ranges[op]}"


def _number(expression: str, text: str) -> str:
    try:
        value = float(text.strip())
    except ValueError:
        raise UsageError(f"--where '{expression}': '{text.strip()}' is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"--where '{expression}': '{text.strip()}' is not a finite number")
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _geo(expression: str, scope: str, value: str) -> str:
    match = re.fullmatch(r"(-?[\d.]+)\s*,\s*(-?[\d.]+)\s+([\d.]+)\s*(m|km|mi|ft)", value.strip(), re.IGNORECASE)
    usage = f"--where '{expression}': expected FIELD near LAT,LON RADIUS with a unit of m, km, mi or ft"
    if not match:
        raise UsageError(usage)
    try:
        lat, lon, radius = (float(match[i]) for i in (1, 2, 3))
    except ValueError:
        raise UsageError(usage) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise UsageError(f"--where '{expression}': latitude must be within ±90 and longitude within ±180")
    if not (math.isfinite(radius) and radius > 0):  # RediSearch answers 0 with an error of its own
        raise UsageError(f"--where '{expression}': the radius must be more than 0")
    return f"{scope}[{match[2]} {match[1]} {match[3]} {match[4].lower()}]"  # RediSearch wants lon lat


def _list(expression: str, value: str) -> list[str]:
    """`(a, b, "c, d")` as its items; quotes let an item hold a comma."""
    if not (value.startswith("(") and value.endswith(")")):
        raise UsageError(f"--where '{expression}': expected FIELD in (VALUE, VALUE, ...)")
    items = next(csv.reader([value[1:-1]], skipinitialspace=True), [])
    if not items:
        raise UsageError(f"--where '{expression}': the list is empty")
    return [i.strip() for i in items]


def escape_tag(value: str) -> str:
    """A value that RediSearch reads back as exactly itself inside `{...}` (and as one text term).

    Every ASCII character that is not a letter or digit gets a backslash (spaces included); non-ASCII stays
    as is, because RediSearch only unescapes a backslash before ASCII punctuation or space.
    """
    return "".join(f"\\{c}" if c.isascii() and not c.isalnum() else c for c in value)


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text)


# ---------------------------------------------------------------------------------------------------
# Full-text queries from natural language


def text_query(text: str, fields: list[str] | None = None) -> str | None:
    """Natural language as a full-text OR query (any of the words), stopwords out; None if no word is left.

    Example: `text_query("the leather boots!", ["title", "body"])` is `@title|body:(leather|boots)`.
    """
    seen: dict[str, str] = {}
    for word in _words(text):
        if word.lower() not in STOPWORDS:
            seen.setdefault(word.lower(), escape_tag(word))
    if not seen:
        return None
    terms = f"({'|'.join(seen.values())})"
    return f"@{'|'.join(escape_tag(f) for f in fields)}:{terms}" if fields else terms
