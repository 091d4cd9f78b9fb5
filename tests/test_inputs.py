"""Kestra input typing, validation and declaration checks (FlowInputOutput / InputsTest semantics)."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from kestractl.errors import InputError, ValidationError
from kestractl.expressions import render_value
from kestractl.inputs import INPUT_TYPES, input_defaults, parse_input, resolve_inputs, type_output
from kestractl.model import Input


def one(type_: str, value: Any, **props: Any) -> Any:
    """Resolve a single required input `x` of `type_` with `value`."""
    return resolve_inputs([Input("x", type_, props=props)], {"x": value})["x"]


def error(type_: str, value: Any, **props: Any) -> str:
    with pytest.raises(InputError) as info:
        one(type_, value, **props)
    return info.value.message


# ------------------------------------------------------------------ types


def test_input_types_are_kestras_eighteen_plus_bool():
    assert INPUT_TYPES == {
        "STRING",
        "ENUM",
        "SELECT",
        "MULTISELECT",
        "INT",
        "FLOAT",
        "BOOLEAN",
        "BOOL",
        "DATETIME",
        "DATE",
        "TIME",
        "DURATION",
        "FILE",
        "JSON",
        "YAML",
        "URI",
        "SECRET",
        "ARRAY",
        "EMAIL",
    }


def test_string_keeps_text_and_turns_scalars_into_java_text():
    assert one("STRING", "myString") == "myString"
    assert one("STRING", 5) == "5"
    assert one("STRING", True) == "true"


def test_string_validator_is_a_full_match():
    assert one("STRING", "A123", validator=r"A\d+") == "A123"
    assert error("STRING", "foo", validator=r"A\d+") == (
        "Invalid input for `x`, it must match the pattern `A\\d+`, but received `foo`"
    )
    assert "must match the pattern" in error("STRING", "A123b", validator=r"A\d+")


def test_secret_is_a_string_with_optional_validator():
    assert one("SECRET", "secret") == "secret"
    assert "it must match the pattern `s.*`" in error("SECRET", "nope", validator="s.*")


def test_enum_accepts_a_listed_value():
    assert one("ENUM", "ENUM_VALUE", values=["ENUM_VALUE", "OTHER_ONE"]) == "ENUM_VALUE"


def test_enum_rejects_other_values_with_kestras_message():
    inputs = [Input("enum", "ENUM", props={"values": ["ENUM_VALUE", "OTHER_ONE"]})]
    with pytest.raises(InputError) as info:
        resolve_inputs(inputs, {"enum": "INVALID"})
    assert info.value.message == (
        "Invalid input for `enum`, it must match the values `[ENUM_VALUE, OTHER_ONE]`, but received `INVALID`"
    )


def test_enum_not_required_skips_the_values_check_like_kestra():
    inputs = [Input("enum", "ENUM", required=False, props={"values": ["A"]})]
    assert resolve_inputs(inputs, {"enum": "Z"}) == {"enum": "Z"}


def test_select_checks_values_unless_custom_values_are_allowed():
    assert one("SELECT", "a", values=["a", "b"]) == "a"
    assert "it must match the values `[a, b]`" in error("SELECT", "c", values=["a", "b"])
    assert one("SELECT", "c", values=["a", "b"], allowCustomValue=True) == "c"


def test_select_expression_is_rendered_into_values():
    inputs = [Input("s", "SELECT", props={"expression": "{{ ['a', 'b'] }}"})]
    render = lambda expression, scope: ["a", "b"]  # noqa: E731
    assert resolve_inputs(inputs, {"s": "b"}, render=render) == {"s": "b"}
    with pytest.raises(InputError, match=r"it must match the values `\[a, b\]`"):
        resolve_inputs(inputs, {"s": "z"}, render=render)
    with pytest.raises(InputError, match="Expected a list of strings, but received str"):
        resolve_inputs(inputs, {"s": "b"}, render=lambda e, s: "a")


def test_multiselect_takes_a_json_list_or_a_list():
    assert one("MULTISELECT", '["a", "b"]', values=["a", "b", "c"]) == ["a", "b"]
    assert one("MULTISELECT", ["c"], options=["c"]) == ["c"]


def test_multiselect_rejects_unknown_items_and_non_lists():
    assert error("MULTISELECT", '["a", "z"]', values=["a", "b"]) == (
        'Invalid input for `x`, it must match the values `[a, b]`, but received `["a", "z"]`'
    )
    assert error("MULTISELECT", "a,b", values=["a"]) == (
        "Invalid input for `x`, Expected `MULTISELECT` but received `a,b`, but received `a,b`"
    )
    assert one("MULTISELECT", '["z"]', values=["a"], allowCustomValue=True) == ["z"]
    assert "you can't define both `values` and `options`" in error("MULTISELECT", "[]", values=["a"], options=["a"])


def test_int_parses_like_integer_value_of():
    assert one("INT", "42") == 42
    assert one("INT", "+5") == 5
    assert one("INT", "-7") == -7
    assert one("INT", 12) == 12


def test_int_rejects_decimals_blanks_overflow_and_booleans():
    assert error("INT", "abc") == 'Invalid input for `x`, For input string: "abc", but received `abc`'
    assert "For input string" in error("INT", "42.0")
    assert "For input string" in error("INT", " 42")
    assert "For input string" in error("INT", "")
    assert "For input string" in error("INT", "2147483648")
    assert "Expected `INT` but received `true`" in error("INT", True)


def test_int_min_and_max_messages():
    inputs = [Input("validatedInt", "INT", required=False, props={"min": 10, "max": 20})]
    assert resolve_inputs(inputs, {"validatedInt": "12"}) == {"validatedInt": 12}
    with pytest.raises(InputError) as low:
        resolve_inputs(inputs, {"validatedInt": "9"})
    assert low.value.message == "Invalid input for `validatedInt`, it must be more than `10`, but received `9`"
    with pytest.raises(InputError) as high:
        resolve_inputs(inputs, {"validatedInt": "21"})
    assert high.value.message == "Invalid input for `validatedInt`, it must be less than `20`, but received `21`"


def test_float_parses_to_float32_printed_shortest():
    assert one("FLOAT", "42.42") == 42.42
    assert one("FLOAT", "1e3") == 1000.0
    assert one("FLOAT", " 1.5 ") == 1.5
    assert one("FLOAT", 0.5) == 0.5
    assert one("FLOAT", 3) == 3.0
    assert one("FLOAT", "16777217") == 16777216.0  # float32 precision, as Kestra's Float


def test_float_rejects_text_nan_and_overflow():
    assert error("FLOAT", "abc") == 'Invalid input for `x`, For input string: "abc", but received `abc`'
    assert "For input string" in error("FLOAT", "NaN")
    assert "Expected `FLOAT`" in error("FLOAT", "1e40")
    assert "empty String" in error("FLOAT", "")


def test_float_min_and_max_messages():
    props = {"min": 0.1, "max": 0.5}
    assert one("FLOAT", "0.42", **props) == 0.42
    assert error("FLOAT", "0.01", **props) == "Invalid input for `x`, it must be more than `0.1`, but received `0.01`"
    assert error("FLOAT", "1.01", **props) == "Invalid input for `x`, it must be less than `0.5`, but received `1.01`"
    assert "it must be more than `10.0`" in error("FLOAT", "1", min=10)


def test_boolean_only_true_is_true():
    assert one("BOOLEAN", "true") is True
    assert one("BOOLEAN", "TRUE") is True
    assert one("BOOLEAN", "false") is False
    assert one("BOOLEAN", "FALSE") is False
    assert one("BOOLEAN", "yes") is False
    assert one("BOOLEAN", True) is True
    assert one("BOOL", "True") is True


def test_boolean_rejects_non_text_values():
    assert "Expected `BOOLEAN` but received `1`" in error("BOOLEAN", 1)


def test_datetime_is_normalised_like_instant_to_string():
    assert one("DATETIME", "2019-10-06T18:27:49Z") == "2019-10-06T18:27:49Z"
    assert one("DATETIME", "2019-10-06T18:27:49.000Z") == "2019-10-06T18:27:49Z"
    assert one("DATETIME", "2019-10-06T18:27:49.5Z") == "2019-10-06T18:27:49.500Z"
    assert one("DATETIME", "2019-10-06T18:27:49.123456789Z") == "2019-10-06T18:27:49.123456789Z"
    assert one("DATETIME", "2019-10-06T20:27:49+02:00") == "2019-10-06T18:27:49Z"
    assert one("DATETIME", "2019-10-06t18:27:49z") == "2019-10-06T18:27:49Z"
    assert one("DATETIME", datetime(2019, 10, 6, 18, 27, 49, tzinfo=UTC)) == "2019-10-06T18:27:49Z"


def test_datetime_needs_seconds_and_a_zone():
    assert error("DATETIME", "2019-10-06T18:27:49") == (
        "Invalid input for `x`, Expected `DATETIME` but received `2019-10-06T18:27:49`, "
        "but received `2019-10-06T18:27:49`"
    )
    assert "Expected `DATETIME`" in error("DATETIME", "2019-10-06T18:27Z")
    assert "Expected `DATETIME`" in error("DATETIME", "2019-02-30T00:00:00Z")
    assert "Expected `DATETIME`" in error("DATETIME", datetime(2019, 1, 1))


def test_datetime_after_and_before_messages():
    props = {"after": "2023-01-01T00:00:00Z", "before": "2023-12-31T23:59:59Z"}
    assert one("DATETIME", "2023-01-01T00:00:10Z", **props) == "2023-01-01T00:00:10Z"
    assert error("DATETIME", "2022-01-01T00:00:00Z", **props) == (
        "Invalid input for `x`, it must be after `2023-01-01T00:00:00Z`, but received `2022-01-01T00:00:00Z`"
    )
    assert error("DATETIME", "2024-01-01T00:00:00Z", **props) == (
        "Invalid input for `x`, it must be before `2023-12-31T23:59:59Z`, but received `2024-01-01T00:00:00Z`"
    )


def test_date_is_strict_iso():
    assert one("DATE", "2019-10-06") == "2019-10-06"
    assert one("DATE", date(2019, 10, 6)) == "2019-10-06"
    assert "Expected `DATE` but received `2019-13-01`" in error("DATE", "2019-13-01")
    assert "Expected `DATE`" in error("DATE", "20191006")


def test_date_after_and_before_messages_accept_yaml_dates():
    props = yaml.safe_load("after: 2023-01-01\nbefore: 2023-12-31")
    assert one("DATE", "2023-01-02", **props) == "2023-01-02"
    assert error("DATE", "2022-01-01", **props) == (
        "Invalid input for `x`, it must be after `2023-01-01`, but received `2022-01-01`"
    )
    assert error("DATE", "2024-01-01", **props) == (
        "Invalid input for `x`, it must be before `2023-12-31`, but received `2024-01-01`"
    )


def test_time_is_stored_as_iso_local_time():
    assert one("TIME", "18:27:49") == "18:27:49"
    assert one("TIME", "18:27") == "18:27:00"
    assert one("TIME", "18:27:49.500") == "18:27:49.5"
    assert "Expected `TIME` but received `25:00`" in error("TIME", "25:00")
    assert "Expected `TIME`" in error("TIME", "6pm")


def test_time_messages_print_bounds_like_local_time_to_string():
    props = {"after": "01:00:00", "before": "11:59:59"}
    assert one("TIME", "11:27:49", **props) == "11:27:49"
    assert error("TIME", "00:00:01", **props) == (
        "Invalid input for `x`, it must be after `01:00`, but received `00:00:01`"
    )
    assert error("TIME", "14:00:00", **props) == (
        "Invalid input for `x`, it must be before `11:59:59`, but received `14:00:00`"
    )


def test_duration_is_normalised_like_java_duration_to_string():
    assert one("DURATION", "PT5M6S") == "PT5M6S"
    assert one("DURATION", "PT90S") == "PT1M30S"
    assert one("DURATION", "P1D") == "PT24H"
    assert one("DURATION", "pt0.250s") == "PT0.25S"
    assert one("DURATION", "-PT0.5S") == "PT-0.5S"
    assert one("DURATION", "PT0S") == "PT0S"
    assert one("DURATION", "-PT1H30M") == "PT-1H-30M"


def test_duration_rejects_non_iso_text():
    for bad in ("PT", "P", "P1DT", "5 minutes", "PT1.5M", "P1W"):
        assert f"Expected `DURATION` but received `{bad}`" in error("DURATION", bad)


def test_duration_min_and_max_messages():
    props = {"min": "PT10S", "max": "PT20S"}
    assert one("DURATION", "PT15S", **props) == "PT15S"
    assert error("DURATION", "PT1S", **props) == (
        "Invalid input for `x`, It must be more than `PT10S`, but received `PT1S`"
    )
    assert error("DURATION", "PT30S", **props) == (
        "Invalid input for `x`, It must be less than `PT20S`, but received `PT30S`"
    )


def test_json_is_parsed():
    assert one("JSON", '{"a": "b"}') == {"a": "b"}
    assert one("JSON", "{}") == {}
    assert one("JSON", "[1, 2]") == [1, 2]
    assert one("JSON", "42") == 42
    assert one("JSON", {"already": "parsed"}) == {"already": "parsed"}


def test_json_rejects_bad_text_and_nan():
    assert "Expected `JSON` but received `{bad`" in error("JSON", "{bad")
    assert "Expected `JSON`" in error("JSON", "NaN")


def test_yaml_is_parsed_and_timestamps_stay_text():
    text = "some: property\nalist:\n- of\n- values"
    assert one("YAML", text) == {"some": "property", "alist": ["of", "values"]}
    assert one("YAML", "when: 2023-01-01") == {"when": "2023-01-01"}
    assert one("YAML", {"key": [1]}) == {"key": [1]}
    assert "Expected `YAML`" in error("YAML", "a: [b")


def test_uri_must_match_kestras_pattern():
    assert one("URI", "https://www.google.com") == "https://www.google.com"
    assert one("URI", "ftp://files.example.org/a.txt?x=1") == "ftp://files.example.org/a.txt?x=1"
    assert "Expected `URI`" in error("URI", "s3://bucket.example/key")  # Kestra's scheme is [a-z]+
    assert "Expected `URI`" in error("URI", "http://localhost:8080")  # and it wants a dotted host
    assert (
        error("URI", "http:/bla")
        == "Invalid input for `x`, Expected `URI` but received `http:/bla`, but received `http:/bla`"
    )


def test_email_must_look_like_an_email():
    assert one("EMAIL", "me@example.com") == "me@example.com"
    assert error("EMAIL", "not-an-email") == (
        "Invalid input for `x`, The input must be a valid email, but received `not-an-email`"
    )


def test_array_parses_json_text_and_each_item_type():
    assert one("ARRAY", "[1, 2, 3]", itemType="INT") == [1, 2, 3]
    assert one("ARRAY", ["1", "2"], itemType="INT") == [1, 2]
    assert one("ARRAY", '["2019-10-06"]', itemType="DATE") == ["2019-10-06"]
    assert one("ARRAY", '["PT90S"]', itemType="DURATION") == ["PT1M30S"]
    assert one("ARRAY", '[{"a": 1}]', itemType="JSON") == [{"a": 1}]


def test_array_item_errors_name_the_item():
    inputs = [Input("array", "ARRAY", props={"itemType": "INT"})]
    with pytest.raises(InputError) as info:
        resolve_inputs(inputs, {"array": '["s1", "s2"]'})
    assert info.value.message == (
        'Invalid input for `array`, Unable to parse array element as `INT` on `s1`, but received `["s1", "s2"]`'
    )
    assert "Expected `ARRAY` but received `abc`" in error("ARRAY", "abc", itemType="INT")
    assert "Expected `ARRAY`" in error("ARRAY", '{"a": 1}', itemType="INT")


def store_into(tmp_path: Path, calls: list[tuple[str, Path]]):
    """A store_file that copies the upload under tmp_path/storage and returns its kestra:/// URI."""

    def store(input_id: str, source: Path) -> str:
        calls.append((input_id, source))
        target = tmp_path / "storage" / "inputs" / input_id / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return f"kestra:///inputs/{input_id}/{source.name}"

    return store


def test_file_is_stored_and_replaced_by_its_uri(tmp_path: Path):
    local = tmp_path / "application-test.yml"
    local.write_text("hello: world\n")
    calls: list[tuple[str, Path]] = []
    result = resolve_inputs([Input("file", "FILE")], {"file": str(local)}, store_file=store_into(tmp_path, calls))
    assert result == {"file": "kestra:///inputs/file/application-test.yml"}
    assert calls == [("file", local)]
    assert (tmp_path / "storage/inputs/file/application-test.yml").read_text() == "hello: world\n"


def test_file_kestra_uri_is_kept_without_storing(tmp_path: Path):
    calls: list[tuple[str, Path]] = []
    uri = "kestra:///io/kestra/tests/inputs/executions/abc/inputs/file/a.txt"
    assert resolve_inputs([Input("f", "FILE")], {"f": uri}, store_file=store_into(tmp_path, calls)) == {"f": uri}
    assert calls == []


def test_file_missing_or_without_storage_is_an_error(tmp_path: Path):
    missing = tmp_path / "nope.txt"
    assert error("FILE", str(missing)) == (
        f"Invalid input for `x`, the file `{missing}` does not exist, but received `{missing}`"
    )
    present = tmp_path / "there.txt"
    present.write_text("x")
    assert "no storage to upload the file" in error("FILE", str(present))


# ------------------------------------------------------------------ resolution rules


def test_missing_required_input_is_kestras_message():
    with pytest.raises(InputError) as info:
        resolve_inputs([Input("string", "STRING")], {"string": None})
    assert info.value.message == "Invalid input for `string`, missing required input, but received `null`"
    assert isinstance(info.value, ValidationError)


def test_optional_input_without_value_is_present_as_null():
    assert resolve_inputs([Input("bool", "BOOLEAN", required=False)], {}) == {"bool": None}


def test_default_is_used_when_value_is_missing_or_null_and_is_typed():
    inputs = [
        Input("instantDefaults", "DATETIME", defaults="2013-08-09T14:19:00.000Z"),
        Input("n", "INT", defaults=3),
    ]
    assert resolve_inputs(inputs, {"n": None}) == {"instantDefaults": "2013-08-09T14:19:00Z", "n": 3}
    assert resolve_inputs(inputs, {"n": "4"})["n"] == 4


def test_empty_string_default_satisfies_a_required_input():
    assert resolve_inputs([Input("empty", "STRING", defaults="")], {}) == {"empty": ""}
    assert resolve_inputs([Input("s", "STRING")], {"s": ""}) == {"s": ""}


def test_defaults_are_validated_like_values():
    with pytest.raises(InputError, match="it must be more than `10`, but received `5`"):
        resolve_inputs([Input("n", "INT", defaults=5, props={"min": 10})], {})


def test_undeclared_inputs_are_dropped():
    assert resolve_inputs([Input("a", "STRING")], {"a": "x", "other": "y"}) == {"a": "x"}


def test_dotted_ids_become_nested_maps():
    inputs = [
        Input("nested.string", "STRING", required=False),
        Input("nested.more.int", "INT", required=False),
        Input("nested.bool", "BOOLEAN", required=False),
    ]
    result = resolve_inputs(inputs, {"nested.string": "a string", "nested.more.int": "123", "nested.bool": "true"})
    assert result == {"nested": {"string": "a string", "more": {"int": 123}, "bool": True}}


def test_every_bad_input_is_reported_once():
    inputs = [Input("a", "INT"), Input("b", "STRING"), Input("c", "URI")]
    with pytest.raises(InputError) as info:
        resolve_inputs(inputs, {"a": "x", "c": "http:/bla"})
    assert info.value.problems == [
        'Invalid input for `a`, For input string: "x", but received `x`',
        "Invalid input for `b`, missing required input, but received `null`",
        "Invalid input for `c`, Expected `URI` but received `http:/bla`, but received `http:/bla`",
    ]
    assert info.value.message == "; ".join(info.value.problems)


def test_results_are_json_serialisable_for_every_type(tmp_path: Path):
    import json

    values = {
        "STRING": "s",
        "INT": "1",
        "FLOAT": "1.5",
        "BOOLEAN": "true",
        "DATETIME": "2019-10-06T18:27:49Z",
        "DATE": "2019-10-06",
        "TIME": "18:27",
        "DURATION": "PT1M",
        "JSON": '{"a": 1}',
        "YAML": "a: 2020-01-01",
        "URI": "https://a.io",
        "SECRET": "s",
        "EMAIL": "a@b.c",
        "ARRAY": "[1]",
        "MULTISELECT": '["a"]',
    }
    inputs = [Input(t.lower(), t, props={"itemType": "INT"} if t == "ARRAY" else {}) for t in values]
    result = resolve_inputs(inputs, {t.lower(): v for t, v in values.items()})
    assert json.loads(json.dumps(result)) == result


def test_depends_on_condition_disables_an_input():
    inputs = [
        Input("mode", "STRING"),
        Input("detail", "STRING", props={"dependsOn": {"inputs": ["mode"], "condition": "{{ mode }}"}}),
    ]
    render = lambda expression, scope: scope["mode"] == "full"  # noqa: E731
    assert resolve_inputs(inputs, {"mode": "short"}, render=render) == {"mode": "short"}
    assert resolve_inputs(inputs, {"mode": "full", "detail": "d"}, render=render) == {
        "mode": "full",
        "detail": "d",
    }
    with pytest.raises(InputError, match="`detail`, missing required input"):
        resolve_inputs(inputs, {"mode": "full"}, render=render)


# ------------------------------------------------------------------ input_defaults


def test_input_defaults_adds_missing_defaults_nested_and_typed():
    inputs = [
        Input("a", "STRING", defaults="x"),
        Input("n.more.int", "INT", defaults="7"),
        Input("b", "STRING", defaults="unused"),
        Input("c", "STRING"),
    ]
    given = {"b": "given", "n": {"other": 1}}
    assert input_defaults(inputs, given) == {"b": "given", "a": "x", "n": {"other": 1, "more": {"int": 7}}}
    assert given == {"b": "given", "n": {"other": 1}}


def test_input_defaults_does_not_validate_or_override():
    inputs = [Input("n", "INT", defaults="abc", props={"min": 10}), Input("d.x", "STRING", defaults="z")]
    assert input_defaults(inputs, {"d.x": "flat"}) == {"d.x": "flat", "n": "abc"}
    assert input_defaults([Input("d", "DATE", defaults=date(2020, 1, 2))], {}) == {"d": "2020-01-02"}


# ------------------------------------------------------------------ type_output


def test_type_output_types_rendered_text():
    assert type_output("STRING", "hello") == "hello"
    assert type_output("INT", "42") == 42
    assert type_output("FLOAT", "0.5") == 0.5
    assert type_output("BOOLEAN", "true") is True
    assert type_output("JSON", '{"a": [1]}') == {"a": [1]}
    assert type_output("DURATION", "PT60S") == "PT1M"
    assert type_output("ARRAY", "[1, 2]") == [1, 2]
    assert type_output(None, {"kept": 1}) == {"kept": 1}


def test_type_output_failure_names_the_output():
    with pytest.raises(InputError) as info:
        type_output("INT", "abc", output_id="count")
    assert info.value.message == 'Invalid output for `count`, For input string: "abc", but received `abc`'
    with pytest.raises(InputError, match="Expected `DATE`"):
        type_output("DATE", "soon")


# ------------------------------------------------------------------ parse_input


def test_parse_input_builds_an_input_with_props():
    inp, problems = parse_input({"id": "v", "type": "INT", "min": 1, "description": "d", "displayName": "V"})
    assert problems == []
    assert inp == Input("v", "INT", required=True, defaults=None, description="d", props={"min": 1, "displayName": "V"})


def test_parse_input_accepts_legacy_name():
    inp, problems = parse_input({"name": "secret", "type": "SECRET", "required": False})
    assert problems == [] and inp is not None
    assert (inp.id, inp.required, inp.props) == ("secret", False, {})


def test_parse_input_reports_id_problems():
    assert parse_input({"type": "STRING"}) == (None, ["id: required"])
    assert parse_input({"id": "1 bad", "type": "STRING"}) == (
        None,
        ["id: `1 bad` does not match ^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"],
    )
    assert parse_input({"id": "_x", "type": "STRING"})[1] == ["id: `_x` does not match ^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"]
    assert parse_input({"id": "nested.more.int", "type": "INT"})[1] == []


def test_parse_input_reports_type_problems():
    assert parse_input({"id": "x", "type": "STRNG"}) == (None, ["type: unknown input type `STRNG`"])
    assert parse_input({"id": "x"}) == (None, ["type: required"])
    assert parse_input({"id": "x", "type": ["STRING"]})[1] == ["type: unknown input type `['STRING']`"]
    assert parse_input({"id": "x", "type": "string"})[1] == ["type: unknown input type `string`"]


def test_parse_input_rejects_a_non_map():
    inp, problems = parse_input("just-a-string")
    assert inp is None and problems == ["an input must be a map with `id` and `type`, got `just-a-string`"]


def test_parse_input_requires_item_type_for_array():
    assert parse_input({"id": "a", "type": "ARRAY"})[1] == ["itemType: required for ARRAY"]
    assert parse_input({"id": "a", "type": "ARRAY", "itemType": "ARRAY"})[1] == [
        "itemType: `itemType` cannot be `ARRAY`"
    ]
    assert parse_input({"id": "a", "type": "ARRAY", "itemType": "NOPE"})[1] == ["itemType: unknown input type `NOPE`"]


def test_parse_input_requires_values_for_choices():
    assert parse_input({"id": "e", "type": "ENUM"})[1] == ["values: required for ENUM"]
    assert parse_input({"id": "s", "type": "SELECT"})[1] == ["values: required for SELECT (or `expression`)"]
    assert parse_input({"id": "s", "type": "SELECT", "expression": "{{ [1] }}"})[1] == []
    assert parse_input({"id": "e", "type": "ENUM", "values": "A"})[1] == ["values: must be a list"]
    assert parse_input({"id": "m", "type": "MULTISELECT", "values": ["a"], "options": ["a"]})[1] == [
        "values: you can't define both `values` and `options`"
    ]


def test_parse_input_checks_the_validator_regex():
    problems = parse_input({"id": "s", "type": "STRING", "validator": "A(\\d+"})[1]
    assert len(problems) == 1 and problems[0].startswith("validator: invalid regex `A(\\d+`")


def test_parse_input_checks_defaults_parse_under_the_type():
    assert parse_input({"id": "n", "type": "INT", "defaults": "abc"})[1] == ['defaults: For input string: "abc"']
    assert parse_input({"id": "d", "type": "DATETIME", "defaults": "2013-08-09"})[1] == [
        "defaults: Expected `DATETIME` but received `2013-08-09`"
    ]
    assert parse_input({"id": "a", "type": "ARRAY", "itemType": "INT", "defaults": ["x"]})[1] == [
        "defaults: Unable to parse array element as `INT` on `x`"
    ]
    assert parse_input({"id": "e", "type": "STRING", "defaults": ""})[1] == []
    assert parse_input({"id": "y", "type": "YAML", "defaults": {"list": [1]}})[1] == []


def test_parse_input_refuses_file_defaults():
    assert parse_input({"id": "f", "type": "FILE", "defaults": "/tmp/x"})[1] == [
        "defaults: no `defaults` can be set for inputs of type 'FILE'"
    ]


def test_parse_input_checks_bounds_parse_under_the_type():
    assert parse_input({"id": "n", "type": "INT", "min": "q"})[1] == ['min: For input string: "q"']
    assert parse_input({"id": "d", "type": "DURATION", "max": "20s"})[1] == [
        "max: Expected `DURATION` but received `20s`"
    ]
    assert parse_input(yaml.safe_load("{id: d, type: DATE, after: 2023-01-01}"))[1] == []


def test_parse_input_checks_required_and_depends_on_shapes():
    assert parse_input({"id": "x", "type": "STRING", "required": "false"})[0].required is False
    assert parse_input({"id": "x", "type": "STRING", "required": "maybe"})[1] == [
        "required: must be true or false, got `maybe`"
    ]
    assert parse_input({"id": "x", "type": "STRING", "dependsOn": ["a"]})[1] == [
        "dependsOn: must be a map with `inputs` and `condition`"
    ]
    assert parse_input({"id": "x", "type": "STRING", "displayName": "d" * 65})[1] == [
        "displayName: size must be between 0 and 64"
    ]


def test_parse_input_round_trips_the_conformance_style_declarations():
    text = """
- {id: validatedDate, type: DATE, after: 2023-01-01, before: 2023-12-31, required: false}
- {id: validatedFloat, type: FLOAT, min: 0.1, max: 0.5, required: false}
- {id: validatedTime, type: TIME, after: "01:00:00", before: "11:59:59", required: false}
- {name: yaml, type: YAML, defaults: {property: something}}
- {name: empty, type: STRING, defaults: '', required: true}
"""
    parsed = [parse_input(item) for item in yaml.safe_load(text)]
    assert [problems for _, problems in parsed] == [[]] * 5
    result = resolve_inputs([inp for inp, _ in parsed], {"validatedDate": "2023-01-02", "validatedTime": "11:27:49"})
    assert result == {
        "validatedDate": "2023-01-02",
        "validatedFloat": None,
        "validatedTime": "11:27:49",
        "yaml": {"property": "something"},
        "empty": "",
    }


def test_defaults_are_rendered_when_the_execution_is_created() -> None:
    inputs = [
        parse_input({"id": "region", "type": "STRING", "defaults": "eu"})[0],
        parse_input({"id": "bucket", "type": "STRING", "defaults": "data-{{ inputs.region }}"})[0],
    ]
    inputs[1].props["dependsOn"] = {"inputs": ["region"]}

    def render(expression: str, scope: dict[str, object]) -> object:
        return render_value(expression, {"inputs": scope})

    assert resolve_inputs(inputs, {}, render=render) == {"region": "eu", "bucket": "data-eu"}
    assert resolve_inputs(inputs, {"bucket": "{{ kept }}"}, render=render)["bucket"] == "{{ kept }}"
    with pytest.raises(InputError, match="Cannot render 'defaults'"):
        resolve_inputs(inputs[1:], {}, render=render)


def test_depends_on_conditions_and_dynamic_defaults_apply_when_an_execution_is_created(cli: Any) -> None:
    cli.deploy("dynamic-inputs.yaml")
    code, short = cli.execute("dev", "dyn")
    assert code == 0 and short["inputs"] == {"mode": "short", "stamp": "dyn-short"}
    refused = cli("execute", "dev", "dyn", "--input", "mode=full")
    assert refused.exit_code == 2 and "Invalid input for `detail`, missing required input" in refused.stderr
    code, full = cli.execute("dev", "dyn", "--input", "mode=full", "--input", "detail=x")
    assert code == 0 and full["inputs"] == {"mode": "full", "detail": "x", "stamp": "dyn-full"}
