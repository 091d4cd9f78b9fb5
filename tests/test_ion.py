"""ION text as Kestra's FileSerde writes it (ion-java through Jackson), and read back."""

from __future__ import annotations

import io
import math
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kestractl import ion


def test_a_record_is_a_struct_with_bare_symbol_keys_as_in_kestras_files() -> None:
    assert ion.dumps({"id": 1, "value": "value1"}) == '{id:1,value:"value1"}'


@pytest.mark.parametrize(
    ("key", "written"),
    [
        ("order_id", "order_id"),
        ("$cost", "$cost"),
        ("a b", "'a b'"),
        ("1st", "'1st'"),
        ("", "''"),
        ("null", "'null'"),
        ("true", "'true'"),
        ("nan", "'nan'"),
        ("$10", "'$10'"),
        ("it's", "'it\\'s'"),
        ("é", "'é'"),
        ("a-b", "'a-b'"),
    ],
)
def test_keys_that_are_not_identifiers_or_are_keywords_are_quoted(key: str, written: str) -> None:
    text = ion.dumps({key: 1})
    assert text == "{" + written + ":1}"
    assert ion.loads(text) == {key: 1}


def test_strings_use_ion_java_escapes() -> None:
    text = ion.dumps('a"b\\c\nd\te\r\x00\x01\x07\x0b\x7f\x85')
    assert text == '"a\\"b\\\\c\\nd\\te\\r\\0\\x01\\a\\v\\x7f\\x85"'


def test_unicode_is_written_as_utf8_and_read_back() -> None:
    value = {"name": "Zoë 😀 日本 \u00a0"}
    text = ion.dumps(value)
    assert "Zoë 😀 日本" in text
    assert ion.loads(text) == value


@pytest.mark.parametrize(
    ("number", "written"),
    [
        (1.5, "1.5e0"),
        (100.0, "100e0"),
        (3.0, "3e0"),
        (0.5, "0.5e0"),
        (0.001, "0.001e0"),
        (1.5e-4, "1.5e-4"),
        (1e7, "1.0e7"),
        (12345678.9, "1.23456789e7"),
        (-2.25, "-2.25e0"),
        (1e22, "1.0e22"),
        (0.0, "0e0"),
        (-0.0, "-0e0"),
        (math.inf, "+inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
    ],
)
def test_floats_are_written_as_ion_java_writes_doubles(number: float, written: str) -> None:
    assert ion.dumps(number) == written
    back = ion.loads(written)
    assert (math.isnan(back) and math.isnan(number)) or (
        back == number and math.copysign(1, back) == math.copysign(1, number)
    )


@pytest.mark.parametrize(
    ("number", "written"),
    [
        ("12.50", "12.50"),
        ("5", "5."),
        ("-3.1", "-3.1"),
        ("0.0001", "0.0001"),
        ("1E-9", "1d-9"),
        ("1.2E+3", "12d2"),
        ("0.00", "0.00"),
    ],
)
def test_decimals_are_written_as_ion_decimals(number: str, written: str) -> None:
    assert ion.dumps(Decimal(number)) == written
    assert ion.loads(written) == Decimal(number)


def test_scalars_lists_and_blobs() -> None:
    assert ion.dumps([1, -2, True, False, None, "x", b"AB"]) == '[1,-2,true,false,null,"x",{{QUI=}}]'
    assert ion.dumps((1, 2)) == "[1,2]"
    assert ion.dumps(2**80) == str(2**80)


def test_nulls_in_maps_are_written_as_kestras_ion_mapper_does() -> None:
    assert ion.dumps({"a": 1, "b": None}) == "{a:1,b:null}"
    assert ion.loads("{a:1,b:null}") == {"a": 1, "b": None}


def test_nulls_in_maps_are_omitted_on_request() -> None:
    assert ion.dumps({"a": 1, "b": None, "c": {"d": None}}, omit_nulls=True) == "{a:1,c:{}}"
    assert ion.dumps([None], omit_nulls=True) == "[null]"


def test_an_aware_datetime_is_an_instant_timestamp_in_utc_with_milliseconds() -> None:
    assert ion.dumps(datetime(2024, 1, 1, 10, 0, tzinfo=UTC)) == "2024-01-01T10:00:00.000Z"
    paris_winter = timezone(timedelta(hours=1))
    assert ion.dumps(datetime(2024, 1, 1, 11, 0, 0, 250000, tzinfo=paris_winter)) == "2024-01-01T10:00:00.250Z"
    assert ion.dumps(datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)) == "2024-01-01T10:00:00.123456Z"


def test_a_date_is_a_day_timestamp() -> None:
    assert ion.dumps({"day": date(2024, 1, 2)}) == "{day:2024-01-02}"
    assert ion.loads("2024-01-02") == date(2024, 1, 2)


def test_other_temporal_values_are_annotated_strings_like_kestras_ion_module() -> None:
    assert ion.dumps(datetime(2024, 1, 1, 10, 0, 0, 500000)) == 'LocalDateTime::"2024-01-01T10:00:00.5"'
    paris = datetime(2024, 7, 1, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert ion.dumps(paris) == 'ZonedDateTime::"2024-07-01T10:00:00+02:00[Europe/Paris]"'
    assert ion.dumps(time(9, 5)) == 'LocalTime::"09:05:00"'
    assert ion.dumps(time(9, 5, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))) == 'OffsetTime::"09:05:00-05:30"'
    assert (
        ion.dumps(ion.Annotated("OffsetDateTime", "2024-01-01T08:00:00Z")) == 'OffsetDateTime::"2024-01-01T08:00:00Z"'
    )


def test_kestra_temporal_annotations_are_read_back_as_temporal_values() -> None:
    text = (
        '{a:OffsetDateTime::"2024-01-01T08:00:00Z",b:ZonedDateTime::"2024-01-01T10:00:00.123456789+01:00[Europe/Paris]",'
        'c:LocalDate::"2024-01-02",d:Instant::"2024-01-01T10:00:00Z",e:custom::"x"}'
    )
    value = ion.loads(text)
    assert value["a"] == datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    assert value["b"] == datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=ZoneInfo("Europe/Paris"))
    assert value["b"].tzinfo == ZoneInfo("Europe/Paris")
    assert value["c"] == date(2024, 1, 2)
    assert value["d"] == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert value["e"] == ion.Annotated("custom", "x")


ROUND_TRIPS: list[Any] = [
    {"order": {"id": 7, "lines": [{"sku": "A-1", "qty": 2, "price": Decimal("9.90")}, {"sku": "B", "qty": None}]}},
    [[], {}, [[1]], {"x": {"y": {"z": "deep"}}}],
    {"text": "line1\nline2\t\"quoted\" \\ 'single' é😀\x00"},
    {"when": datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC), "day": date(1999, 12, 31)},
    {"local": datetime(2024, 1, 1, 0, 0), "zoned": datetime(2024, 3, 31, 3, 0, tzinfo=ZoneInfo("Europe/Paris"))},
    {"t": time(23, 59, 59, 1), "tz": time(1, 2, 3, tzinfo=timezone(timedelta(hours=5, minutes=45)))},
    {"f": 0.1 + 0.2, "big": 1.7976931348623157e308, "tiny": 5e-324, "i": -(2**70)},
    {"a b": 1, "null": 2, "": 3, "x'y": 4, "ключ": 5},
    {"blob": b"\x00\xff binary"},
    True,
    None,
    "top-level string",
]


@pytest.mark.parametrize("value", ROUND_TRIPS)
def test_everything_dumps_writes_is_read_back_equal(value: Any) -> None:
    assert ion.loads(ion.dumps(value)) == value


def test_write_lines_writes_one_value_per_line_and_skips_none_rows() -> None:
    out = io.StringIO()
    count = ion.write_lines([{"id": 1}, None, {"id": 2, "s": "a\nb"}], out)
    assert count == 2
    assert out.getvalue() == '{id:1}\n{id:2,s:"a\\nb"}\n'
    assert ion.loads_lines(out.getvalue()) == [{"id": 1}, {"id": 2, "s": "a\nb"}]
    assert list(ion.iter_lines(io.StringIO(out.getvalue()))) == [{"id": 1}, {"id": 2, "s": "a\nb"}]


def test_the_reader_takes_ion_text_other_writers_produce() -> None:
    text = """$ion_1_0
    // a comment
    { "quoted field": '''long ''' '''string''', n: null.string, h: 0x1F, u: 1_000, sym: abc, /* c */ e: 2.5E1,
      c: {{ "clob" }}, y: 2024T, m: 2024-03T, dt: 2024-01-01T10:00-00:00, off: 2024-01-01T10:00:00.5+02:00 }
    [1, 2,]
    """
    first, second = ion.loads_lines(text)
    assert first["quoted field"] == "long string"
    assert first["n"] is None and first["h"] == 31 and first["u"] == 1000 and first["sym"] == "abc"
    assert first["e"] == 25.0 and first["c"] == b"clob"
    assert first["y"] == date(2024, 1, 1) and first["m"] == date(2024, 3, 1)
    assert first["dt"] == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert first["off"] == datetime(2024, 1, 1, 8, 0, 0, 500000, tzinfo=UTC)
    assert second == [1, 2]


@pytest.mark.parametrize("text", ['{a:"unterminated}', "{a 1}", "[1 2]", "{a:}", "'open"])
def test_invalid_text_is_a_value_error_naming_the_place(text: str) -> None:
    with pytest.raises(ValueError, match="invalid ION at line 1"):
        ion.loads_lines(text)


def test_loads_wants_exactly_one_value() -> None:
    with pytest.raises(ValueError, match="expected one ION value, found 2"):
        ion.loads("1 2")


def test_values_ion_cannot_hold_are_refused() -> None:
    with pytest.raises(TypeError, match="set cannot be written as ION"):
        ion.dumps({"s": {1}})


LINES = [
    '{a:"x",b:null,c:true,d:-12,\'e f\':"",g:0,h:false}',
    "{}",
    "{ }",
    '{a:"x\\"y",b:"\\\\",c:"\\u00e9\\ud83d\\ude00\\n\\t"}',
    '{a:"é😀 日本"}',
    "{null:1,'true':2,$x:3}",
    "{a:01}",
    "{a:1.5e0,b:12.50,c:2024-01-15,d:2024-01-15T10:00:00.000Z}",
    "{a:[1,{b:2}],c:{d:null}}",
    '{a:LocalDateTime::"2024-01-15T10:00:00"}',
    '{a:"x",}',
    "{'a\\'b':1}",
    "{a:99999999999999999999}",
    "[1,2]",
    '"text"',
]


@pytest.mark.parametrize("line", LINES)
def test_the_line_reader_reads_each_line_as_the_full_reader_does(line: str) -> None:
    """`iter_lines` reads flat records with a fast path; whatever it reads must equal the full reader's value."""
    assert list(ion.iter_lines(io.StringIO(line + "\n"))) == ion.loads_lines(line)


def test_rows_that_change_shape_read_as_the_full_reader_reads_them() -> None:
    """After a flat row, the next rows are first tried against that row's shape (one regex per line): a row with
    other keys, kinds, key spellings or escapes must still read exactly as the full reader reads it."""
    text = "\n".join(
        [
            '{a:"1",b:2,c:null}',
            '{a:"2",b:3,c:null}',
            '{a:null,b:3,c:"x"}',
            "{'a':\"3\",b:4,c:null}",
            '{a:"x\\"y",b:-5,c:null}',
            '{a:"4",b:5}',
            '{a:"5",b:6,c:null,d:true}',
            "{a:1.5e0,b:6,c:null}",
            *LINES,
            '{a:"6",b:7,c:null}',
            '{a:"7",b:"8"}',
            '{a:"x\\"y",b:"\\u00e9"}',
        ]
    )
    assert list(ion.iter_lines(io.StringIO(text + "\n"))) == ion.loads_lines(text)


@pytest.mark.parametrize("value", ROUND_TRIPS)
def test_the_to_ion_filter_is_the_one_ion_writer(value: Any) -> None:
    from kestractl.expressions import render

    assert render("{{ v | toIon }}", {"v": value}) == ion.dumps(value)
