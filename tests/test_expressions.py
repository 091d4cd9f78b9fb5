"""Kestra's Pebble dialect: operators, strict variables, filters, functions, printing, sandbox."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from kestractl import expressions
from kestractl.errors import ExpressionError
from kestractl.expressions import is_truthy, render, render_value, to_text

VARS: dict[str, Any] = {
    "x": "value 1",
    "flow": {"id": "hello", "namespace": "company.team"},
    "inputs": {"name": "world", "empty": "", "nothing": None, "items": [3, 1, 2], "map": {"b": 2, "a": 1}},
    "outputs": {
        "t2": {"value": "from t2"},
        "task-id": {"value": "dashed"},
        "values_task": {"values": {"output1": "xyz"}},
        "each": {"v1": {"value": "one"}},
    },
    "taskrun": {"value": "v1", "attemptsCount": 0},
    "parent": {"taskrun": {"value": '{"key": "my-key", "value": {"sub": 1}}'}},
    "instant": datetime(2024, 1, 15, 10, 5, 3, 123456, tzinfo=UTC),
    "day": date(2024, 1, 31),
}


def r(template: str, **extra: Any) -> str:
    return render(template, {**VARS, **extra})


def error_of(template: str, **extra: Any) -> str:
    with pytest.raises(ExpressionError) as caught:
        r(template, **extra)
    return caught.value.message


# ---------------------------------------------------------------- operators


def test_ternary_does_not_evaluate_the_false_branch_when_true() -> None:
    assert r("{{ x == 'value 1' ? 'ok' : ko }}") == "ok"


def test_ternary_taking_an_undefined_branch_fails() -> None:
    assert "'ko' is undefined" in error_of("{{ x == 'value 2' ? 'ok' : ko }}")


def test_nested_ternaries_are_right_associative() -> None:
    assert r("{{ false ? 1 : true ? 'two' : 3 }}") == "two"
    assert r("{{ true ? false ? 1 : 2 : 3 }}") == "2"


def test_ternary_works_inside_maps_arguments_and_tags() -> None:
    assert r("{{ {'a': 1 > 0 ? 'y' : 'n'} }}") == '{"a":"y"}'
    assert r("{{ 'abc' | replace({'b': true ? 'B' : 'x'}) }}") == "aBc"
    assert r("{% set v = taskrun.attemptsCount == 0 ? 'first' : 'retry' %}{{ v }}") == "first"


def test_ternary_question_mark_inside_strings_is_text() -> None:
    assert r("{{ 'why?' ~ ' a:b' }}") == "why? a:b"


def test_null_coalescing_keeps_a_defined_left_side() -> None:
    assert r("{{ outputs.t2.value ?? 'fallback' }}") == "from t2"


def test_null_coalescing_falls_back_on_undefined_and_null() -> None:
    assert r("{{ outputs.missing.value ?? outputs['task-id'].value }}") == "dashed"
    assert r("{{ inputs.nothing ?? 'fallback' }}") == "fallback"
    assert r("{{ ko ?? null ?? 'third' }}") == "third"


def test_null_coalescing_fails_when_both_sides_are_undefined() -> None:
    message = error_of("{{ outputs.default.value ?? outputs['error-t1'].value }}")
    assert "'error-t1' is undefined" in message


def test_null_coalescing_evaluates_the_left_side_once() -> None:
    calls: list[int] = []

    def counter() -> int:
        calls.append(1)
        return len(calls)

    assert r("{{ counter() ?? 'x' }}", counter=counter) == "1"
    assert calls == [1]


def test_null_coalescing_is_safe_across_threads() -> None:
    results: list[str] = []

    def work(n: int) -> None:
        for _ in range(200):
            results.append(render("{{ a ?? 'no' }}-{{ b ?? a }}", {"a": n}))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(results)) == [f"{n}-{n}" for n in range(4)]


def test_undefined_coalescing_keeps_null_but_replaces_undefined() -> None:
    assert r("{{ inputs.nothing ??? 'fallback' }}") == ""
    assert r("{{ inputs.unknown ??? 'fallback' }}") == "fallback"


def test_coalescing_binds_tighter_than_filters_and_concat() -> None:
    assert r("{{ ko ?? 'a' | upper }}") == "A"
    assert r("{{ 'x' ~ ko ?? 'y' }}") == "xy"


def test_is_defined_works_on_any_missing_chain() -> None:
    assert r("{{ outputs.x.y is defined }}") == "false"
    assert r("{{ foo is not defined }}") == "true"
    assert r("{{ outputs.t2.value is defined }}") == "true"


def test_is_null_and_is_not_null() -> None:
    assert r("{{ inputs.nothing is null }}") == "true"
    assert r("{{ inputs.name is not null }}") == "true"
    assert r("{{ null }}") == ""


def test_contains_on_text_lists_and_map_keys() -> None:
    assert r("{{ 'hello world' contains 'lo w' }}") == "true"
    assert r("{{ inputs.items contains 2 }}") == "true"
    assert r("{{ inputs.items contains [1, 3] }}") == "true"
    assert r("{{ inputs.map contains 'a' and not inputs.map contains 'z' }}") == "true"


def test_equals_is_equality() -> None:
    assert r("{{ flow.id equals 'hello' }}") == "true"
    assert r("{{ 1 equals 2 }}") == "false"


def test_range_operator_includes_both_ends() -> None:
    assert r("{{ 1..3 }}") == "[1,2,3]"


def test_concat_applies_before_a_filter_like_pebble() -> None:
    assert r("{{ 'a' ~ 'b' | upper }}") == "AB"


def test_tests_empty_even_odd_iterable_map_json() -> None:
    template = (
        "{{ inputs.empty is empty }} {{ 4 is even }} {{ 3 is odd }} {{ inputs.items is iterable }} "
        "{{ 'abc' is iterable }} {{ inputs.map is map }} {{ parent.taskrun.value is json }} "
        "{{ x is json }}"
    )
    assert r(template) == "true true true true false true true false"


def test_arithmetic_follows_java() -> None:
    assert r("{{ 5 / 2 }} {{ -7 / 2 }} {{ 5.0 / 2 }} {{ -7 % 3 }} {{ 2 * 3 + 1 }}") == "2 -3 2.5 -1 7"
    assert r("{{ 'a' + 1 }}") == "a1"
    assert "invalid operands" in error_of("{{ 'a' * 3 }}")


# ---------------------------------------------------------------- strict variables and errors


def test_undefined_variable_error_names_the_expression() -> None:
    assert error_of("{{ ko }}") == "Unable to render `{{ ko }}`: 'ko' is undefined"


def test_missing_key_error_lists_the_existing_keys() -> None:
    assert "'t3' is undefined (existing keys: t2, task-id" in error_of("{{ outputs.t3.value }}")


def test_comparing_an_undefined_output_fails() -> None:
    assert "'notexists' is undefined" in error_of("{{ outputs.notexists == 2 }}")


def test_undefined_fails_in_if_for_and_filters() -> None:
    assert "'ko' is undefined" in error_of("{% if ko %}a{% endif %}")
    assert "'ko' is undefined" in error_of("{% for i in ko %}a{% endfor %}")
    assert "'ko' is undefined" in error_of("{{ ko | upper }}")


def test_error_in_a_multiline_template_names_the_line() -> None:
    message = error_of("line one\n{% for i in [1] %}\n{{ i }}\n{% endfor %}\nsee {{ nope.x }}\n")
    assert message == "Unable to render `see {{ nope.x }}` (line 5): 'nope' is undefined"


def test_syntax_errors_become_expression_errors_on_one_line() -> None:
    message = error_of("{{ 1 + }}\nmore")
    assert message.startswith("Unable to render `{{ 1 + }}` (line 1): syntax error")
    assert "\n" not in message


def test_failing_filter_reports_its_reason() -> None:
    expected = "Unable to render `{{ 'abc' | number }}`: unable to parse 'abc' as a number"
    assert error_of("{{ 'abc' | number }}") == expected


# ---------------------------------------------------------------- access and printing


def test_map_keys_by_dot_and_brackets() -> None:
    assert (
        r("{{ outputs['task-id'].value }} {{ outputs.t2.value }} {{ outputs['t2']['value'] }}")
        == "dashed from t2 from t2"
    )
    assert r("{{ outputs.each[taskrun.value].value }}") == "one"


def test_map_keys_win_over_python_dict_methods() -> None:
    assert r("{{ outputs.values_task.values.output1 }}") == "xyz"


def test_maps_and_lists_print_as_compact_json() -> None:
    assert (
        r("{{ inputs.map }} {{ inputs.items }} {{ {'é': [true, null]} }}") == '{"b":2,"a":1} [3,1,2] {"é":[true,null]}'
    )


def test_booleans_print_true_false_and_null_prints_nothing() -> None:
    assert r("{{ true }}|{{ 1 > 2 }}|{{ inputs.nothing }}|") == "true|false||"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (42.0, "42.0"),
        (0.5, "0.5"),
        (1e20, "1.0E20"),
        (1.5e-5, "1.5E-5"),
        (12, "12"),
        (None, ""),
        (True, "true"),
        ({"a": [1, "b"]}, '{"a":[1,"b"]}'),
        ("text", "text"),
        (datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC), "2024-01-01T10:00:00.123Z"),
        (date(2024, 1, 2), "2024-01-02"),
        (time(18, 27, 49), "18:27:49"),
        (timedelta(minutes=5, seconds=6), "PT5M6S"),
        (Decimal("3.10"), "3.10"),
        ({"when": datetime(2024, 1, 1, tzinfo=UTC)}, '{"when":"2024-01-01T00:00:00.000Z"}'),
    ],
)
def test_to_text_prints_values_like_kestra(value: Any, text: str) -> None:
    assert to_text(value) == text


def test_an_instant_variable_prints_as_iso() -> None:
    assert r("{{ instant }}") == "2024-01-15T10:05:03.123Z"


def test_trailing_newline_is_kept() -> None:
    assert r("{{ flow.id }}\n") == "hello\n"


def test_text_without_expressions_is_returned_unchanged() -> None:
    text = "no expressions here, {# not a comment for us #} nor } {"
    assert render(text, {}) is text


# ---------------------------------------------------------------- tags


def test_for_loop_index_is_zero_based_like_pebble() -> None:
    template = (
        "{% for i in inputs.items %}{{ loop.index }}{{ loop.revindex }}{{ loop.length }}"
        "{{ loop.first ? 'F' : '' }}{{ loop.last ? 'L' : '' }} {% endfor %}"
    )
    assert r(template) == "023F 113 203L "


def test_for_else_renders_for_an_empty_list() -> None:
    assert r("{% for i in [] %}x{% else %}empty{% endfor %}") == "empty"


def test_for_over_a_map_gives_key_value_entries() -> None:
    assert r("{% for e in inputs.map %}{{ e.key }}={{ e.value }};{% endfor %}") == "b=2;a=1;"


def test_if_elseif_else() -> None:
    template = "{% if x == 'a' %}A{% elseif x == 'value 1' %}B{% else %}C{% endif %}"
    assert r(template) == "B"


def test_raw_block_is_kept_verbatim() -> None:
    assert r("{% raw %}{{ not rendered }}{% endraw %}") == "{{ not rendered }}"
    assert r("{% verbatim %}{{ ko }}{% endverbatim %}") == "{{ ko }}"


def test_whitespace_control() -> None:
    assert r("a  {{- flow.id -}}  b") == "ahellob"


def test_error_logs_loop_with_a_callable_from_the_engine() -> None:
    def error_logs() -> list[dict[str, str]]:
        return [{"taskId": "failed", "message": "Task failure"}]

    template = "{%- for log in errorLogs() -%}\n- task: {{ log.taskId }}, message: {{ log.message }}\n{%- endfor -%}\n"
    assert r(template, errorLogs=error_logs) == "- task: failed, message: Task failure"


def test_callables_in_variables_receive_arguments() -> None:
    assert (
        r("{{ read('kestra:///a.txt') | upper }}", read=lambda uri: f"content of {uri}") == "CONTENT OF KESTRA:///A.TXT"
    )


# ---------------------------------------------------------------- date filters


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{{ instant | date(\"yyyy-MM-dd'T'HH:mm\") }}", "2024-01-15T10:05"),
        ("{{ instant | date }}", "2024-01-15T10:05:03.123456Z"),
        ("{{ instant | date('iso_sec') }}", "2024-01-15T10:05:03Z"),
        ("{{ instant | date('sql') }}", "2024-01-15 10:05:03.123456"),
        ("{{ instant | date('iso_date_time') }}", "2024-01-15T10:05:03.123456Z[UTC]"),
        ("{{ instant | date('iso_date') }}", "2024-01-15Z"),
        ("{{ instant | date('iso_local_date') }}", "2024-01-15"),
        ("{{ instant | date('iso_local_date_time') }}", "2024-01-15T10:05:03.123456"),
        ("{{ instant | date('iso_instant') }}", "2024-01-15T10:05:03.123456Z"),
        ("{{ instant | date('yy M d H h mm ss SSS a') }}", "24 1 15 10 10 05 03 123 AM"),
        ("{{ instant | date('EEE EEEE MMM MMMM') }}", "Mon Monday Jan January"),
        ("{{ instant | date(\"h 'o''clock' ''\") }}", "10 o'clock '"),
        ("{{ instant | date('HH:mm XXX X Z z', timeZone='Europe/Paris') }}", "11:05 +01:00 +01 +0100 CET"),
        (
            "{{ instant | date(format='iso_zoned_date_time', timeZone='Europe/Paris') }}",
            "2024-01-15T11:05:03.123456+01:00[Europe/Paris]",
        ),
        (
            "{{ '2024-01-15T10:05:03.123Z' | date('iso_sec', timeZone='America/New_York') }}",
            "2024-01-15T05:05:03-05:00",
        ),
        (
            "{{ '15/01/2024 08:30' | date('yyyy-MM-dd HH:mm', existingFormat='dd/MM/yyyy HH:mm') }}",
            "2024-01-15 08:30",
        ),
        ("{{ 1700000000 | date('iso_sec') }}", "2023-11-14T22:13:20Z"),
        ("{{ day | date('iso_sec') }}", "2024-01-31T12:00:00Z"),
    ],
)
def test_date_filter_formats(template: str, text: str) -> None:
    assert r(template) == text


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{{ instant | dateAdd(1, 'DAYS') }}", "2024-01-16T10:05:03.123456Z"),
        ("{{ instant | dateAdd(-2, 'HOURS', format='HH:mm') }}", "08:05"),
        ("{{ instant | dateAdd(30, 'SECONDS', format='iso_sec') }}", "2024-01-15T10:05:33Z"),
        ("{{ instant | dateAdd(2, 'WEEKS', format='iso_local_date') }}", "2024-01-29"),
        ("{{ day | dateAdd(1, 'MONTHS', format='yyyy-MM-dd') }}", "2024-02-29"),
        ("{{ '2024-02-29T00:00:00Z' | dateAdd(1, 'YEARS', format='yyyy-MM-dd') }}", "2025-02-28"),
    ],
)
def test_date_add_moves_by_chrono_units(template: str, text: str) -> None:
    assert r(template) == text


def test_date_add_rejects_an_unknown_unit() -> None:
    assert "unknown unit 'FORTNIGHTS'" in error_of("{{ instant | dateAdd(1, 'FORTNIGHTS') }}")


def test_timestamp_filters_give_epoch_numbers() -> None:
    assert r("{{ instant | timestamp }} {{ instant | timestampMicro }}") == "1705313103 1705313103123456"


# ---------------------------------------------------------------- other filters


@pytest.mark.parametrize(
    ("template", "text"),
    [
        (
            "{{ inputs.map | toJson }} {{ 'x' | toJson }} {{ inputs.nothing | toJson }}",
            '{"b":2,"a":1} "x" null',
        ),
        ("{{ inputs.map | json }}", '{"b":2,"a":1}'),
        ("{{ {'id': 1, 'my key': 'a'} | toIon }}", "{id:1,'my key':\"a\"}"),
        ("{{ {'a': [1, 2], 'b': 'x'} | yaml }}", "a:\n  - 1\n  - 2\nb: x\n"),
        (
            "{{ inputs.map | keys }} {{ inputs.items | keys }} {{ inputs.map | values }}",
            '["b","a"] [0,1,2] [2,1]',
        ),
        ("{{ parent.taskrun.value | keys }}", '["key","value"]'),
        ("{{ inputs.items | first }}{{ inputs.items | last }}{{ 'abc' | first }}", "32a"),
        ("{{ inputs.items | length }} {{ 'abcd' | length }} {{ inputs.map | length }}", "3 4 2"),
        (
            "{{ 'Ab' | upper }} {{ 'Ab' | lower }} {{ 'hello big world' | title }} {{ 'hello World' | capitalize }}",
            "AB ab Hello Big World Hello World",
        ),
        ("[{{ '  padded  ' | trim }}]", "[padded]"),
        ("{{ 'a-b-a' | replace({'a': 'x', '-': '+'}) }} {{ 'a-b' | replace('a', 'y') }}", "x+b+x y-b"),
        ("{{ 'a1b22c' | replace({'[0-9]+': '#'}, regexp=true) }}", "a#b#c"),
        ("{{ 'a.b.c,,' | split('.') }} {{ 'a,b,,' | split(',') }}", '["a","b","c,,"] ["a","b"]'),
        ("{{ inputs.items | join(', ') }} {{ [true, null, 1.5] | join('|') }}", "3, 1, 2 true||1.5"),
        (
            "{{ ko | default('d') }} {{ inputs.empty | default('e') }} {{ inputs.nothing | default('n') }} "
            "{{ [] | default('l') }} {{ 'v' | default('x') }}",
            "d e n l v",
        ),
        ("{{ -3 | abs }} {{ 2.567 | round(1) }}", "3 2.6"),
        ("{{ 'abcdef' | slice(1, 3) }} {{ inputs.items | slice(0, 2) }}", "bc [3,1]"),
        (
            "{{ inputs.items | sort }} {{ inputs.items | reverse }} {{ 'abc' | reverse }}",
            "[1,2,3] [2,1,3] cba",
        ),
        (
            "{{ inputs.map | merge({'c': 3}) }} {{ inputs.items | merge([4]) }}",
            '{"b":2,"a":1,"c":3} [3,1,2,4]',
        ),
        ("{{ 'a b&c~' | urlencode }} {{ 'a+b%26c' | urldecode }}", "a+b%26c%7E a b&c"),
        ("{{ 'hello' | base64encode }} {{ 'aGVsbG8=' | base64decode }}", "aGVsbG8= hello"),
        ("{{ 'abcdefghij' | abbreviate(6) }} {{ 'abc' | abbreviate(6) }}", "abc... abc"),
        ("{{ ' Héllo  World_x! ' | slugify }}", "hello-world-x"),
        (
            "{{ '12' | number + 1 }} {{ '1.5' | number }} {{ '12' | number('DOUBLE') }} "
            "{{ '7' | number(type='LONG') }} {{ '3.10' | number('BIGDECIMAL') }}",
            "13 1.5 12.0 7 3.10",
        ),
        (
            "{{ 'a.b.c' | substringBefore('.') }} {{ 'a.b.c' | substringBeforeLast('.') }} "
            "{{ 'a.b.c' | substringAfter('.') }} {{ 'a.b.c' | substringAfterLast('.') }} "
            "{{ 'abc' | substringBefore('z') }}|{{ 'abc' | substringAfter('z') }}|",
            "a a.b b.c c abc||",
        ),
        ("{{ 'abc' | startsWith('ab') }} {{ 'abc' | endsWith('x') }}", "true false"),
        ("{{ [[1, 2], [3], 4] | flatten }}", "[1,2,3,4]"),
        ("x:{{ 'a\nb' | indent(2) }}|{{ 'a\nb' | nindent(2) }}", "x:a\n  b|\n  a\n  b"),
        ("{{ [1, 2, 3, 4, 5] | chunk(2) }}", "[[1,2],[3,4],[5]]"),
        (
            "{{ \"it's\" | escapeChar('single') }} {{ \"it's\" | escapeChar('shell') }} "
            "{{ 'say \"hi\"' | escapeChar('double') }}",
            "it\\'s it'\\''s say \\\"hi\\\"",
        ),
        (
            "{{ 'a' | md5 }} {{ 'a' | sha1 }}",
            "0cc175b9c0f1b6a831c399e269772661 86f7e437faa5a7fce15d1ddcb9eaeaea377667b8",
        ),
        ("{{ 'a' | sha256 }}", "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"),
        ("{{ 'a' | sha512 | slice(0, 16) }}", "1f40fc92da241694"),
        ("{{ 12345.678 | numberformat('#,##0.00') }} {{ 0.5 | numberformat('0.#') }}", "12,345.68 0.5"),
        ("{{ 'x' | className }} {{ 1 | className }}", "java.lang.String java.lang.Integer"),
    ],
)
def test_filters(template: str, text: str) -> None:
    assert r(template) == text


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{{ parent.taskrun.value | jq('.key') }}", '["my-key"]'),
        ("{{ parent.taskrun.value | jq('.value') | first }}", '{"sub":1}'),
        ("{{ parent.taskrun.value | jq('.value.sub') | first }}", "1"),
        ("{{ {'a': [{'b': 1}, {'b': 2}]} | jq('.a[1].b') }}", "[2]"),
        ("{{ {'a': [{'b': 1}, {'b': 2}]} | jq('.a[].b') }}", "[1,2]"),
        ("{{ [1, 2] | jq('.[]') }} {{ [1, 2] | jq('.[0]') }} {{ [5] | jq('.') }}", "[1,2] [1] [[5]]"),
        ("{{ {'a': 1} | jq('.missing') }}", "[null]"),
        ("{{ {'a': {'b': 1}} | jq('.a | .b') }}", "[1]"),
    ],
)
def test_jq_returns_a_list_for_simple_paths(template: str, text: str) -> None:
    assert r(template) == text


def test_jq_errors_are_one_line_naming_the_program() -> None:
    assert "jq expression 'map(.a)' failed: Cannot index number" in error_of("{{ [1] | jq('map(.a)') }}")
    syntax = error_of("{{ [1] | jq('.[') }}")
    assert "jq expression '.[' failed: syntax error" in syntax and "\n" not in syntax


# ---------------------------------------------------------------- functions


def test_now_is_an_aware_instant_in_the_requested_zone() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r("{{ now() }}"))
    assert r("{{ now(timeZone='Asia/Kolkata') | date('XXX', timeZone='Asia/Kolkata') }}") == "+05:30"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", r("{{ now(format='yyyy-MM-dd') }}"))


def test_json_and_yaml_parsing_functions() -> None:
    template = "{{ fromJson('{\"a\": {\"b\": 1}}').a.b }} {{ json('[1, 2]') | last }} {{ yaml('a: [x]').a }}"
    assert r(template) == '1 2 ["x"]'


def test_uuid_and_random_int() -> None:
    assert re.fullmatch(r"[0-9a-f-]{36}", r("{{ uuid() }}"))
    assert r("{{ randomInt(5, 6) }}") == "5"


def test_range_function_includes_the_end() -> None:
    assert r("{{ range(1, 3) }} {{ range(0, 10, 5) }} {{ range(3, 1, -1) }}") == "[1,2,3] [0,5,10] [3,2,1]"


def test_max_and_min() -> None:
    assert r("{{ max(1, 5, 3) }} {{ min(inputs.items) }}") == "5 1"


def test_render_re_renders_variables_recursively_and_once() -> None:
    variables = {"vars": {"greeting": "Hello {{ vars.name }}", "name": "{{ flow.id }}"}}
    assert r("{{ render(vars.greeting) }}", **variables) == "Hello hello"
    assert r("{{ renderOnce(vars.greeting) }}", **variables) == "Hello {{ flow.id }}"
    assert r("{{ render(vars.greeting, recursive=false) }}", **variables) == "Hello {{ flow.id }}"


def test_render_of_an_undefined_variable_fails() -> None:
    assert "'ko' is undefined" in error_of("{{ render('{{ ko }}') }}")


def test_print_context_shows_the_variables_as_json() -> None:
    text = render("{{ printContext() }}", {"flow": {"id": "f"}, "fn": lambda: 1})
    assert text == '{"flow":{"id":"f"}}'


# ---------------------------------------------------------------- public helpers


def test_render_value_renders_nested_dicts_and_lists_keys_included() -> None:
    value = {"{{ flow.id }}": ["{{ inputs.name }}", 3, {"k": "{{ 1 + 1 }}"}], "n": None, "b": True}
    assert render_value(value, VARS) == {"hello": ["world", 3, {"k": "2"}], "n": None, "b": True}


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        ("true", True),
        ("1", True),
        (True, True),
        (1, True),
        ("yes", True),
        ("0.0", True),
        ("false", False),
        ("FALSE", False),
        (" false ", False),
        ("0", False),
        ("-0", False),
        ("", False),
        ("  ", False),
        (False, False),
        (None, False),
        (0, False),
    ],
)
def test_is_truthy_follows_kestra_truth_utils(value: Any, truthy: bool) -> None:
    assert is_truthy(value) is truthy


def test_compiled_templates_are_cached() -> None:
    template = "cache check {{ inputs.name }} 7f3a"
    before = expressions._compile.cache_info()
    assert r(template) == r(template) == "cache check world 7f3a"
    after = expressions._compile.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits >= 1


# ---------------------------------------------------------------- sandbox


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ inputs.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ render.__globals__ }}",
    ],
)
def test_sandbox_blocks_python_internals(template: str) -> None:
    with pytest.raises(ExpressionError):
        r(template)


def test_sandbox_blocks_mutating_the_variables() -> None:
    variables = {"inputs": {"a": 1}}
    with pytest.raises(ExpressionError, match="unsafe"):
        render("{{ inputs.pop('a') }}", variables)
    assert variables == {"inputs": {"a": 1}}
