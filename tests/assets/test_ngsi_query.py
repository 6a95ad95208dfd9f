"""The NGSI-LD query language (q) and geo-queries over normalized entities."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from shapely.geometry import Point

from metropilot.assets.ngsi_query import (
    And,
    AttrPath,
    Compare,
    Exists,
    GeoQuery,
    Match,
    Or,
    QueryNode,
    QuerySyntaxError,
    Range,
    Value,
    ValueKind,
    ValueList,
    attributes_of,
    evaluate,
    parse_geoquery,
    parse_q,
)
from metropilot.core.geo import EARTH_RADIUS_M, haversine_m

CABINET = "urn:ngsi-ld:StreetlightControlCabinet:dijon-000001"


def streetlight(**overrides: Any) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": "urn:ngsi-ld:Streetlight:dijon-000001",
        "type": "Streetlight",
        "name": {"type": "Property", "value": "PL 000001"},
        "lanternHeight": {"type": "Property", "value": 8.0, "unitCode": "MTR"},
        "nominalPower": {"type": "Property", "value": 70, "unitCode": "WTT"},
        "dimmable": {"type": "Property", "value": True},
        "address": {
            "type": "Property",
            "value": {
                "streetAddress": "Rue Victor Hugo",
                "addressLocality": "Dijon",
                "postal": {"code": "21000"},
            },
        },
        "refStreetlightControlCabinet": {"type": "Relationship", "object": CABINET},
        "dateServiceStarted": {
            "type": "Property",
            "value": {"@type": "DateTime", "@value": "2019-03-01T00:00:00Z"},
        },
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [5.04, 47.32]}},
        "temperature": {
            "type": "Property",
            "value": 3.5,
            "observedAt": "2026-01-15T03:00:00Z",
            "accuracy": {"type": "Property", "value": 0.5},
        },
        "controlledProperty": {"type": "Property", "value": ["temperature", "humidity"]},
        "circuits": {"type": "Property", "value": [1, 2, 5]},
    }
    entity.update(overrides)
    return entity


def matches(q: str, entity: dict[str, Any] | None = None) -> bool:
    return evaluate(parse_q(q), streetlight() if entity is None else entity)


def num(text: str) -> Value:
    return Value(ValueKind.NUMBER, text, float(text) if "." in text else int(text))


def cmp(name: str, op: str, text: str) -> Compare:
    return Compare(AttrPath(name), op, num(text))


# --- grammar: the AST ------------------------------------------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    assert parse_q("a==1;b==2|c==3") == Or((And((cmp("a", "==", "1"), cmp("b", "==", "2"))), cmp("c", "==", "3")))
    assert parse_q("a==1|b==2;c==3") == Or((cmp("a", "==", "1"), And((cmp("b", "==", "2"), cmp("c", "==", "3")))))


def test_parentheses_group_and_nest() -> None:
    assert parse_q("a==1;(b==2|c==3)") == And((cmp("a", "==", "1"), Or((cmp("b", "==", "2"), cmp("c", "==", "3")))))
    assert parse_q("((a==1|(b==2));c==3)") == And((Or((cmp("a", "==", "1"), cmp("b", "==", "2"))), cmp("c", "==", "3")))
    # Same-operator groups flatten: (a;b);c is a;b;c.
    assert parse_q("(a==1;b==2);c==3") == parse_q("a==1;b==2;c==3")
    assert parse_q("((a==1))") == cmp("a", "==", "1")


def test_precedence_decides_the_outcome() -> None:
    only_c = {"c": {"type": "Property", "value": 3}}
    only_a = {"a": {"type": "Property", "value": 1}}
    assert evaluate(parse_q("a==1;b==2|c==3"), only_c)
    assert not evaluate(parse_q("a==1;(b==2|c==3)"), only_c)
    assert not evaluate(parse_q("a==1;b==2|c==3"), only_a)
    assert evaluate(parse_q("a==1;(b==2|c==3)"), {**only_a, **only_c})


def test_whitespace_around_tokens_is_tolerated() -> None:
    assert parse_q("  ( a == 1 ; b >= 2 )  |  c  ") == parse_q("(a==1;b>=2)|c")
    assert parse_q("a == 1 .. 3") == parse_q("a==1..3")
    assert parse_q("a == 1 , 2") == parse_q("a==1,2")


@pytest.mark.parametrize(
    ("text", "kind", "parsed"),
    [
        ("42", ValueKind.NUMBER, 42),
        ("-7", ValueKind.NUMBER, -7),
        ("3.25", ValueKind.NUMBER, 3.25),
        ("-1.5e3", ValueKind.NUMBER, -1500.0),
        ("2E-2", ValueKind.NUMBER, 0.02),
        ('"PL 1"', ValueKind.STRING, "PL 1"),
        ('"a;b|c)"', ValueKind.STRING, "a;b|c)"),
        (r'"say \"hi\""', ValueKind.STRING, 'say "hi"'),
        (r'"back\\slash"', ValueKind.STRING, "back\\slash"),
        ("true", ValueKind.BOOLEAN, True),
        ("false", ValueKind.BOOLEAN, False),
        ("2017-12-24T12:00:00Z", ValueKind.DATETIME, datetime(2017, 12, 24, 12, tzinfo=UTC)),
        (
            "2017-12-24T12:00:00.250+01:00",
            ValueKind.DATETIME,
            datetime(2017, 12, 24, 11, 0, 0, 250000, tzinfo=UTC),
        ),
        ("2017-12-24T12:00:00", ValueKind.DATETIME, datetime(2017, 12, 24, 12, tzinfo=UTC)),  # naive: UTC
        ("2017-12-24", ValueKind.DATE, date(2017, 12, 24)),
        ("12:00:00", ValueKind.TIME, time(12)),
        ("12:30:05.5", ValueKind.TIME, time(12, 30, 5, 500000)),
        (CABINET, ValueKind.URI, CABINET),
        ("https://example.org/a/b?c=d", ValueKind.URI, "https://example.org/a/b?c=d"),
    ],
)
def test_values_are_typed_and_parsed(text: str, kind: ValueKind, parsed: object) -> None:
    node = parse_q(f"x=={text}")
    assert isinstance(node, Compare)
    assert isinstance(node.value, Value)
    assert node.value.kind is kind
    assert node.value.parsed == parsed
    assert type(node.value.parsed) is type(parsed)


def test_ranges_and_lists_parse() -> None:
    node = parse_q("x==1..5.5")
    assert isinstance(node, Compare)
    assert node.value == Range(num("1"), num("5.5"))
    node = parse_q('x!=1,"two",true,urn:a:b')
    assert isinstance(node, Compare)
    assert isinstance(node.value, ValueList)
    assert [v.kind for v in node.value.items] == [
        ValueKind.NUMBER,
        ValueKind.STRING,
        ValueKind.BOOLEAN,
        ValueKind.URI,
    ]
    node = parse_q("x==2017-01-01T00:00:00Z..2018-01-01T00:00:00Z")
    assert isinstance(node, Compare)
    assert isinstance(node.value, Range)
    assert node.value.low.kind is ValueKind.DATETIME


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("a", AttrPath("a")),
        ("temperature.observedAt", AttrPath("temperature", ("observedAt",))),
        ("a.b.c", AttrPath("a", ("b", "c"))),
        ("address[addressLocality]", AttrPath("address", (), ("addressLocality",))),
        ("a[b.c]", AttrPath("a", (), ("b", "c"))),
        ("a[b][c]", AttrPath("a", (), ("b", "c"))),
        ("a.meta[x]", AttrPath("a", ("meta",), ("x",))),
        ("snake_case2", AttrPath("snake_case2")),
    ],
)
def test_attribute_paths(text: str, path: AttrPath) -> None:
    node = parse_q(text)
    assert node == Exists(path)
    assert isinstance(node, Exists)
    assert str(node.path) == text.replace("][", ".")


def test_regex_terms() -> None:
    node = parse_q("name~=^PL 0+1$")
    assert isinstance(node, Match)
    assert node.regex.pattern == "^PL 0+1$"
    assert not node.negate
    node = parse_q('name!~="a;b|c"')
    assert isinstance(node, Match)
    assert node.negate
    assert node.regex.pattern == "a;b|c"
    # A bare regex stops at ; | ) unless they belong to the regex's own groups or classes.
    node = parse_q("name~=^(PL|LP) [0-9|]+;a")
    assert isinstance(node, And)
    first = node.terms[0]
    assert isinstance(first, Match)
    assert first.regex.pattern == "^(PL|LP) [0-9|]+"
    node = parse_q(r"(name~=x\)y)|a")
    assert isinstance(node, Or)
    assert isinstance(node.terms[0], Match)
    assert node.terms[0].regex.pattern == r"x\)y"
    node = parse_q("name~=abc   |a")
    assert isinstance(node, Or)
    assert isinstance(node.terms[0], Match)
    assert node.terms[0].regex.pattern == "abc"  # trailing blanks are not part of a bare regex


def test_nodes_are_immutable_and_hashable() -> None:
    node = parse_q("a==1;b~=x")
    assert isinstance(node, And)
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.terms = ()  # type: ignore[misc]
    assert parse_q("a==1;b~=x") == node
    assert hash(parse_q("a==1;b~=x")) == hash(node)
    evaluate(node, {})  # compiling caches a closure: equality must not change
    assert parse_q("a==1;b~=x") == node
    assert len({node, parse_q("a==1;b~=x")}) == 1


def test_attributes_of_lists_top_level_names() -> None:
    node = parse_q("a==1;(b.c>2|d[e.f]~=x);a.observedAt<2020-01-01T00:00:00Z|g")
    assert attributes_of(node) == frozenset({"a", "b", "d", "g"})
    assert attributes_of(parse_q("temperature.observedAt")) == frozenset({"temperature"})


def test_ordering_with_a_list_or_range_cannot_be_built_directly() -> None:
    with pytest.raises(QuerySyntaxError):
        Compare(AttrPath("a"), ">", Range(num("1"), num("2")))
    with pytest.raises(QuerySyntaxError):
        Compare(AttrPath("a"), "=~", num("1"))


# --- grammar: errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ("(a==1", 5, "')' to close the '(' opened at position 0"),
        ("((a==1)", 7, "')'"),
        ("a==1)", 4, "unbalanced ')'"),
        ("(a==1));b", 6, "unbalanced ')'"),
        ("()", 1, "attribute name"),
        ("a==1;", 5, "attribute name"),
        ("|a==1", 0, "attribute name"),
        ("a==1||b==2", 5, "attribute name"),
        ("a==1;;b==2", 5, "attribute name"),
        ("1a==1", 0, "attribute name"),
        ("a==", 3, "a value"),
        ("a>=   ", 6, "a value"),
        ("a==1,", 5, "a value"),
        ("a==1..", 6, "a value"),
        ("a~=", 3, "regular expression"),
        ("a~=;b", 3, "regular expression"),
        ('a=="abc', 3, "unterminated string"),
        ('a=="abc\\"', 3, "unterminated string"),
        ('a=="x";b=="y', 10, "unterminated string"),
        ("a>1..5", 3, "range"),
        ("a<1,2", 3, "list"),
        ("a>true", 2, "== or !="),
        ("a<=urn:x:1", 3, "== or !="),
        ("a==1..true", 3, "same kind"),
        ('a==1.."z"', 3, "same kind"),
        ("a==true..false", 3, "same kind"),
        ("a==ok", 3, "double-quoted"),
        ("a=1", 1, "'=='"),
        ("a 1", 2, "an operator"),
        ("a==1 2", 5, "after the value"),
        ('a=="x"y', 6, "after the value"),
        ("a.==1", 2, "sub-attribute"),
        ("a[b==1", 3, "']' to close the '[' opened at position 1"),
        ("a[]==1", 2, "key name"),
        ("a~=(x", 3, "invalid regular expression"),
        ('a~="[a-"', 3, "invalid regular expression"),
        ('a~="x" y', 7, "after the regular expression"),
        ("a==2017-02-30", 3, "not a valid date"),
        ("a==25:00:00", 3, "not a valid time"),
        ("a==2017-12-24T25:00:00Z", 3, "not a valid dateTime"),
        ("a==1e999", 3, "not a valid number"),
    ],
)
def test_syntax_errors_say_where_and_what(text: str, position: int, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_q(text)
    assert caught.value.position == position
    message = str(caught.value)
    assert f"position {position}" in message
    assert fragment in message


def test_syntax_errors_name_what_was_found() -> None:
    with pytest.raises(QuerySyntaxError, match=r"found end of query"):
        parse_q("a==1;")
    with pytest.raises(QuerySyntaxError, match=r"found 'ok'"):
        parse_q("a==ok")
    assert issubclass(QuerySyntaxError, ValueError)


# --- evaluation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("lanternHeight==8", True),  # 8 == 8.0
        ("lanternHeight==8.5", False),
        ("lanternHeight!=8.5", True),
        ("lanternHeight!=8", False),
        ("lanternHeight>7.9", True),
        ("lanternHeight>8", False),
        ("lanternHeight>=8", True),
        ("lanternHeight<8", False),
        ("lanternHeight<=8", True),
        ("lanternHeight<1e1", True),
        ("nominalPower>-1", True),
        ('name=="PL 000001"', True),
        ('name!="PL 000001"', False),
        ('name>"PL 000000"', True),  # lexicographic
        ('name<"PL 00001"', True),
        ('name<"PL 000001"', False),
        ("dimmable==true", True),
        ("dimmable==false", False),
        ("dimmable!=false", True),
        ("dimmable", True),
        ("location", True),
        ("location==5.04", False),
    ],
)
def test_comparisons(q: str, expected: bool) -> None:
    assert matches(q) is expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("lanternHeight==8..9", True),
        ("lanternHeight==1..8", True),  # inclusive ends
        ("lanternHeight==8.01..9", False),
        ("lanternHeight!=1..8", False),
        ("lanternHeight!=9..10", True),
        ('name=="PL 0".."PL 1"', True),
        ('name=="PL 1".."PL 2"', False),
        ("dateServiceStarted==2019-01-01T00:00:00Z..2019-12-31T23:59:59Z", True),
        ("dateServiceStarted==2019-03-01T00:00:00Z..2019-03-01T00:00:00Z", True),
        ("dateServiceStarted==2019-03-01T00:00:01Z..2020-01-01T00:00:00Z", False),
        ("lanternHeight==9..1", False),  # an empty range matches nothing
    ],
)
def test_ranges(q: str, expected: bool) -> None:
    assert matches(q) is expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("lanternHeight==6,8,10", True),
        ("lanternHeight==6,10", False),
        ("lanternHeight!=6,10", True),
        ("lanternHeight!=6,8", False),
        ('name=="x","PL 000001"', True),
        ('lanternHeight==8,"eight"', True),  # mixed-kind lists: each member compares with its own kind
        ('lanternHeight!="eight",9', True),
        ('lanternHeight!="eight","nine"', False),  # nothing comparable: a type mismatch, not a difference
        ("dimmable==false,true", True),
        ("dimmable==1,0", False),  # booleans are not numbers
    ],
)
def test_lists(q: str, expected: bool) -> None:
    assert matches(q) is expected


def test_relationships_compare_their_object() -> None:
    assert matches(f"refStreetlightControlCabinet=={CABINET}")
    assert not matches(f"refStreetlightControlCabinet!={CABINET}")
    assert matches("refStreetlightControlCabinet!=urn:ngsi-ld:StreetlightControlCabinet:dijon-000002")
    assert matches(f"refStreetlightControlCabinet==urn:a:b,{CABINET}")
    assert matches(f'refStreetlightControlCabinet=="{CABINET}"')
    assert matches("refStreetlightControlCabinet~=:dijon-0+1$")
    assert not matches("refStreetlightControlCabinet==urn:ngsi-ld:StreetlightControlCabinet:dijon")
    # A URI value is a plain string too.
    assert matches(
        "homepage==https://example.org/x",
        {"homepage": {"type": "Property", "value": "https://example.org/x"}},
    )


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("dateServiceStarted==2019-03-01T00:00:00Z", True),
        ("dateServiceStarted==2019-03-01T01:00:00+01:00", True),  # the same instant
        ("dateServiceStarted==2019-03-01T00:00:00", True),  # naive is UTC
        ("dateServiceStarted==2019-03-01T00:00:00.000Z", True),
        ("dateServiceStarted>2019-02-28T23:59:59Z", True),
        ("dateServiceStarted>2019-03-01T00:30:00+01:00", True),  # 23:30 UTC the day before
        ("dateServiceStarted<2019-03-01T00:00:00.001Z", True),
        ("dateServiceStarted<2019-03-01T00:00:00Z", False),
        ("dateServiceStarted>=2019-03-01T00:00:00Z", True),
        ("dateServiceStarted!=2019-03-01T00:00:00Z", False),
        ("dateServiceStarted!=2020-03-01T00:00:00Z", True),
        # A date literal compares the dateTime's UTC day.
        ("dateServiceStarted==2019-03-01", True),
        ("dateServiceStarted>=2019-03-01", True),
        ("dateServiceStarted>2019-03-01", False),
        ("dateServiceStarted<2019-03-02", True),
        # A dateTime is neither a number nor a string literal.
        ("dateServiceStarted>0", False),
        ('dateServiceStarted=="2019-03-01T00:00:00Z"', False),
    ],
)
def test_datetimes_compare_chronologically(q: str, expected: bool) -> None:
    assert matches(q) is expected


def test_datetime_strings_on_the_entity_compare_as_datetimes() -> None:
    # observedAt is a plain string member; it reads as an ISO dateTime.
    assert matches("temperature.observedAt>2026-01-15T02:59:59Z")
    assert matches("temperature.observedAt==2026-01-15T04:00:00+01:00")
    assert not matches("temperature.observedAt<2026-01-15T04:00:00+01:00")
    assert matches("temperature.observedAt==2026-01-15")
    entity = {
        "seen": {"type": "Property", "value": "2026-01-15T03:00:00.123456789+00:00"},
        "naive": {"type": "Property", "value": "2026-01-15T03:00:00"},
        "word": {"type": "Property", "value": "yesterday"},
        "day": {"type": "Property", "value": {"@type": "Date", "@value": "2026-01-15"}},
        "clock": {"type": "Property", "value": "07:30:00"},
        "typedClock": {"type": "Property", "value": {"@type": "Time", "@value": "22:00:00Z"}},
    }
    assert evaluate(parse_q("seen>2026-01-15T03:00:00.123Z"), entity)  # nanoseconds are accepted
    assert evaluate(parse_q("naive==2026-01-15T03:00:00Z"), entity)  # naive entity strings: UTC too
    assert not evaluate(parse_q("word>2000-01-01T00:00:00Z"), entity)
    assert not evaluate(parse_q("word!=2000-01-01T00:00:00Z"), entity)
    assert evaluate(parse_q("day==2026-01-15"), entity)
    assert evaluate(parse_q("day<2026-01-16"), entity)
    assert not evaluate(parse_q("day==2026-01-15T00:00:00Z"), entity)  # a date is not a dateTime
    assert evaluate(parse_q("clock<08:00:00"), entity)
    assert evaluate(parse_q("clock==07:00:00..07:59:59"), entity)
    assert evaluate(parse_q("typedClock>21:00:00"), entity)
    assert not evaluate(parse_q("clock<08"), entity)  # a number is not a time


def test_python_datetime_values_are_compared_safely() -> None:
    # Entities built in Python (not from JSON) may hold datetime objects, naive or aware.
    naive = {"at": {"type": "Property", "value": datetime(2024, 5, 1, 12)}}
    aware = {"at": {"type": "Property", "value": datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2)))}}
    q = parse_q("at==2024-05-01T12:00:00Z")
    assert evaluate(q, naive)
    assert evaluate(q, aware)
    assert evaluate(parse_q("at==2024-05-01"), aware)


def test_sub_attributes() -> None:
    assert matches('lanternHeight.unitCode=="MTR"')
    assert not matches('lanternHeight.unitCode=="CMT"')
    assert matches("lanternHeight.unitCode")
    assert not matches("name.unitCode")
    assert not matches('name.unitCode!="MTR"')
    # A sub-property with its own value.
    assert matches("temperature.accuracy<1")
    assert matches("temperature.accuracy==0.5")
    assert not matches("temperature.accuracy.unitCode")
    nested = {"a": {"type": "Property", "value": 1, "b": {"type": "Property", "value": 2, "c": "deep"}}}
    assert evaluate(parse_q('a.b.c=="deep"'), nested)
    assert evaluate(parse_q("a.b==2"), nested)


def test_bracket_paths_descend_into_the_value() -> None:
    assert matches('address[addressLocality]=="Dijon"')
    assert not matches('address[addressLocality]=="Talant"')
    assert matches('address[streetAddress]~="^Rue "')
    assert matches('address[postal.code]=="21000"')
    assert matches('address[postal][code]=="21000"')
    assert matches("address[postal]")
    assert not matches("address[postalCode]")
    assert not matches('address[postalCode]!="x"')
    assert not matches("address[addressLocality.x]")  # a string has no keys
    assert not matches("lanternHeight[x]")
    assert not matches('address=="Dijon"')  # a structured value is not a string


def test_list_valued_attributes() -> None:
    assert matches('controlledProperty=="humidity"')
    assert matches('controlledProperty=="noise","temperature"')
    assert not matches('controlledProperty=="noise"')
    assert not matches('controlledProperty!="humidity"')  # some element equals it
    assert matches('controlledProperty!="noise"')
    assert matches('controlledProperty!="noise","light"')
    assert matches("controlledProperty~=^hum")
    assert not matches("controlledProperty!~=^hum")
    assert matches("controlledProperty!~=^noise")
    assert matches("circuits>4")
    assert not matches("circuits>5")
    assert matches("circuits==3..5")
    assert not matches("circuits!=5")
    assert not matches('circuits=="1"')
    assert not matches('circuits!="1"')  # no element is comparable with a string
    empty = {"tags": {"type": "Property", "value": []}}
    assert evaluate(parse_q("tags"), empty)
    assert not evaluate(parse_q('tags=="x"'), empty)


def test_regex_matching() -> None:
    assert matches("name~=^PL 0+1$")
    assert matches('name~="PL\\s\\d+"')
    assert matches(r'name~="PL \d{6}"')
    assert not matches("name~=^LP")
    assert matches("name!~=^LP")
    assert not matches("name!~=^PL")
    assert matches("name~=(?i)^pl")
    assert matches("name~=^(LP|PL) ")
    assert matches('name~="1$";lanternHeight==8')
    assert not matches("lanternHeight~=8")  # only strings match a regex
    assert not matches("lanternHeight!~=9")
    assert not matches("dateServiceStarted~=2019")


@pytest.mark.parametrize(
    "q",
    [
        "missing",
        "missing==1",
        "missing!=1",
        "missing>1",
        "missing>=1",
        "missing<1",
        "missing<=1",
        "missing==1..2",
        "missing!=1..2",
        "missing==1,2",
        "missing!=1,2",
        'missing=="x"',
        'missing!="x"',
        "missing==true",
        "missing!=true",
        "missing~=.*",
        "missing!~=x",
        "missing.observedAt",
        "missing[x]",
        "temperature.missing",
        "temperature.missing!=1",
        "missing!=urn:a:b",
    ],
)
def test_missing_attributes_never_match(q: str) -> None:
    assert matches(q) is False


@pytest.mark.parametrize(
    "q",
    [
        'lanternHeight=="8"',
        'lanternHeight!="8"',
        'lanternHeight>"1"',
        "name==1",
        "name!=1",
        "name>1",
        "name==1..2",
        "name==true",
        "name!=false",
        "dimmable==1",
        "dimmable!=0",
        "lanternHeight==true",
        "lanternHeight==urn:a:b",
        "lanternHeight>2019-01-01T00:00:00Z",
        "name<2019-01-01T00:00:00Z",
        "name==12:00:00",
        "location==urn:a:b",
        'location!="x"',
    ],
)
def test_type_mismatches_are_not_satisfied(q: str) -> None:
    assert matches(q) is False


def test_entity_members_that_are_not_attributes_are_ignored() -> None:
    # id and type are not attributes: q only sees attributes.
    assert not matches('type=="Streetlight"')
    assert not matches("id")


def test_odd_entity_data_never_raises() -> None:
    odd: dict[str, Any] = {
        "none": {"type": "Property", "value": None},
        "bare": "not an attribute",
        "noValue": {"type": "Property"},
        "listOfDicts": {"type": "Property", "value": [{"a": 1}, None, "x", 3]},
        "weirdType": {"type": ["Property"], "value": 4},
        "badDate": {"type": "Property", "value": {"@type": "DateTime", "@value": 20190301}},
    }
    queries = [
        "none",
        "none==1",
        "none!=1",
        "bare",
        "bare==1",
        "noValue",
        "noValue!=1",
        "listOfDicts==3",
        "listOfDicts~=x",
        "listOfDicts!=9",
        "weirdType==4",
        "badDate>2019-01-01T00:00:00Z",
        "badDate==2019-03-01",
    ]
    outcomes = {q: evaluate(parse_q(q), odd) for q in queries}
    assert outcomes == {
        "none": True,
        "none==1": False,
        "none!=1": False,
        "bare": False,
        "bare==1": False,
        "noValue": False,
        "noValue!=1": False,
        "listOfDicts==3": True,
        "listOfDicts~=x": True,
        "listOfDicts!=9": True,
        "weirdType==4": True,
        "badDate>2019-01-01T00:00:00Z": False,
        "badDate==2019-03-01": False,
    }


def test_other_attribute_kinds_use_their_value_member() -> None:
    entity = {
        "label": {"type": "LanguageProperty", "languageMap": {"fr": "Lampadaire", "en": "Streetlight"}},
        "kind": {"type": "VocabProperty", "vocab": "LED"},
        "members": {"type": "ListRelationship", "objectList": ["urn:a:1", "urn:a:2"]},
    }
    assert evaluate(parse_q('label[fr]=="Lampadaire"'), entity)
    assert evaluate(parse_q('kind=="LED"'), entity)
    assert evaluate(parse_q("members==urn:a:2"), entity)


def test_combined_queries() -> None:
    q = parse_q(
        'lanternHeight>=6;address[addressLocality]=="Dijon";(dimmable==false|nominalPower==50..80)'
        f";refStreetlightControlCabinet=={CABINET}"
    )
    assert evaluate(q, streetlight())
    assert not evaluate(q, streetlight(nominalPower={"type": "Property", "value": 150}))
    assert evaluate(q, streetlight(nominalPower={"type": "Property", "value": 150}, dimmable={"value": False}))


def test_evaluate_accepts_hand_built_nodes() -> None:
    node: QueryNode = Or((Exists(AttrPath("nothing")), Match(AttrPath("name"), re.compile("^PL"))))
    assert evaluate(node, streetlight())
    assert not evaluate(And((node, cmp("lanternHeight", ">", "10"))), streetlight())


def test_three_way_junctions() -> None:
    assert matches("lanternHeight;name;dimmable")
    assert not matches("lanternHeight;name;missing")
    assert matches("missing|other|dimmable")
    assert not matches("missing|other|again")


# --- geo-queries -----------------------------------------------------------------------------------

LON, LAT = 5.04, 47.32
NORTH_111 = (LON, LAT + 0.001)  # 111.19 m north
SQUARE = "[[[5.0,47.3],[5.1,47.3],[5.1,47.4],[5.0,47.4],[5.0,47.3]]]"
OVERLAPPING_SQUARES = "[[[[0,0],[2,0],[2,2],[0,2],[0,0]]],[[[1,1],[3,1],[3,3],[1,3],[1,1]]]]"


def geo(georel: str, geometry: str = "Point", coordinates: str = f"[{LON},{LAT}]") -> GeoQuery:
    query = parse_geoquery(georel, geometry, coordinates)
    assert query is not None
    return query


def destination(lon: float, lat: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """The point ``distance_m`` away on a great circle (the sphere haversine_m uses)."""
    delta, theta = distance_m / EARTH_RADIUS_M, math.radians(bearing_deg)
    phi1, lmb1 = math.radians(lat), math.radians(lon)
    phi2 = math.asin(math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta))
    lmb2 = lmb1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1), math.cos(delta) - math.sin(phi1) * math.sin(phi2)
    )
    return math.degrees(lmb2), math.degrees(phi2)


def test_no_geoquery_when_nothing_is_given() -> None:
    assert parse_geoquery(None, None, None) is None
    assert parse_geoquery("", " ", None) is None
    assert parse_geoquery(None, None, None, "location") is None


def test_near_max_distance() -> None:
    assert haversine_m(LON, LAT, *NORTH_111) == pytest.approx(111.19, abs=0.01)
    query = geo("near;maxDistance==112")
    assert query.georel == "near"
    assert query.max_distance == 112
    assert query.min_distance is None
    assert query.matches(*NORTH_111)
    assert query.matches(LON, LAT)
    assert not geo("near;maxDistance==111").matches(*NORTH_111)
    # 0.001 degree of longitude at 47.32 N is ~75.4 m.
    assert geo("near;maxDistance==76").matches(LON + 0.001, LAT)
    assert not geo("near;maxDistance==75").matches(LON + 0.001, LAT)
    assert geo(" near ; maxDistance == 2000 ").matches(LON + 0.01, LAT + 0.01)  # ~1.35 km


def test_near_min_distance() -> None:
    assert geo("near;minDistance==111").matches(*NORTH_111)
    assert not geo("near;minDistance==112").matches(*NORTH_111)
    assert not geo("near;minDistance==1").matches(LON, LAT)
    assert geo("near;minDistance==1").bbox() is None


def test_near_a_line_or_polygon_measures_to_its_nearest_point() -> None:
    line = "[[5.03,47.32],[5.05,47.32]]"
    assert geo("near;maxDistance==112", "LineString", line).matches(*NORTH_111)
    assert not geo("near;maxDistance==110", "LineString", line).matches(*NORTH_111)
    # Beyond the east end by 0.01 degree of longitude: ~754 m.
    assert geo("near;maxDistance==760", "LineString", line).matches(5.06, 47.32)
    assert not geo("near;maxDistance==750", "LineString", line).matches(5.06, 47.32)
    assert geo("near;minDistance==750", "LineString", line).matches(5.06, 47.32)
    # Inside a polygon the distance is zero.
    assert geo("near;maxDistance==1", "Polygon", SQUARE).matches(5.05, 47.35)
    assert not geo("near;minDistance==1", "Polygon", SQUARE).matches(5.05, 47.35)
    assert geo("near;maxDistance==120", "Polygon", SQUARE).matches(5.05, 47.401)
    assert not geo("near;maxDistance==100", "Polygon", SQUARE).matches(5.05, 47.401)
    points = "[[5.03,47.32],[5.04,47.32]]"
    assert geo("near;maxDistance==112", "MultiPoint", points).matches(*NORTH_111)
    assert not geo("near;maxDistance==110", "MultiPoint", points).matches(*NORTH_111)


def test_within_and_intersects_a_polygon() -> None:
    for relation in ("within", "intersects"):
        query = geo(relation, "Polygon", SQUARE)
        assert query.matches(5.05, 47.35)
        assert query.matches(5.0, 47.35)  # on the boundary: covered
        assert query.matches(5.1, 47.4)  # a corner
        assert not query.matches(4.99, 47.35)
        assert not query.matches(5.05, 47.41)
    hole = "[[5.04,47.34],[5.06,47.34],[5.06,47.36],[5.04,47.36],[5.04,47.34]]"
    holed = f"[{SQUARE[1:-1]},{hole}]"
    assert not geo("within", "Polygon", holed).matches(5.05, 47.35)
    assert geo("within", "Polygon", holed).matches(5.02, 47.35)
    two = "[[[[0,0],[1,0],[1,1],[0,1],[0,0]]],[[[5.0,47.3],[5.1,47.3],[5.1,47.4],[5.0,47.3]]]]"
    assert geo("within", "MultiPolygon", two).matches(0.5, 0.5)
    assert geo("within", "MultiPolygon", two).matches(5.09, 47.31)
    assert not geo("within", "MultiPolygon", two).matches(5.01, 47.39)


def test_intersects_a_line() -> None:
    line = "[[5.0,47.3],[5.1,47.3]]"
    assert geo("intersects", "LineString", line).matches(5.05, 47.3)
    assert not geo("intersects", "LineString", line).matches(5.05, 47.3001)
    assert geo("disjoint", "LineString", line).matches(5.05, 47.3001)
    lines = "[[[5.0,47.3],[5.1,47.3]],[[5.0,47.5],[5.1,47.5]]]"
    assert geo("intersects", "MultiLineString", lines).matches(5.05, 47.5)


def test_disjoint() -> None:
    query = geo("disjoint", "Polygon", SQUARE)
    assert query.matches(4.99, 47.35)
    assert not query.matches(5.05, 47.35)
    assert not query.matches(5.0, 47.35)  # the boundary is shared
    assert query.bbox() is None
    assert geo("disjoint").matches(*NORTH_111)
    assert not geo("disjoint").matches(LON, LAT)


def test_equals_and_contains_hold_only_for_the_same_point() -> None:
    for relation in ("equals", "contains"):
        assert geo(relation).matches(LON, LAT)
        assert not geo(relation).matches(*NORTH_111)
        assert not geo(relation, "Polygon", SQUARE).matches(5.05, 47.35)
    assert geo("equals", "MultiPoint", f"[[{LON},{LAT}],[{LON},{LAT}]]").matches(LON, LAT)
    assert not geo("equals", "MultiPoint", f"[[{LON},{LAT}],[5.0,47.0]]").matches(LON, LAT)
    assert not geo("contains", "MultiPoint", f"[[{LON},{LAT}],[5.0,47.0]]").matches(LON, LAT)


def test_a_point_never_overlaps() -> None:
    assert not geo("overlaps").matches(LON, LAT)
    assert not geo("overlaps", "Polygon", SQUARE).matches(5.05, 47.35)


def test_bbox_of_near_holds_every_matching_point() -> None:
    query = geo("near;maxDistance==1500")
    box = query.bbox()
    assert box is not None
    min_lon, min_lat, max_lon, max_lat = box
    for bearing in range(0, 360, 5):
        lon, lat = destination(LON, LAT, bearing, 1499.9)
        assert query.matches(lon, lat)
        assert min_lon <= lon <= max_lon
        assert min_lat <= lat <= max_lat
    # ...and is not much larger than the circle.
    assert haversine_m(LON, LAT, LON, max_lat) == pytest.approx(1500, rel=0.01)
    assert not query.matches(LON, max_lat + 0.0001)


def test_bbox_of_near_a_line_holds_every_matching_point() -> None:
    query = geo("near;maxDistance==300", "LineString", "[[5.03,47.32],[5.05,47.33]]")
    box = query.bbox()
    assert box is not None
    min_lon, min_lat, max_lon, max_lat = box
    assert min_lon < 5.03 < 5.05 < max_lon
    assert min_lat < 47.32 < 47.33 < max_lat
    hits = 0
    for i in range(41):
        for j in range(41):
            lon, lat = 5.02 + i * 0.0010, 47.31 + j * 0.0006
            if query.matches(lon, lat):
                hits += 1
                assert min_lon <= lon <= max_lon
                assert min_lat <= lat <= max_lat
    assert hits > 100


def test_bbox_of_other_relations_is_the_geometry_bounds() -> None:
    assert geo("within", "Polygon", SQUARE).bbox() == (5.0, 47.3, 5.1, 47.4)
    assert geo("intersects", "LineString", "[[5.0,47.3],[5.1,47.35]]").bbox() == (5.0, 47.3, 5.1, 47.35)
    assert geo("equals").bbox() == (LON, LAT, LON, LAT)
    assert geo("contains").bbox() == (LON, LAT, LON, LAT)


def test_geoproperty_must_be_location() -> None:
    assert parse_geoquery("within", "Polygon", SQUARE, "location") is not None
    with pytest.raises(QuerySyntaxError, match=r"only 'location'"):
        parse_geoquery("within", "Polygon", SQUARE, "observationSpace")


def test_altitude_is_ignored() -> None:
    query = geo("equals", "Point", f"[{LON},{LAT},250]")
    assert query.matches(LON, LAT)
    assert not query.geometry.has_z


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "fragment"),
    [
        ("near;maxDistance==10", None, "[5,47]", "missing: geometry"),
        (None, "Point", "[5,47]", "missing: georel"),
        ("within", "Point", None, "missing: coordinates"),
        ("near;maxDistance==10", None, None, "missing: geometry, coordinates"),
        ("nearby", "Point", "[5,47]", "unknown"),
        ("near", "Point", "[5,47]", "exactly one of maxDistance"),
        ("near;maxDistance==10;minDistance==5", "Point", "[5,47]", "exactly one"),
        ("near;maxDistance=10", "Point", "[5,47]", "exactly one"),
        ("near;radius==10", "Point", "[5,47]", "exactly one"),
        ("near;maxDistance==ten", "Point", "[5,47]", "number of metres"),
        ("near;maxDistance==0", "Point", "[5,47]", "positive"),
        ("near;minDistance==-5", "Point", "[5,47]", "positive"),
        ("near;maxDistance==inf", "Point", "[5,47]", "positive"),
        ("within;maxDistance==10", "Point", "[5,47]", "no modifier"),
        ("within", "Circle", "[5,47]", "not supported"),
        ("within", "point", "[5,47]", "not supported"),
        ("within", "Point", "5,47", "JSON array"),
        ("within", "Point", '{"lon": 5}', "JSON array"),
        ("within", "Point", "[5]", "[longitude, latitude]"),
        ("within", "Point", '[5,"47"]', "[longitude, latitude]"),
        ("within", "Point", "[true,47]", "[longitude, latitude]"),
        ("within", "Point", "[[5,47]]", "[longitude, latitude]"),
        ("within", "Point", "[47,200]", "out of range"),
        ("within", "Point", "[181,47]", "out of range"),
        ("within", "MultiPoint", "[]", "at least 1"),
        ("within", "LineString", "[[5,47]]", "at least 2"),
        ("within", "MultiLineString", "[]", "non-empty"),
        ("within", "Polygon", "[[5,47],[6,47],[6,48],[5,47]]", "linear ring"),
        ("within", "Polygon", "[[[5,47],[6,47],[5,47]]]", "at least 4"),
        ("within", "Polygon", "[[[5,47],[6,47],[6,48],[5,48]]]", "closed"),
        ("within", "Polygon", "[[[0,0],[1,1],[1,0],[0,1],[0,0]]]", "valid Polygon"),
        ("within", "MultiPolygon", "[[[5,47],[6,47],[6,48],[5,47]]]", "linear ring"),
        ("within", "MultiPolygon", OVERLAPPING_SQUARES, "valid MultiPolygon"),
    ],
)
def test_bad_geoqueries_are_rejected(
    georel: str | None, geometry: str | None, coordinates: str | None, fragment: str
) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_geoquery(georel, geometry, coordinates)
    assert fragment in str(caught.value)


def test_geoquery_validates_when_built_directly() -> None:
    with pytest.raises(QuerySyntaxError, match="exactly one"):
        GeoQuery("near", None, None, Point(LON, LAT))
    with pytest.raises(QuerySyntaxError, match="no maxDistance"):
        GeoQuery("within", 10.0, None, Point(LON, LAT))
    with pytest.raises(QuerySyntaxError, match="unknown"):
        GeoQuery("touches", None, None, Point(LON, LAT))
    built = GeoQuery("near", 112.0, None, Point(LON, LAT))
    assert built.matches(*NORTH_111)
    assert built == geo("near;maxDistance==112")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.georel = "within"  # type: ignore[misc]
