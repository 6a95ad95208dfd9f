"""The NGSI-LD query language (ETSI GS CIM 009 clause 4.9, ``q``) and geo-queries (clause 4.10).

``parse_q`` turns a ``q`` string into an immutable AST; ``evaluate`` tests it against an entity in
*normalized* form. The first evaluation compiles the AST into closures (cached on the node), so a
query run over tens of thousands of entities parses its literals and compiles its regexes once.

Grammar: terms joined by ``;`` (AND) and ``|`` (OR), AND binding tighter than OR, parentheses
(nestable) grouping. A term is ``path`` (existence), ``path op value`` (op one of ``== != > >= < <=``)
or ``path ~= regex`` / ``path !~= regex``. A path is ``attr`` or ``attr.sub`` (a sub-attribute such as
``observedAt`` or ``unitCode``), optionally followed by keys into the JSON value:
``address[addressLocality]``, ``a[b.c]`` or ``a[b][c]``. Values: numbers, double-quoted strings
(``\\"`` and ``\\\\`` escapes), ``true``/``false``, dateTimes, dates, times and bare URIs; ranges
``v1..v2`` and lists ``v1,v2`` only with ``==``/``!=``. A bare regex runs to the first ``;``, ``|``
or ``)`` that is not escaped, inside a character class or inside the regex's own parentheses; quote
it to use any other text.

Semantics, where the specification leaves room:

* A term on an attribute the entity lacks is false, ``!=`` and ``!~=`` included.
* A term whose value cannot be compared with the entity's (a number against a string, a boolean
  against anything but a boolean...) is not satisfied, ``!=`` included: "different type" is not
  evidence of "different value".
* On a list-valued attribute, ``==``, the orderings and ``~=`` hold when some element matches;
  ``!=`` and ``!~=`` when no comparable element matches (and at least one is comparable).
* dateTimes compare chronologically, naive ones taken as UTC; entity strings that read as ISO
  dateTimes compare as dateTimes. A date literal against a dateTime compares the dateTime's UTC
  calendar day, so ``dateServiceStarted>=2019-03-01`` does what it says. Times compare as wall-clock
  times (any offset is dropped).
* Multi-attributes (several instances told apart by ``datasetId``) are not supported: metropilot's
  entity views have none.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final, NoReturn

import orjson
import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from metropilot.core.geo import METRO_PROJECTION, BBox, haversine_m

__all__ = [
    "GEOMETRY_TYPES",
    "GEORELS",
    "And",
    "AttrPath",
    "Compare",
    "Exists",
    "GeoQuery",
    "Match",
    "Or",
    "QueryNode",
    "QuerySyntaxError",
    "Range",
    "Value",
    "ValueKind",
    "ValueList",
    "attributes_of",
    "evaluate",
    "parse_geoquery",
    "parse_q",
]


class QuerySyntaxError(ValueError):
    """A ``q`` or geo-query the grammar rejects; ``position`` is the 0-based offset in ``q``, if any."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


# --- AST -------------------------------------------------------------------------------------------


class ValueKind(StrEnum):
    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "dateTime"
    DATE = "date"
    TIME = "time"
    URI = "URI"


# The kinds the grammar's ComparableValue covers: the only ones orderings and ranges accept.
_ORDERED_KINDS: Final = frozenset(
    {ValueKind.NUMBER, ValueKind.STRING, ValueKind.DATETIME, ValueKind.DATE, ValueKind.TIME}
)
_EQUALITY_OPS: Final = frozenset({"==", "!="})
_ORDERING_OPS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}

Scalar = int | float | str | bool | datetime | date | time


@dataclass(frozen=True, slots=True)
class Value:
    kind: ValueKind
    text: str  # as written in the query
    parsed: Scalar


@dataclass(frozen=True, slots=True)
class Range:
    low: Value
    high: Value


@dataclass(frozen=True, slots=True)
class ValueList:
    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class AttrPath:
    name: str
    sub: tuple[str, ...] = ()  # sub-attributes: ``temperature.observedAt``
    keys: tuple[str, ...] = ()  # keys into the JSON value: ``address[addressLocality]``

    def __str__(self) -> str:
        text = ".".join((self.name, *self.sub))
        return f"{text}[{'.'.join(self.keys)}]" if self.keys else text


Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class QueryNode:
    """Base of the AST nodes. ``_compiled`` caches the closure ``evaluate`` builds."""

    _compiled: Predicate | None = field(default=None, init=False, repr=False, compare=False)


@dataclass(frozen=True)
class Exists(QueryNode):
    path: AttrPath


@dataclass(frozen=True)
class Compare(QueryNode):
    path: AttrPath
    op: str
    value: Value | Range | ValueList

    def __post_init__(self) -> None:
        if self.op not in _EQUALITY_OPS and self.op not in _ORDERING_OPS:
            raise QuerySyntaxError(f"Invalid q: unknown operator {self.op!r}")
        if self.op not in _EQUALITY_OPS and not (isinstance(self.value, Value) and self.value.kind in _ORDERED_KINDS):
            raise QuerySyntaxError(
                f"Invalid q: {self.op!r} takes one number, string, dateTime, date or time; "
                "ranges, lists, true/false and URIs only work with == and !="
            )


@dataclass(frozen=True)
class Match(QueryNode):
    path: AttrPath
    regex: re.Pattern[str]
    negate: bool = False  # ``!~=``


@dataclass(frozen=True)
class And(QueryNode):
    terms: tuple[QueryNode, ...]


@dataclass(frozen=True)
class Or(QueryNode):
    terms: tuple[QueryNode, ...]


def attributes_of(node: QueryNode) -> frozenset[str]:
    """The top-level attribute names a query reads."""
    if isinstance(node, Exists | Compare | Match):
        return frozenset({node.path.name})
    if isinstance(node, And | Or):
        names: set[str] = set()
        for term in node.terms:
            names |= attributes_of(term)
        return frozenset(names)
    raise TypeError(f"not a query node: {node!r}")


# --- date and time parsing (shared by literals and entity values) ----------------------------------

_DATETIME_TEXT: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)
_DATE_TEXT: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME_TEXT: Final = re.compile(r"(\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?(Z|z|[+-]\d{2}(?::?\d{2})?)?")


def _fraction(digits: str | None) -> str:
    # Python takes at most microseconds; NGSI-LD brokers may send nanoseconds.
    return "." + digits[:6].ljust(6, "0") if digits else ""


# Entities share many date strings (installation dates...): caching spares re-parsing them.
@lru_cache(maxsize=8192)
def _parse_datetime(text: str) -> datetime | None:
    """An aware datetime (naive text taken as UTC), or None when ``text`` is not an ISO dateTime."""
    m = _DATETIME_TEXT.fullmatch(text)
    if m is None:
        return None
    day, clock, digits, tz = m.groups()
    if tz is None or tz in ("Z", "z"):
        offset = "+00:00"
    elif len(tz) > 3:
        offset = f"{tz[:3]}:{tz[-2:]}"
    else:
        offset = f"{tz}:00"
    try:
        return datetime.fromisoformat(f"{day}T{clock}{_fraction(digits)}{offset}")
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _parse_date(text: str) -> date | None:
    if _DATE_TEXT.fullmatch(text) is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _parse_time(text: str) -> time | None:
    m = _TIME_TEXT.fullmatch(text)
    if m is None:
        return None
    try:
        return time.fromisoformat(m.group(1) + _fraction(m.group(2)))  # wall-clock: the offset is dropped
    except ValueError:
        return None


# --- parser ----------------------------------------------------------------------------------------

_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_KEY: Final = re.compile(r"[A-Za-z0-9_@-]+")  # JSON keys inside [...] may be a little freer than names
_LIT_DATETIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?")
_LIT_TIME: Final = re.compile(r"\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?")
_LIT_NUMBER: Final = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LIT_BOOLEAN: Final = re.compile(r"true|false")
_LIT_URI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s;|(),\"]+")
# Operators longest first, so that ``!~=`` is not read as ``!`` and ``>=`` not as ``>``.
_OPERATORS: Final = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")
_VALUE_END: Final = frozenset(" \t\r\n;|),.")
_TERM_END: Final = frozenset(";|)")
_WHITESPACE: Final = frozenset(" \t\r\n")
_EXPECTED_VALUE: Final = 'a value (number, "string", true/false, dateTime, date, time or URI)'


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.end = len(text)

    # helpers

    def _found(self, pos: int) -> str:
        if pos >= self.end:
            return "end of query"
        snippet = self.text[pos : pos + 12]
        return f"'{snippet}…'" if pos + 12 < self.end else f"'{snippet}'"

    def _fail(self, expected: str, pos: int | None = None) -> NoReturn:
        at = self.pos if pos is None else pos
        raise QuerySyntaxError(f"Invalid q at position {at}: expected {expected}, found {self._found(at)}", at)

    def _error(self, message: str, pos: int) -> NoReturn:
        raise QuerySyntaxError(f"Invalid q at position {pos}: {message}", pos)

    def _peek(self) -> str | None:
        return self.text[self.pos] if self.pos < self.end else None

    def _skip_ws(self) -> None:
        while self.pos < self.end and self.text[self.pos] in _WHITESPACE:
            self.pos += 1

    # grammar

    def parse(self) -> QueryNode:
        self._skip_ws()
        if self.pos >= self.end:
            self._error("the query is empty; expected an attribute name or '('", 0)
        node = self._or()
        self._skip_ws()
        if self.pos < self.end:
            if self.text[self.pos] == ")":
                self._error("unbalanced ')': no '(' is open", self.pos)
            self._fail("';', '|' or end of query")
        return node

    def _or(self) -> QueryNode:
        terms = self._joined(self._and(), Or)
        while True:
            self._skip_ws()
            if self._peek() != "|":
                break
            self.pos += 1
            terms += self._joined(self._and(), Or)
        return terms[0] if len(terms) == 1 else Or(terms)

    def _and(self) -> QueryNode:
        terms = self._joined(self._primary(), And)
        while True:
            self._skip_ws()
            if self._peek() != ";":
                break
            self.pos += 1
            terms += self._joined(self._primary(), And)
        return terms[0] if len(terms) == 1 else And(terms)

    @staticmethod
    def _joined(node: QueryNode, kind: type[And] | type[Or]) -> tuple[QueryNode, ...]:
        # ``(a;b);c`` is ``a;b;c``: flattening keeps the tree (and its closures) shallow.
        return node.terms if isinstance(node, kind) else (node,)

    def _primary(self) -> QueryNode:
        self._skip_ws()
        if self._peek() != "(":
            return self._term()
        opened = self.pos
        self.pos += 1
        node = self._or()
        self._skip_ws()
        if self._peek() != ")":
            self._fail(f"')' to close the '(' opened at position {opened}")
        self.pos += 1
        return node

    def _term(self) -> QueryNode:
        path = self._path()
        self._skip_ws()
        op = self._operator()
        if op is None:
            nxt = self._peek()
            if nxt is None or nxt in _TERM_END:
                return Exists(path)
            if nxt == "=":
                self._fail("an operator (==, !=, >, >=, <, <=, ~=, !~=); '=' alone is not one, use '=='")
            self._fail("an operator (==, !=, >, >=, <, <=, ~=, !~=), ';', '|', ')' or end of query")
        if op in ("~=", "!~="):
            return Match(path, self._regex(), negate=op == "!~=")
        value = self._value_expression(op)
        return Compare(path, op, value)

    def _path(self) -> AttrPath:
        m = _NAME.match(self.text, self.pos)
        if m is None:
            self._fail("an attribute name or '('")
        name = m.group()
        self.pos = m.end()
        sub: list[str] = []
        while self._peek() == ".":
            m = _NAME.match(self.text, self.pos + 1)
            if m is None:
                self._fail("a sub-attribute name after '.'", self.pos + 1)
            sub.append(m.group())
            self.pos = m.end()
        keys: list[str] = []
        while self._peek() == "[":
            opened = self.pos
            self.pos += 1
            while True:
                m = _KEY.match(self.text, self.pos)
                if m is None:
                    self._fail("a key name inside '[...]'")
                keys.append(m.group())
                self.pos = m.end()
                if self._peek() != ".":
                    break
                self.pos += 1
            if self._peek() != "]":
                self._fail(f"']' to close the '[' opened at position {opened}")
            self.pos += 1
        return AttrPath(name, tuple(sub), tuple(keys))

    def _operator(self) -> str | None:
        for op in _OPERATORS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        return None

    def _value_expression(self, op: str) -> Value | Range | ValueList:
        self._skip_ws()
        first_pos = self.pos
        first = self._value()
        self._skip_ws()
        result: Value | Range | ValueList
        if self.text.startswith("..", self.pos):
            if op not in _EQUALITY_OPS:
                self._error(f"a range (v1..v2) only works with == or !=, not {op!r}", self.pos)
            self.pos += 2
            self._skip_ws()
            second = self._value()
            if first.kind not in _ORDERED_KINDS or first.kind != second.kind:
                self._error(
                    f"a range needs two numbers, strings, dateTimes, dates "
                    f"or times of the same kind, not a {first.kind} and a {second.kind}",
                    first_pos,
                )
            result = Range(first, second)
        elif self._peek() == ",":
            if op not in _EQUALITY_OPS:
                self._error(f"a list (v1,v2,...) only works with == or !=, not {op!r}", self.pos)
            items = [first]
            while self._peek() == ",":
                self.pos += 1
                self._skip_ws()
                items.append(self._value())
                self._skip_ws()
            result = ValueList(tuple(items))
        else:
            if op not in _EQUALITY_OPS and first.kind not in _ORDERED_KINDS:
                self._error(
                    f"{op!r} compares numbers, strings, dateTimes, dates and times; "
                    f"a {first.kind} only works with == or !=",
                    first_pos,
                )
            result = first
        self._skip_ws()
        if self.pos < self.end and self.text[self.pos] not in _TERM_END:
            self._fail("';', '|', ')' or end of query after the value")
        return result

    def _ends_value(self, pos: int) -> bool:
        return pos >= self.end or self.text[pos] in _VALUE_END

    def _value(self) -> Value:
        start = self.pos
        if start >= self.end:
            self._fail(_EXPECTED_VALUE)
        if self.text[start] == '"':
            return Value(ValueKind.STRING, self.text[start : self._quoted_end()], self._quoted())
        for kind, pattern in (
            (ValueKind.DATETIME, _LIT_DATETIME),
            (ValueKind.DATE, _DATE_TEXT),
            (ValueKind.TIME, _LIT_TIME),
            (ValueKind.NUMBER, _LIT_NUMBER),
            (ValueKind.BOOLEAN, _LIT_BOOLEAN),
        ):
            m = pattern.match(self.text, start)
            if m is not None and self._ends_value(m.end()):
                self.pos = m.end()
                return Value(kind, m.group(), self._literal(kind, m.group(), start))
        m = _LIT_URI.match(self.text, start)
        if m is not None:
            self.pos = m.end()
            return Value(ValueKind.URI, m.group(), m.group())
        self._fail(f"{_EXPECTED_VALUE}; strings must be double-quoted")

    def _literal(self, kind: ValueKind, text: str, pos: int) -> Scalar:
        parsed: Scalar | None
        if kind is ValueKind.DATETIME:
            parsed = _parse_datetime(text)
        elif kind is ValueKind.DATE:
            parsed = _parse_date(text)
        elif kind is ValueKind.TIME:
            parsed = _parse_time(text)
        elif kind is ValueKind.BOOLEAN:
            parsed = text == "true"
        else:
            parsed = int(text) if text.lstrip("-").isdigit() else float(text)
            if isinstance(parsed, float) and not math.isfinite(parsed):
                parsed = None
        if parsed is None:
            self._error(f"{text!r} is not a valid {kind}", pos)
        return parsed

    def _quoted_end(self) -> int:
        """Where the string starting at ``self.pos`` ends (after its closing quote)."""
        i = self.pos + 1
        while i < self.end:
            c = self.text[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                return i + 1
            i += 1
        self._error("unterminated string: missing the closing '\"'", self.pos)

    def _quoted(self) -> str:
        end = self._quoted_end()
        body = self.text[self.pos + 1 : end - 1]
        self.pos = end
        # Only \" and \\ are escapes; any other backslash stays, so regexes like "\d+" read naturally.
        return re.sub(r'\\(["\\])', r"\1", body)

    def _regex(self) -> re.Pattern[str]:
        self._skip_ws()
        start = self.pos
        if self._peek() == '"':
            pattern = self._quoted()
        else:
            pattern = self._bare_regex()
            if not pattern:
                self._fail("a regular expression (bare, or double-quoted)")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            self._error(f"invalid regular expression {pattern!r}: {exc.msg}", start)
        self._skip_ws()
        if self.pos < self.end and self.text[self.pos] not in _TERM_END:
            self._fail("';', '|', ')' or end of query after the regular expression")
        return compiled

    def _bare_regex(self) -> str:
        # Stops at ; | ) unless escaped, in a character class or in the regex's own parentheses, so
        # ``name~=^(PL|LP)`` works unquoted.
        i, depth, in_class = self.pos, 0, False
        while i < self.end:
            c = self.text[i]
            if c == "\\":
                i += 2
                continue
            if in_class:
                in_class = c != "]"
            elif c == "[":
                in_class = True
                if self.text.startswith("^", i + 1):
                    i += 1
                if self.text.startswith("]", i + 1):  # a leading ']' is literal
                    i += 1
            elif c == "(":
                depth += 1
            elif c == ")" and depth > 0:
                depth -= 1
            elif c in _TERM_END and depth == 0:
                break
            i += 1
        i = min(i, self.end)
        pattern = self.text[self.pos : i].rstrip()
        self.pos = i
        return pattern


def parse_q(text: str) -> QueryNode:
    """Parse an NGSI-LD ``q`` expression; raises ``QuerySyntaxError`` saying where and what was expected."""
    return _Parser(text).parse()


# --- evaluation ------------------------------------------------------------------------------------

_MISSING: Final = object()  # the path does not resolve on the entity
_NOPE: Final = object()  # the entity's value cannot be compared with this kind of literal

_Resolver = Callable[[Mapping[str, Any]], Any]
_Test = Callable[[Any], "bool | None"]  # True: match, False: comparable but no match, None: incomparable

# Where each attribute type keeps its value; anything else (Property, GeoProperty) uses "value".
_VALUE_KEY: Final = {
    "Relationship": "object",
    "ListRelationship": "objectList",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "ListProperty": "valueList",
    "JsonProperty": "json",
}
_MAPPINGS: Final = (dict, Mapping)  # dict first: isinstance stops at the cheap exact check


def _attribute_value(attribute: Any) -> Any:
    if not isinstance(attribute, _MAPPINGS):
        return _MISSING
    kind = attribute.get("type")
    key = _VALUE_KEY.get(kind, "value") if type(kind) is str else "value"
    return attribute.get(key, _MISSING)


def _compile_path(path: AttrPath) -> _Resolver:
    name, sub, keys = path.name, path.sub, path.keys
    if not sub and not keys:

        def resolve_plain(entity: Mapping[str, Any]) -> Any:
            return _attribute_value(entity.get(name))

        return resolve_plain

    def resolve(entity: Mapping[str, Any]) -> Any:
        node = entity.get(name)
        if sub:
            for step in sub:
                if not isinstance(node, _MAPPINGS):
                    return _MISSING
                node = node.get(step, _MISSING)
                if node is _MISSING:
                    return _MISSING
            # A sub-attribute is either a full attribute ({"type": ..., "value": ...}) or a plain
            # member such as observedAt or unitCode.
            value = _attribute_value(node) if isinstance(node, _MAPPINGS) and "type" in node else node
        else:
            value = _attribute_value(node)
        for key in keys:
            if not isinstance(value, _MAPPINGS):
                return _MISSING
            value = value.get(key, _MISSING)
            if value is _MISSING:
                return _MISSING
        return value

    return resolve


# Coercers: the entity's value as a Python value comparable with a literal of one kind, or _NOPE.


def _as_number(v: Any) -> Any:
    t = type(v)
    return v if t is int or t is float else _NOPE  # bool is excluded: booleans compare with booleans only


def _as_string(v: Any) -> Any:
    return v if type(v) is str else _NOPE


def _as_boolean(v: Any) -> Any:
    return v if type(v) is bool else _NOPE


def _typed_text(v: Any, kind: str) -> str | None:
    """The text of ``{"@type": kind, "@value": text}``, else None."""
    if isinstance(v, _MAPPINGS) and v.get("@type") == kind:
        text = v.get("@value")
        return text if type(text) is str else None
    return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _as_datetime(v: Any) -> Any:
    if type(v) is str:
        text: str | None = v
    elif isinstance(v, datetime):
        return _utc(v)
    else:
        text = _typed_text(v, "DateTime")
    parsed = _parse_datetime(text) if text is not None else None
    return _NOPE if parsed is None else parsed


def _as_date(v: Any) -> Any:
    if isinstance(v, datetime):
        return _utc(v).astimezone(UTC).date()
    if isinstance(v, date):
        return v
    if type(v) is str:
        day = _parse_date(v) if len(v) == 10 else None
        if day is not None:
            return day
        moment = _parse_datetime(v)
    else:
        text = _typed_text(v, "Date")
        if text is not None:
            day = _parse_date(text)
            return _NOPE if day is None else day
        text = _typed_text(v, "DateTime")
        moment = _parse_datetime(text) if text is not None else None
    # A dateTime against a date literal: its UTC calendar day.
    return _NOPE if moment is None else moment.astimezone(UTC).date()


def _as_time(v: Any) -> Any:
    if isinstance(v, time):
        return v.replace(tzinfo=None)
    text = v if type(v) is str else _typed_text(v, "Time")
    parsed = _parse_time(text) if text is not None else None
    return _NOPE if parsed is None else parsed


_COERCERS: Final[dict[ValueKind, Callable[[Any], Any]]] = {
    ValueKind.NUMBER: _as_number,
    ValueKind.STRING: _as_string,
    ValueKind.URI: _as_string,  # a relationship's object, or a string value
    ValueKind.BOOLEAN: _as_boolean,
    ValueKind.DATETIME: _as_datetime,
    ValueKind.DATE: _as_date,
    ValueKind.TIME: _as_time,
}


def _membership_test(values: tuple[Value, ...]) -> _Test:
    groups: dict[Callable[[Any], Any], set[Any]] = {}
    for value in values:
        groups.setdefault(_COERCERS[value.kind], set()).add(value.parsed)
    frozen = tuple((coerce, frozenset(members)) for coerce, members in groups.items())
    if len(frozen) == 1:
        ((coerce_one, members_one),) = frozen

        def test_one(target: Any) -> bool | None:
            c = coerce_one(target)
            return None if c is _NOPE else c in members_one

        return test_one

    def test_many(target: Any) -> bool | None:
        comparable = False
        for coerce, members in frozen:
            c = coerce(target)
            if c is not _NOPE:
                if c in members:
                    return True
                comparable = True
        return False if comparable else None

    return test_many


def _range_test(span: Range) -> _Test:
    coerce, low, high = _COERCERS[span.low.kind], span.low.parsed, span.high.parsed

    def test(target: Any) -> bool | None:
        c = coerce(target)
        return None if c is _NOPE else bool(low <= c <= high)

    return test


def _ordering_test(op: str, value: Value) -> _Test:
    compare, coerce, literal = _ORDERING_OPS[op], _COERCERS[value.kind], value.parsed

    def test(target: Any) -> bool | None:
        c = coerce(target)
        return None if c is _NOPE else compare(c, literal)

    return test


def _regex_test(regex: re.Pattern[str]) -> _Test:
    search = regex.search

    def test(target: Any) -> bool | None:
        return search(target) is not None if type(target) is str else None

    return test


def _positive(resolve: _Resolver, test: _Test) -> Predicate:
    """Some (element of the) value matches."""

    def predicate(entity: Mapping[str, Any]) -> bool:
        value = resolve(entity)
        if value is _MISSING:
            return False
        if type(value) is list:
            return any(test(item) for item in value)
        return test(value) is True

    return predicate


def _negative(resolve: _Resolver, test: _Test) -> Predicate:
    """The value (or some list element) is comparable, and nothing comparable matches."""

    def predicate(entity: Mapping[str, Any]) -> bool:
        value = resolve(entity)
        if value is _MISSING:
            return False
        if type(value) is list:
            comparable = False
            for item in value:
                outcome = test(item)
                if outcome:
                    return False
                comparable = comparable or outcome is False
            return comparable
        return test(value) is False

    return predicate


def _junction(parts: list[Predicate], *, conjunction: bool) -> Predicate:
    if len(parts) == 2:  # the common case, without the generator all()/any() allocate per entity
        first, second = parts
        if conjunction:
            return lambda entity: first(entity) and second(entity)
        return lambda entity: first(entity) or second(entity)
    frozen = tuple(parts)
    if conjunction:
        return lambda entity: all(part(entity) for part in frozen)
    return lambda entity: any(part(entity) for part in frozen)


def _compile(node: QueryNode) -> Predicate:
    if isinstance(node, Exists):
        resolve = _compile_path(node.path)
        return lambda entity: resolve(entity) is not _MISSING
    if isinstance(node, Compare):
        value = node.value
        if isinstance(value, Range):
            test = _range_test(value)
        elif isinstance(value, ValueList):
            test = _membership_test(value.items)
        elif node.op in _EQUALITY_OPS:
            test = _membership_test((value,))
        else:
            test = _ordering_test(node.op, value)
        combine = _negative if node.op == "!=" else _positive
        return combine(_compile_path(node.path), test)
    if isinstance(node, Match):
        return (_negative if node.negate else _positive)(_compile_path(node.path), _regex_test(node.regex))
    if isinstance(node, And | Or):
        return _junction([_predicate(t) for t in node.terms], conjunction=isinstance(node, And))
    raise TypeError(f"not a query node: {node!r}")


def _predicate(node: QueryNode) -> Predicate:
    compiled = node._compiled
    if compiled is None:
        compiled = _compile(node)
        object.__setattr__(node, "_compiled", compiled)  # a cache, not state: equality ignores it
    return compiled


def evaluate(node: QueryNode, entity: Mapping[str, Any]) -> bool:
    """Whether a normalized NGSI-LD entity satisfies the query (never raises on odd entity data)."""
    return _predicate(node)(entity)


# --- geo-queries -----------------------------------------------------------------------------------

GEORELS: Final = ("near", "within", "contains", "intersects", "equals", "disjoint", "overlaps")
GEOMETRY_TYPES: Final = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
_GeoTest = Callable[[float, float], bool]


@dataclass(frozen=True)
class GeoQuery:
    """A geo-query on the ``location`` of point entities; ``geometry`` is in lon/lat."""

    georel: str
    max_distance: float | None
    min_distance: float | None
    geometry: BaseGeometry
    _test: _GeoTest = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.georel not in GEORELS:
            raise QuerySyntaxError(f"georel {self.georel!r} is unknown; use one of {', '.join(GEORELS)}")
        distances = [d for d in (self.max_distance, self.min_distance) if d is not None]
        if self.georel == "near":
            if len(distances) != 1:
                raise QuerySyntaxError("georel near takes exactly one of maxDistance or minDistance")
            if not (math.isfinite(distances[0]) and distances[0] > 0):
                raise QuerySyntaxError("maxDistance/minDistance must be a positive number of metres")
        elif distances:
            raise QuerySyntaxError(f"georel {self.georel} takes no maxDistance/minDistance")
        shapely.prepare(self.geometry)  # speeds up the repeated point tests
        object.__setattr__(self, "_test", self._make_test())

    def _make_test(self) -> _GeoTest:
        geometry = self.geometry
        is_point = geometry.geom_type == "Point"
        if self.georel == "near":
            if is_point:
                px, py = float(geometry.x), float(geometry.y)

                def distance(lon: float, lat: float) -> float:
                    return haversine_m(lon, lat, px, py)

            else:
                # Distance to the nearest point of a line or polygon: planar, in the metropole's
                # projection (accurate to well under a metre at its scale).
                projected, to_xy = METRO_PROJECTION.geometry_to_xy(geometry), METRO_PROJECTION.to_xy

                def distance(lon: float, lat: float) -> float:
                    return float(projected.distance(Point(*to_xy(lon, lat))))

            if self.max_distance is not None:
                limit = self.max_distance
                return lambda lon, lat: distance(lon, lat) <= limit
            floor = self.min_distance
            assert floor is not None  # __post_init__ checked near has exactly one distance
            return lambda lon, lat: distance(lon, lat) >= floor
        if self.georel in ("within", "intersects"):
            # For a point "within" is "covered by": a point on the boundary is within. For a point,
            # covered-by and intersects coincide, and intersects_xy needs no Point object.
            return lambda lon, lat: bool(shapely.intersects_xy(geometry, lon, lat))
        if self.georel == "disjoint":
            return lambda lon, lat: not shapely.intersects_xy(geometry, lon, lat)
        if self.georel in ("contains", "equals"):
            # A point contains (or equals) only a geometry that is that same point.
            if is_point:
                target = (float(geometry.x), float(geometry.y))
                return lambda lon, lat: (lon, lat) == target
            if self.georel == "contains":
                return lambda lon, lat: bool(Point(lon, lat).contains(geometry))
            return lambda lon, lat: bool(Point(lon, lat).equals(geometry))
        # overlaps needs two geometries of the same dimension each having points outside the other;
        # a single point has no point outside anything it shares a point with, so it never overlaps.
        return lambda lon, lat: False

    def matches(self, lon: float, lat: float) -> bool:
        """Whether a point entity at (lon, lat) satisfies the geo-query."""
        return self._test(lon, lat)

    def bbox(self) -> tuple[float, float, float, float] | None:
        """A (min_lon, min_lat, max_lon, max_lat) box every matching point lies in, or None if unbounded."""
        if self.georel == "disjoint" or (self.georel == "near" and self.max_distance is None):
            return None
        min_lon, min_lat, max_lon, max_lat = (float(b) for b in self.geometry.bounds)
        if self.georel != "near" or self.max_distance is None:
            return min_lon, min_lat, max_lon, max_lat
        # The margin absorbs the gap between the great-circle distance and the box's parallel arcs.
        radius = self.max_distance * 1.001 + 1.0
        if self.geometry.geom_type == "Point":
            box = BBox.around(min_lon, min_lat, radius)
            return box.min_lon, box.min_lat, box.max_lon, box.max_lat
        # Other geometries are measured in the projection, so expand by its metres per degree.
        x_per_degree, y_per_degree = METRO_PROJECTION.to_xy(METRO_PROJECTION.lon0 + 1, METRO_PROJECTION.lat0 + 1)
        dlon, dlat = radius / x_per_degree, radius / y_per_degree
        return (
            max(min_lon - dlon, -180.0),
            max(min_lat - dlat, -90.0),
            min(max_lon + dlon, 180.0),
            min(max_lat + dlat, 90.0),
        )


_DISTANCE: Final = re.compile(r"(maxDistance|minDistance)\s*==\s*(.+)")


def _parse_georel(text: str) -> tuple[str, float | None, float | None]:
    relation, *modifiers = (part.strip() for part in text.split(";"))
    if relation not in GEORELS:
        raise QuerySyntaxError(f"georel {relation!r} is unknown; use one of {', '.join(GEORELS)}")
    if relation != "near":
        if modifiers:
            raise QuerySyntaxError(
                f"georel {relation} takes no modifier (got {';'.join(modifiers)!r}); "
                "only near takes maxDistance or minDistance"
            )
        return relation, None, None
    usage = (
        "georel near needs exactly one of maxDistance==<metres> or minDistance==<metres>, e.g. near;maxDistance==500"
    )
    m = _DISTANCE.fullmatch(modifiers[0]) if len(modifiers) == 1 else None
    if m is None:
        raise QuerySyntaxError(usage)
    try:
        metres = float(m.group(2))
    except ValueError:
        raise QuerySyntaxError(f"{m.group(1)} must be a number of metres, not {m.group(2)!r}") from None
    if not (math.isfinite(metres) and metres > 0):
        raise QuerySyntaxError(f"{m.group(1)} must be a positive number of metres, not {m.group(2)!r}")
    return ("near", metres, None) if m.group(1) == "maxDistance" else ("near", None, metres)


class _ShapeError(ValueError):
    pass


def _position(v: Any) -> list[float]:
    if not isinstance(v, list) or len(v) not in (2, 3) or not all(type(c) in (int, float) for c in v):
        raise _ShapeError("a position must be [longitude, latitude]")
    lon, lat = float(v[0]), float(v[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise _ShapeError(
            f"position [{v[0]}, {v[1]}] is out of range: GeoJSON order is [longitude, latitude], "
            "longitude in [-180, 180], latitude in [-90, 90]"
        )
    return [lon, lat]  # an altitude is dropped: matching is 2D


def _positions(v: Any, what: str, minimum: int) -> list[list[float]]:
    if not isinstance(v, list) or len(v) < minimum:
        raise _ShapeError(f"{what} must be an array of at least {minimum} position(s)")
    return [_position(p) for p in v]


def _ring(v: Any) -> list[list[float]]:
    ring = _positions(v, "a linear ring", 4)
    if ring[0] != ring[-1]:
        raise _ShapeError("a linear ring must be closed: its last position repeats the first")
    return ring


def _many(v: Any, what: str, build: Callable[[Any], Any]) -> list[Any]:
    if not isinstance(v, list) or not v:
        raise _ShapeError(f"{what} must be a non-empty array")
    return [build(part) for part in v]


_SHAPES: Final[dict[str, Callable[[Any], Any]]] = {
    "Point": _position,
    "MultiPoint": lambda v: _positions(v, "a MultiPoint", 1),
    "LineString": lambda v: _positions(v, "a LineString", 2),
    "MultiLineString": lambda v: _many(v, "a MultiLineString", lambda p: _positions(p, "a LineString", 2)),
    "Polygon": lambda v: _many(v, "a Polygon", _ring),
    "MultiPolygon": lambda v: _many(v, "a MultiPolygon", lambda p: _many(p, "a Polygon", _ring)),
}


def _parse_geometry(kind: str, coordinates: str) -> BaseGeometry:
    if kind not in _SHAPES:
        raise QuerySyntaxError(f"geometry {kind!r} is not supported; use one of {', '.join(GEOMETRY_TYPES)}")
    try:
        parsed = orjson.loads(coordinates)
    except orjson.JSONDecodeError as exc:
        raise QuerySyntaxError(f"coordinates must be a JSON array, e.g. [5.04,47.32]: {exc}") from None
    if not isinstance(parsed, list):
        raise QuerySyntaxError("coordinates must be a JSON array, e.g. [5.04,47.32]")
    try:
        normalized = _SHAPES[kind](parsed)
    except _ShapeError as exc:
        raise QuerySyntaxError(f"coordinates are not valid for a {kind}: {exc}") from None
    geometry = shape({"type": kind, "coordinates": normalized})
    if kind in ("Polygon", "MultiPolygon") and not geometry.is_valid:
        raise QuerySyntaxError(f"coordinates do not form a valid {kind}: {explain_validity(geometry)}")
    return geometry


def parse_geoquery(
    georel: str | None, geometry: str | None, coordinates: str | None, geoproperty: str | None = None
) -> GeoQuery | None:
    """Build a geo-query from its request parameters; None when none of the three is given."""
    georel, geometry, coordinates, geoproperty = (
        v.strip() if v is not None and v.strip() else None for v in (georel, geometry, coordinates, geoproperty)
    )
    if geoproperty is not None and geoproperty != "location":
        raise QuerySyntaxError(f"geoproperty {geoproperty!r} is not supported: only 'location' is")
    given = {"georel": georel, "geometry": geometry, "coordinates": coordinates}
    if all(v is None for v in given.values()):
        return None
    missing = [name for name, v in given.items() if v is None]
    if missing:
        raise QuerySyntaxError(
            f"a geo-query needs georel, geometry and coordinates together; missing: {', '.join(missing)}"
        )
    assert georel is not None  # for mypy: checked just above
    assert geometry is not None
    assert coordinates is not None
    relation, max_distance, min_distance = _parse_georel(georel)
    return GeoQuery(relation, max_distance, min_distance, _parse_geometry(geometry, coordinates))
