"""Fuzzed bad input (issue 6, "Bad input"): every door refuses it cleanly, whatever Hypothesis makes up.

Four doors: flow YAML (the parser and `kestractl flow validate/deploy`), `{{ expressions }}`, execution
input values, and HTTP requests to a real `StandaloneServer`. The property is the same at each: kestractl
answers with its own refusal (`ValidationError`, `ExpressionError`, `InputError`; CLI exit 2; HTTP 4xx
JSON with a `message`) and never a traceback, a 500, a hang or a changed store.

`max_examples` is explicit on every test so the figures can be quoted; the example database is off, so
every run explores afresh and nothing is replayed from an earlier one. Every bug these tests found keeps a
test of its own with the minimal example (alias bombs, nested loops, oversized intermediate strings, overlong
file names, unhashable item types).
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Cli
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kestractl.config import Home
from kestractl.errors import ExpressionError, InputError, ValidationError
from kestractl.expressions import render
from kestractl.inputs import INPUT_TYPES, parse_input, resolve_inputs
from kestractl.model import Flow, Input
from kestractl.parser import FLOW_KEYS, parse_flow
from kestractl.server.app import ServerOptions, StandaloneServer


def fuzz(max_examples: int) -> settings:
    """The settings of every test here: an explicit budget, no deadline (CI machines vary), no database."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


class Hung(BaseException):
    """Raised by `deadline` from a signal handler; a BaseException so `except Exception` cannot swallow it."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail with `Hung` if the block runs longer than `seconds` (Python code only; C loops need a subprocess)."""

    def expire(signum: int, frame: Any) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def finishes_in_subprocess(code: str, seconds: float) -> bool:
    """Whether `code` ends within `seconds` in a fresh interpreter (killed otherwise): for uninterruptible work."""
    try:
        subprocess.run([sys.executable, "-c", code], timeout=seconds, capture_output=True, check=False)
    except subprocess.TimeoutExpired:
        return False
    return True


# ================================================================ 1. flow YAML

TASK_TYPES = (
    "io.kestra.plugin.core.log.Log",
    "io.kestra.core.tasks.log.Log",
    "io.kestra.plugin.core.debug.Return",
    "io.kestra.plugin.core.flow.Sequential",
    "io.kestra.plugin.core.flow.Parallel",
    "io.kestra.plugin.core.flow.If",
    "io.kestra.plugin.core.flow.Switch",
    "io.kestra.plugin.core.flow.ForEach",
    "io.kestra.plugin.core.flow.EachParallel",
    "io.kestra.plugin.core.flow.Dag",
    "io.kestra.plugin.core.flow.Pause",
    "io.kestra.plugin.core.flow.Subflow",
    "io.kestra.plugin.core.flow.ForEachItem",
    "io.kestra.plugin.core.flow.WorkingDirectory",
    "io.kestra.plugin.core.flow.AllowFailure",
    "io.kestra.plugin.core.flow.Sleep",
    "io.kestra.plugin.core.execution.Fail",
    "io.kestra.plugin.core.output.OutputValues",
    "io.kestra.plugin.scripts.shell.Commands",
    "io.kestra.plugin.scripts.python.Script",
    "io.kestra.plugin.jdbc.duckdb.Query",
    "no.such.Task",
    "",
)
TRIGGER_TYPES = (
    "io.kestra.plugin.core.trigger.Schedule",
    "io.kestra.plugin.core.trigger.Flow",
    "io.kestra.plugin.core.trigger.Webhook",
    "io.kestra.core.models.triggers.types.Schedule",
    "no.such.Trigger",
)
TASK_PROPS = (
    "message", "format", "values", "value", "defaults", "commands", "script", "delay", "duration", "disabled",
    "allowFailure", "concurrencyLimit", "namespace", "flowId", "inputs", "wait", "transmitFailed", "items", "batch",
    "sql", "runner", "outputFiles", "inputFiles", "env", "level", "condition", "dependsOn", "task", "concurrent",
    "description", "workerGroup", "logLevel", "errorMessage",
)  # fmt: skip
WEIRD_STRINGS = (
    "", " ", "\t", "PT1S", "PT0S", "P1D", "-PT1S", "PTXS", "PT99999999999999999999H", "{{ inputs.x }}", "{{", "}}",
    "{% if %}", "0 0 * * *", "* * *", "@daily", "constant", "exponential", "random", "..", "../..", "/etc/passwd",
    "a.b.c", "-", "_", "UPPER", "dev", "ñ", "日本", "\u202e", "\x00", "null", "~", "true", "yes", "no", "on",
    "2024-13-45", "1e999", "0x1F", "+1", ".inf", "[", "{", "*a", "&a", "!!int x", "io.kestra.plugin.core.log.Log",
)  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(WEIRD_STRINGS),
)
keys = st.one_of(st.sampled_from(sorted(FLOW_KEYS) + list(TASK_PROPS) + ["id", "type"]), st.text(max_size=8))
values = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=4), max_leaves=8
)
ids = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True) | scalars
namespaces = st.from_regex(r"[a-z][a-z0-9.]{0,10}", fullmatch=True) | scalars
durations = st.sampled_from(("PT1S", "PT0.5S", "P1D", "PT", "P", "-PT1S", "PT1H2M3.5S", "1s", "", "P1Y")) | scalars
retries = (
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(("constant", "exponential", "random", "bogus")) | scalars,
            "interval": durations,
            "minInterval": durations,
            "maxInterval": durations,
            "maxDuration": durations,
            "maxAttempt": scalars,
            "maxAttempts": scalars,
            "warningOnRetry": scalars,
        },
    )
    | scalars
)


def _task(kids: st.SearchStrategy[Any] | None) -> st.SearchStrategy[dict[Any, Any]]:
    """A task mapping with a real or bogus type, a few random properties and, when `kids` is given, child lists."""
    optional: dict[Any, st.SearchStrategy[Any]] = {"timeout": durations, "retry": retries}
    if kids is not None:
        optional |= {name: kids for name in ("tasks", "errors", "then", "else", "finally")}
        optional["cases"] = st.dictionaries(st.text(max_size=5), kids, max_size=2)
    return st.builds(
        lambda props, task: {**props, **task},
        st.dictionaries(st.sampled_from(TASK_PROPS), values, max_size=3),
        st.fixed_dictionaries({"id": ids, "type": st.sampled_from(TASK_TYPES)}, optional=optional),
    )


task_lists = st.recursive(
    st.lists(_task(None), max_size=3), lambda kids: st.lists(_task(kids), max_size=3) | values, max_leaves=8
)
INPUT_PROPS = (
    "required", "defaults", "min", "max", "after", "before", "validator", "values", "options", "itemType",
    "allowCustomValue", "dependsOn", "expression", "displayName", "description", "name",
)  # fmt: skip
input_declarations = st.builds(
    lambda props, known: {**props, **known},
    st.dictionaries(st.sampled_from(INPUT_PROPS), values, max_size=4),
    st.fixed_dictionaries({"id": ids, "type": st.sampled_from(sorted(INPUT_TYPES) + ["bogus", "string"]) | scalars}),
)
triggers = st.fixed_dictionaries(
    {"id": ids, "type": st.sampled_from(TRIGGER_TYPES) | scalars},
    optional={
        "cron": st.sampled_from(("0 * * * *", "* * *", "@hourly", "61 * * * *", "")) | scalars,
        "key": values,
        "conditions": values,
        "inputs": values,
        "timezone": st.sampled_from(("UTC", "Europe/Paris", "Nowhere/Land", "+25:00", "")) | scalars,
        "backfill": values,
        "disabled": scalars,
        "lateMaximumDelay": durations,
        "preconditions": values,
    },
)
flow_fields: dict[Any, st.SearchStrategy[Any]] = {
    "id": ids,
    "namespace": namespaces,
    "tasks": task_lists,
    "errors": task_lists,
    "finally": task_lists,
    "afterExecution": task_lists,
    "inputs": st.lists(input_declarations, max_size=4) | values,
    "triggers": st.lists(triggers, max_size=3) | values,
    "labels": values,
    "retry": retries,
    "timeout": durations,
    "variables": values,
    "outputs": values,
    "pluginDefaults": values,
    "disabled": scalars,
    "description": scalars,
    "concurrency": values,
    "revision": scalars,
}
flow_documents = st.builds(
    lambda known, unknown: {**unknown, **known},
    st.fixed_dictionaries({}, optional=flow_fields),
    st.dictionaries(keys, values, max_size=2),
)
flow_yaml = flow_documents.map(lambda doc: yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))

VALID_FLOW = """id: hello
namespace: fuzz.flows
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.name }}"
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: one
        type: io.kestra.plugin.core.debug.Return
        format: "1"
"""
MINIMAL_FLOW = (
    "id: minimal\nnamespace: fuzz\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n"
)
# YAML punctuation, explicit tags and flow words.
YAML_TOKENS = (
    "id", "namespace", "tasks", "type", "inputs", "triggers", ":", ": ", "- ", "\n", "\n  ", "\n    ", "\t", " ",
    "{", "}", "[", "]", ",", "'", '"', "#", "&a ", "*a", "? ", "|", ">", "---", "...", "%YAML 1.2\n", "<<: ",
    "!!str ", "!!map ", "!!seq ", "!!int ", "!!float ", "!!bool ", "!!null ", "!!set ", "!!binary ", "!!omap ",
    "!!pairs ", "!custom ", "~", "null", "true", "1", "-1", "0.5", "PT1S", "{{ x }}", "\\", "\\u00e9", "é",
    "\u2028", "\ufeff", "\x85", "io.kestra.plugin.core.log.Log",
)  # fmt: skip


def _splice(text: str, at: int, cut: int, insert: str) -> str:
    """`text` with `cut` characters at `at` replaced by `insert`: a near-valid flow."""
    at = min(at, len(text))
    return text[:at] + insert + text[at + cut :]


yaml_texts = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join),
    st.builds(
        _splice,
        st.just(VALID_FLOW),
        st.integers(0, len(VALID_FLOW)),
        st.integers(0, 8),
        st.text(max_size=6) | st.sampled_from(YAML_TOKENS),
    ),
)


def parses_or_refuses(text: str) -> None:
    """The parser's contract: a Flow, or a ValidationError; anything else escapes and fails the test."""
    try:
        flow = parse_flow(text, "fuzz.yaml")
    except ValidationError as error:
        assert error.message and error.problems
        return
    assert isinstance(flow, Flow)


@fuzz(400)
@given(flow_yaml)
def test_random_flow_structures_parse_or_are_refused(text: str) -> None:
    """Flow-shaped documents with every field of a random or wrong type, nested task trees included."""
    parses_or_refuses(text)


@fuzz(400)
@given(yaml_texts)
def test_random_yaml_text_parses_or_is_refused(text: str) -> None:
    """Text that is barely YAML: unicode, tabs, decoded random bytes, token soup, a valid flow with a splice."""
    parses_or_refuses(text)


def refuses(text: str) -> None:
    """The parser refuses `text` with its own error (not an accepted flow, not a stray exception)."""
    with pytest.raises(ValidationError) as refusal:
        parse_flow(text, "fuzz.yaml")
    assert refusal.value.message and refusal.value.problems


TAG_PLACES = {"id": "id: {}\n", "namespace": "namespace: {}\n", "variables": "variables:\n  x: {}\n"}


def tagged_flow(place: str, tagged: str) -> str:
    """MINIMAL_FLOW with `tagged` as its id, its namespace or a variable: the only thing wrong with it."""
    lines = {"id": "id: minimal\n", "namespace": "namespace: fuzz\n", "variables": ""}
    lines[place] = TAG_PLACES[place].format(tagged)
    return "".join(lines.values()) + MINIMAL_FLOW.split("namespace: fuzz\n", 1)[1]


def builds(text: str) -> bool:
    """Whether PyYAML's reference (pure-Python) loader can build the document at all."""
    try:
        yaml.safe_load(text)
    except Exception:
        return False
    return True


@fuzz(100)
@given(
    place=st.sampled_from(sorted(TAG_PLACES)),
    tag=st.sampled_from(
        ("!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq", "!!str", "!<tag:yaml.org,2002:int>")
    ),
    value=st.sampled_from(("abc", "''", "0", "0x", "0b", "'-'", ".", "[a]", "{a: 1}", "yes")) | st.text(max_size=5),
)
def test_explicit_yaml_tags_on_bad_values_are_refused(place: str, tag: str, value: str) -> None:
    """PyYAML's constructors raise plain ValueError, KeyError, IndexError … on a tag that does not fit: an
    otherwise valid flow holding a value YAML cannot build is refused, not accepted or crashed on."""
    text = tagged_flow(place, f"{tag} {value}")
    assume(not builds(text))
    refuses(text)


HUGE_NUMBERS = ("1.0e+20", "-1.0e+20", ".inf", "-.inf", "99999999999999999999", "PT99999999999999999999H", "P1e9D")
DURATION_PLACES = {
    "timeout": "timeout: {}",
    "retry": "retry:\n      type: constant\n      interval: {}",
    "pause": "delay: {}",
}


@fuzz(60)
@given(number=st.sampled_from(HUGE_NUMBERS), place=st.sampled_from(sorted(DURATION_PLACES)))
def test_huge_durations_are_refused(number: str, place: str) -> None:
    """Durations beyond what `timedelta` holds (OverflowError, not ValueError) in every place that takes one."""
    kind = "flow.Pause" if place == "pause" else "log.Log\n    message: hi"
    task = f"  - id: t\n    type: io.kestra.plugin.core.{kind}\n    {DURATION_PLACES[place].format(number)}\n"
    refuses("id: huge\nnamespace: fuzz\ntasks:\n" + task)


@fuzz(60)
@given(
    place=st.sampled_from(("trigger id", "ARRAY itemType", "MULTISELECT itemType")),
    value=st.sampled_from(("[]", "[a]", "{}", "{a: 1}")),
)
def test_lists_and_maps_where_a_name_belongs_are_refused(place: str, value: str) -> None:
    """Unhashable values where the parser looks a name up in a set (trigger ids, item types)."""
    if place == "trigger id":
        extra = f"triggers:\n  - id: {value}\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n"
    else:
        extra = f"inputs:\n  - id: a\n    type: {place.split()[0]}\n    itemType: {value}\n"
    refuses(MINIMAL_FLOW + extra)


def _nested(depth: int, kinds: list[str]) -> dict[str, Any]:
    """`depth` flowable tasks, each the only child of the one above, a Log at the bottom."""
    task: dict[str, Any] = {"id": "leaf", "type": "io.kestra.plugin.core.log.Log", "message": "deep"}
    for level in range(depth):
        task = {"id": f"t{level}", "type": f"io.kestra.plugin.core.flow.{kinds[level % len(kinds)]}", "tasks": [task]}
    return task


@fuzz(20)
@given(
    depth=st.integers(1, 400),
    kinds=st.lists(st.sampled_from(("Sequential", "Parallel", "AllowFailure", "WorkingDirectory")), min_size=1),
    flow_style=st.booleans(),
)
def test_deeply_nested_flowables_parse_or_are_refused(depth: int, kinds: list[str], flow_style: bool) -> None:
    """Deep trees must hit the documented nesting limit, not Python's recursion limit."""
    doc = {"id": "deep", "namespace": "fuzz", "tasks": [_nested(depth, kinds)]}
    # JSON is YAML in flow style; the block form is built by the emitter only while it can recurse.
    text = json.dumps(doc) if flow_style or depth > 150 else yaml.safe_dump(doc)
    parses_or_refuses(text)


@fuzz(8)
@given(
    size=st.sampled_from((10_000, 400_000, 999_900, 1_000_001, 2_000_000)),
    char=st.sampled_from(("x", "é", "\t", "{{ ", "日", " ")),
    where=st.sampled_from(("message", "id", "comment", "key")),
)
def test_huge_strings_parse_or_are_refused(size: int, char: str, where: str) -> None:
    """Up to 2 MB of one character in a value, an id, a comment or a key: the size limit, not a crash."""
    big = char * size
    task = {"id": "t", "type": "io.kestra.plugin.core.log.Log", "message": big if where == "message" else "m"}
    doc: dict[str, Any] = {"id": big if where == "id" else "huge", "namespace": "fuzz", "tasks": [task]}
    if where == "key":
        doc[big] = 1
    text = yaml.safe_dump(doc, allow_unicode=True, width=2**31 - 1)
    parses_or_refuses(text + ("#" + big + "\n" if where == "comment" else ""))


def alias_bomb(levels: int) -> str:
    """'Billion laughs': each level an anchored list of ten aliases to the level below, ~60 bytes a level."""
    lines = ["id: laughs", "namespace: fuzz", "variables:", "  l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"  l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]" for n in range(1, levels)]
    lines += ["tasks:", "  - id: t", "    type: io.kestra.plugin.core.log.Log", "    message: hi"]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_parsed_in_time() -> None:
    """Aliases share nodes: a walk that does not remember what it saw visits 10**9 of them."""
    with deadline(3):
        parses_or_refuses(alias_bomb(9))


def test_an_alias_bomb_is_refused() -> None:
    """Accepting it only moves the expansion to whoever reads the flow as data next."""
    with deadline(3), pytest.raises(ValidationError):
        parse_flow(alias_bomb(9), "laughs.yaml")


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """One kestractl home for every CLI example, so refused deploys are checked against a real store."""
    return Cli(tmp_path_factory.mktemp("fuzz-cli") / "home")


def deployed(cli: Cli) -> list[dict[str, Any]]:
    """`flow list --json`: what the store holds, to compare before and after a refused deploy."""
    result = cli("flow", "list", "--json")
    assert result.exit_code == 0, result.stderr
    flows: list[dict[str, Any]] = json.loads(result.stdout)
    return flows


@fuzz(60)
@given(text=flow_yaml | yaml_texts)
def test_cli_validate_and_deploy_refuse_cleanly(cli_home: Cli, text: str) -> None:
    """Exit 0 or 2, never a traceback; a refused deploy leaves the store as it was."""
    path = cli_home.home.parent / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    before = deployed(cli_home)
    for command in ("validate", "deploy"):
        result = cli_home("flow", command, str(path))
        output = result.stdout + result.stderr
        assert result.exit_code in (0, 2) and "Traceback" not in output, output
    if result.exit_code == 2:
        assert deployed(cli_home) == before


@fuzz(100)
@given(text=yaml_texts)
def test_cli_refusals_are_one_line_per_problem(cli_home: Cli, text: str) -> None:
    """Issue 6: a refusal is `Error: <problem>` lines, never a message spilling onto a second line."""
    path = cli_home.home.parent / "one-line.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli_home("flow", "validate", str(path))
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert lines and all(line.startswith("Error: ") for line in lines), result.stderr


# ================================================================ 2. expressions

EXPRESSION_TOKENS = (
    "{{", "}}", "{%", "%}", "{#", "#}", "?", ":", "??", "???", "|", "..", "~", "(", ")", "[", "]", "{", "}", ",",
    ".", "'", '"', "'a'", '"b c"', "inputs", "outputs", "vars", "flow", "execution", "taskrun", "x", "name", "list",
    "map", "missing", "0", "1", "2", "-1", "3.5", "1e308", "null", "true", "false", "and", "or", "not", "in", "is",
    "contains", "equals", "defined", "empty", "if", "else", "elseif", "endif", "for", "endfor", "set", "endset",
    "macro", "endmacro", "raw", "endraw", "verbatim", "endverbatim", "loop", "=", "==", "!=", "<", ">", "+", "-",
    "*", "/", "%", "**", "//", "range", "now", "json", "render", "fromJson", "yaml", "printContext", "max", "min",
    "randomInt", "uuid", "date", "dateAdd", "toJson", "jq", "keys", "length", "upper", "default", "join", "split",
    "replace", "slice", "number", "first", "last", "base64decode", "indent", "chunk", "merge", "sort", "abbreviate",
    "numberformat", "timestamp", "escapeChar", "slugify", "substringBefore", "className", "attr", "map", "select",
)  # fmt: skip
EXPRESSION_VARIABLES: dict[str, Any] = {
    "inputs": {"x": 1, "name": "ana", "list": [3, 1, 2], "map": {"k": "v", "values": [1]}, "none": None},
    "outputs": {"t": {"value": "out", "values": {"a": 1}}},
    "vars": {"greeting": "{{ inputs.name }}"},
    "flow": {"id": "f", "namespace": "fuzz"},
    "execution": {"id": "e1", "startDate": "2024-01-01T00:00:00Z"},
    "taskrun": {"value": "v"},
}
templates = st.one_of(
    st.lists(st.sampled_from(EXPRESSION_TOKENS) | st.sampled_from((" ", "  ", "\n")), max_size=40).map("".join),
    st.lists(st.sampled_from(EXPRESSION_TOKENS), max_size=25).map(lambda ts: "{{ " + " ".join(ts) + " }}"),
    st.lists(st.sampled_from(EXPRESSION_TOKENS), max_size=25).map(lambda ts: "{% " + " ".join(ts) + " %}"),
    st.builds(lambda a, b: "{{ " + a + " }}" + b, st.text(max_size=30), st.text(max_size=30)),
)


def renders_or_refuses(template: str, seconds: float = 10) -> str | None:
    """`render`'s contract: text, or an ExpressionError; in time (`deadline` raises a BaseException)."""
    with deadline(seconds):
        try:
            out = render(template, EXPRESSION_VARIABLES)
        except ExpressionError as error:
            assert error.message.startswith("Unable to render") and "\n" not in error.message
            return None
    assert isinstance(out, str)
    return out


@fuzz(600)
@given(templates)
def test_random_templates_render_or_are_refused(template: str) -> None:
    """Pebble tokens in any order: unbalanced tags, operators without operands, filters on anything."""
    renders_or_refuses(template)


# Python's internals must never print; nor may a template reach a file, a module or the environment.
LEAKS = ("<class", "<module", "__globals__", "__builtins__", "Popen", "root:x:0", "_TemplateReference", "/bin/")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ self.__dict__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ inputs.__class__ }}",
        "{{ render.__globals__ }}",
        "{{ now.__globals__['os'] }}",
        "{{ 'x'|attr('__class__') }}",
        "{{ ''['__class__'] }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ config }}",
        "{% import 'os' as os %}",
        "{% include '/etc/passwd' %}",
        "{% extends '/etc/passwd' %}",
        "{{ read('/etc/passwd') }}",
        "{{ range(10**9) }}",
        "{{ range(0, 10**9)|length }}",
        "{{ 9 ** 9 ** 9 }}",
        "{{ 10 ** 100000 }}",
        "{% for i in range(0, 10**9) %}{% endfor %}",
    ],
)
def test_known_sandbox_escapes_are_refused_or_harmless(template: str) -> None:
    """The classic Jinja SSTI payloads and resource bombs: refused, or rendered without leaking internals."""
    out = renders_or_refuses(template)
    assert out is None or not any(leak in out for leak in LEAKS), out


def test_nested_loops_are_stopped() -> None:
    """Each range is under its limit; together they ask for 2.5 billion iterations."""
    renders_or_refuses("{% for i in range(1, 50000) %}{% for j in range(1, 50000) %}x{% endfor %}{% endfor %}", 3)


def test_a_power_tower_is_refused_in_time() -> None:
    """Big-int arithmetic runs in C, where no signal interrupts it: only a subprocess can time it out."""
    template = "{{ ((10**1000)**1000)**1000 }}"
    code = f"from kestractl.expressions import render\ntry: render({template!r}, {{}})\nexcept Exception: pass"
    assert finishes_in_subprocess(code, 5)


def test_intermediate_strings_stay_under_the_output_limit() -> None:
    """The output cap only sees the final text; a filter can build a huge string and measure it."""
    tracemalloc.start()
    try:
        renders_or_refuses("{{ 'a'|center(10**8)|length }}")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000


# ================================================================ 3. inputs

PATTERNS = ("^a+$", "[0-9]{2}", ".*", "(", "[a-", "\\", "x|y", "^$", "(?i)abc")
type_names = st.sampled_from(sorted(INPUT_TYPES))
input_values = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        (
            "", " ", "0", "-1", "1.5", "1e400", "NaN", "true", "false", "null", "2024-01-01", "2024-13-45",
            "2024-01-01T10:00:00Z", "10:00", "25:61", "PT1M", "P1D", "-PT1S", "[]", "[1, 2]", '["a"]', "{}",
            '{"a": 1}', "a: b", "- x", "kestra:///ns/f/x", "/etc/passwd", "/", ".", "https://kestra.io", "a@b.c",
            "9" * 250, "[" * 250,  # longer is a file name the OS refuses: a known bug with its own test
        )
    ),
)  # fmt: skip
input_props = st.fixed_dictionaries(
    {},
    optional={
        "min": input_values | scalars,
        "max": input_values | scalars,
        "after": input_values,
        "before": input_values,
        "validator": st.sampled_from(PATTERNS) | st.text(max_size=6),
        "values": st.lists(input_values | scalars, max_size=4) | scalars,
        "options": st.lists(input_values, max_size=4),
        "itemType": type_names | st.text(max_size=5),  # a list or map has its own test below
        "allowCustomValue": scalars,
        "defaults": input_values | values,
        "required": st.booleans(),
        "dependsOn": st.fixed_dictionaries({"inputs": st.lists(st.sampled_from(("a", "b", "c")), max_size=2)}),
        "displayName": st.text(max_size=70),
    },
)
declared_inputs = st.lists(
    st.builds(
        lambda ident, kind, props: {"id": ident, "type": kind, **props},
        st.sampled_from("abcd"),
        type_names,
        input_props,
    ),
    max_size=4,
    unique_by=lambda raw: raw["id"],
)
provided_inputs = st.dictionaries(
    st.sampled_from(("a", "b", "c", "d", "e")), input_values | values.filter(lambda v: not isinstance(v, str))
)


def declarations(raws: list[dict[str, Any]]) -> list[Input]:
    """The inputs a deployed flow could hold: the ones `parse_input` accepts (the parser refuses the rest)."""
    accepted = []
    for raw in raws:
        parsed, problems = parse_input(raw)
        if parsed is not None and not problems:
            accepted.append(parsed)
    return accepted


def _store_file(input_id: str, path: Path) -> str:
    """Stands in for internal storage: FILE inputs that name a real file get a URI, nothing is copied."""
    return f"kestra:///fuzz/inputs/{input_id}/{path.name}"


@fuzz(500)
@given(raws=declared_inputs, provided=provided_inputs)
def test_random_input_values_resolve_or_are_refused(raws: list[dict[str, Any]], provided: dict[str, Any]) -> None:
    """Declarations with random bounds, patterns, choices and item types against any provided value."""
    declared = declarations(raws)
    with deadline(10):
        try:
            resolved = resolve_inputs(declared, provided, store_file=_store_file)
        except (InputError, ValidationError) as error:
            assert error.message
            return
    assert isinstance(resolved, dict)


@fuzz(20)
@given(length=st.integers(256, 5000), char=st.sampled_from("x9[é"))
def test_a_file_input_with_an_overlong_name_is_an_input_error(length: int, char: str) -> None:
    """A value the OS cannot even look up is still the user's bad input, not an OSError."""
    with pytest.raises(InputError):
        resolve_inputs([Input("f", "FILE")], {"f": char * length}, store_file=_store_file)


@pytest.mark.parametrize("item_type", [[], ["STRING"], {}, {"a": 1}])
def test_parse_input_refuses_an_unhashable_item_type(item_type: Any) -> None:
    """The declaration check should name the field, like every other declaration problem."""
    _, problems = parse_input({"id": "a", "type": "ARRAY", "itemType": item_type})
    assert any(p.startswith("itemType: unknown input type") for p in problems), problems


@fuzz(300)
@given(raw=st.one_of(values, st.builds(lambda k, p: {"id": "a", "type": k, **p}, type_names | scalars, input_props)))
def test_random_input_declarations_are_parsed_or_refused(raw: Any) -> None:
    """`parse_input` reports problems as a list; it never raises on a declaration, whatever its shape."""
    parsed, problems = parse_input(raw)
    assert parsed is None or isinstance(parsed, Input)
    assert all(isinstance(p, str) for p in problems)


# ================================================================ 4. HTTP

FUZZ_FLOW = """id: fuzz
namespace: fuzz
inputs:
  - id: text
    type: STRING
    required: false
  - id: number
    type: INT
    required: false
  - id: data
    type: JSON
    required: false
  - id: choice
    type: SELECT
    values: [a, b]
    required: false
  - id: when
    type: DATETIME
    required: false
tasks:
  - id: done
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.text ?? 'none' }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: fuzz-key
"""
HEALTH = "/api/v1/flows/search"
IMPLEMENTED = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
YAML = {"Content-Type": "application/x-yaml"}
EXECUTION = "@execution@"  # stands for the fixture's finished execution in generated paths


@dataclass
class Served:
    """A running server and the id of an execution it finished, for paths that need a real one."""

    server: StandaloneServer
    execution_id: str = ""

    @property
    def port(self) -> int:
        return self.server.port

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, chunked: bool = False
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        """One request on a fresh connection (a half-read body must not leak into the next example)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            response = connection.getresponse()
            return response.status, response.read(), response
        finally:
            connection.close()

    def answers(self) -> bool:
        try:
            return self.call("GET", HEALTH)[0] == 200
        except OSError:
            return False

    def snapshot(self) -> tuple[Any, ...]:
        """What a refused request must not change: every flow revision and the number of executions."""
        status, flows, _ = self.call("GET", HEALTH + "?size=100000")
        assert status == 200, flows
        _, executions, _ = self.call("GET", "/api/v1/executions/search?size=1")
        listed = sorted((f["namespace"], f["id"], f["revision"]) for f in json.loads(flows)["results"])
        return tuple(listed), json.loads(executions)["total"]


@contextmanager
def running_server(root: Path) -> Iterator[Served]:
    """A real `StandaloneServer` on 127.0.0.1:0 in a thread, stopped (and joined) on exit."""
    options = ServerOptions(flow_path=None, port=0, grace_seconds=2, tick_seconds=0.05, workers=2)
    server = StandaloneServer(Home(root / "home").ensure(), options, say=lambda level, message: None)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    handle = Served(server)
    end = time.monotonic() + 10
    while not handle.answers():
        assert time.monotonic() < end, "server did not answer in time"
        time.sleep(0.05)
    try:
        yield handle
    finally:
        server.stop_event.set()
        thread.join(15)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for every fuzzed request: one flow (typed inputs, a webhook) and one finished execution."""
    with running_server(tmp_path_factory.mktemp("fuzz-http")) as handle:
        status, body, _ = handle.call("POST", "/api/v1/flows", FUZZ_FLOW, YAML)
        assert status == 200, body
        status, body, _ = handle.call("POST", "/api/v1/executions/trigger/fuzz/fuzz?wait=true", "text=seed", FORM)
        assert status == 200, body
        handle.execution_id = json.loads(body)["id"]
        yield handle


ROUTES = (
    "/api/v1/executions/trigger/{ns}/{flow}",
    "/api/v1/executions/{ns}/{flow}",
    "/api/v1/executions/search",
    "/api/v1/executions/{id}",
    "/api/v1/executions/{id}/kill",
    "/api/v1/executions/{id}/restart",
    "/api/v1/executions/{id}/resume",
    "/api/v1/executions/{id}/file",
    "/api/v1/executions/webhook/{ns}/{flow}/{key}",
    "/api/v1/main/executions/webhook/{ns}/{flow}/{key}",
    "/api/v1/logs/{id}",
    "/api/v1/logs/{id}/download",
    "/api/v1/flows",
    "/api/v1/flows/search",
    "/api/v1/flows/validate",
    "/api/v1/flows/{ns}",
    "/api/v1/flows/{ns}/{flow}",
    "/api/v1/main/flows/{ns}/{flow}",
    "/api/v1/{any}",
    "/api/v1/{any}/{any}/{any}",
    "/{any}",
)
QUERY_NAMES = (
    "page", "size", "namespace", "flowId", "state", "q", "revision", "wait", "source", "labels", "inputs", "path",
    "minLevel", "taskId", "delete",
)  # fmt: skip
URL_TEXT = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#")
segments = st.one_of(
    st.sampled_from(("fuzz", "fuzz-key", EXECUTION, "..", ".", "%2F", "%2e%2e", "%00", "%", "%zz", "~", "", "a%2Fb")),
    st.text(max_size=12).map(lambda s: urllib.parse.quote(s, safe="")),
    st.text(URL_TEXT, max_size=12),
)
query_values = st.one_of(
    st.sampled_from(("", "0", "-1", "1", "true", "99999999999999999999", "a:b", "{", '{"text": "x"}', "²", "1e3")),
    st.text(max_size=12),
)
CONTENT_TYPES = (
    "application/json",
    "application/x-yaml",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=XyZ",
    'multipart/form-data; boundary="a b"',
    "text/plain; charset=nope",
    "text/plain; charset=utf-16",
    "application/octet-stream",
    ";;;",
)
HEADER_NAMES = ("Content-Type", "Accept", "Authorization", "Expect", "Cookie", "Host", "Content-Encoding", "X-Kestra")
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=30)


@st.composite
def request_paths(draw: st.DrawFn) -> str:
    """A route with each `{…}` filled by a real name, an encoded oddity or junk, plus a random query."""
    parts = draw(st.sampled_from(ROUTES)).split("/")
    path = "/".join(draw(segments) if part.startswith("{") else part for part in parts)
    pairs = draw(st.lists(st.tuples(st.sampled_from(QUERY_NAMES), query_values), max_size=3))
    return path + ("?" + urllib.parse.urlencode(pairs) if pairs else "")


def _multipart(boundary: str, parts: list[tuple[str, str, bytes]], closed: bool) -> bytes:
    """A multipart body whose parts may lack names, headers or the closing boundary."""
    out = b""
    for disposition, extra, data in parts:
        out += f"--{boundary}\r\n{disposition}{extra}\r\n\r\n".encode("utf-8", "replace") + data + b"\r\n"
    return out + (f"--{boundary}--\r\n".encode("utf-8", "replace") if closed else b"")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=10,
)
boundaries = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters='"\\;'), max_size=20)
dispositions = st.sampled_from(
    (
        'Content-Disposition: form-data; name="text"',
        'Content-Disposition: form-data; name="data"',
        'Content-Disposition: form-data; name="number"; filename="n.txt"',
        'Content-Disposition: form-data; name="nope"; filename="../../etc/x"',
        "Content-Disposition: form-data",
        "Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC",
        "",
        "garbage",
    )
)
multipart_bodies = st.builds(
    lambda boundary, parts, closed: (boundary, _multipart(boundary, parts, closed)),
    boundaries,
    st.lists(
        st.tuples(
            dispositions, st.sampled_from(("", "\r\nContent-Type: text/plain; charset=latin-9")), st.binary(max_size=40)
        ),
        max_size=3,
    ),
    st.booleans(),
)
bodies = st.one_of(
    st.none(),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode()[: len(json.dumps(v)) // 2]),
    st.binary(max_size=500),
    st.dictionaries(st.sampled_from(("text", "number", "data", "choice", "when", "x")), query_values).map(
        lambda d: urllib.parse.urlencode(d).encode()
    ),
    st.text(max_size=60).map(lambda s: s.encode("utf-8")),
    flow_yaml.map(lambda s: s.encode("utf-8")),
    st.just(FUZZ_FLOW.encode()),
    st.builds(_splice, st.just(FUZZ_FLOW), st.integers(0, len(FUZZ_FLOW)), st.integers(0, 8), st.text(max_size=6)).map(
        lambda s: s.encode("utf-8")
    ),
)


@dataclass
class FuzzRequest:
    """One drawn request, kept as data so Hypothesis prints (and shrinks) it readably."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    chunked: bool


# Never a number above the real length: the server would rightly wait for bytes that never come.
JUNK_LENGTHS = ("abc", "-1", "+1", "1.0", "", "0x10", "1 2", "99999999999999999999", "\xb2", "\xb9\xb2", "0")
methods = st.sampled_from(sorted(IMPLEMENTED | {"HEAD", "OPTIONS", "TRACE"}))
methods |= st.from_regex(r"[A-Z]{1,8}", fullmatch=True)
header_names = st.sampled_from(HEADER_NAMES) | st.from_regex(r"X-[A-Za-z]{1,8}", fullmatch=True)


@st.composite
def fuzz_requests(draw: st.DrawFn) -> FuzzRequest:
    """Method, path, headers and body drawn apart, so every kind of body reaches every route."""
    headers = draw(st.dictionaries(header_names, header_values, max_size=3))
    body, kind = draw(bodies), draw(st.sampled_from(CONTENT_TYPES) | st.none())
    if draw(st.booleans()):  # a real multipart body, its boundary matching the header's or not
        boundary, body = draw(multipart_bodies)
        kind = draw(st.sampled_from((f"multipart/form-data; boundary={boundary}", "multipart/form-data; boundary=x")))
    if kind is not None:
        headers["Content-Type"] = kind
    method = draw(methods)
    if method not in IMPLEMENTED:  # refused before the body is read: sending one races the server's close
        body = None
    chunked = body is not None and draw(st.booleans())
    if not chunked and body is not None and draw(st.booleans()):  # a Content-Length the server must not trust
        headers["Content-Length"] = draw(st.sampled_from(JUNK_LENGTHS) | st.just(f" {len(body)} "))
    return FuzzRequest(method, draw(request_paths()), headers, body, chunked)


def _send(served: Served, request: FuzzRequest) -> tuple[int, bytes, http.client.HTTPResponse]:
    """Send a drawn request, its body in two chunks when chunked, the real execution id in its path."""
    body: Any = request.body
    if request.chunked and body is not None:
        body = iter([body[: len(body) // 2], body[len(body) // 2 :]])
    path = request.path.replace(EXECUTION, served.execution_id)
    return served.call(request.method, path, body, request.headers, chunked=request.chunked)


def assert_clean_refusal(method: str, status: int, body: bytes) -> None:
    """2xx-4xx, or 501 for a method the server does not implement; a 4xx/5xx body is JSON with a message."""
    assert status < 500 or (status == 501 and method not in IMPLEMENTED), (status, body[:500])
    if status >= 400 and method != "HEAD":
        error = json.loads(body)
        assert isinstance(error, dict) and error.get("message"), body[:500]


@fuzz(300)
@given(request=fuzz_requests())
def test_random_requests_get_a_clean_answer_and_refusals_change_nothing(served: Served, request: FuzzRequest) -> None:
    """Any method, path, query, headers and body: never a 500, a 4xx is JSON, a refusal stores nothing."""
    if ("fuzz", "fuzz") not in {flow[:2] for flow in served.snapshot()[0]}:  # a fuzzed DELETE may have removed it
        served.call("POST", "/api/v1/flows", FUZZ_FLOW, YAML)
    before = served.snapshot()
    status, body, _ = _send(served, request)
    assert_clean_refusal(request.method, status, body)
    if status >= 400:
        assert served.snapshot() == before, (status, body[:300])
    assert served.call("GET", HEALTH)[0] == 200


REREAD_TAIL = "namespace: fuzz\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n"


@pytest.mark.parametrize("head", ["id: dated\nvariables:\n  when: 2024-13-45\n", "id: 2024-13-45\n"])
def test_a_flow_the_api_cannot_reread_is_refused_before_it_is_stored(tmp_path: Path, head: str) -> None:
    """Own server: a stored bad flow breaks the listing for good, so it must not poison the shared one."""
    with running_server(tmp_path) as handle:
        before = handle.snapshot()
        status, answer, _ = handle.call("POST", "/api/v1/flows", head + REREAD_TAIL, YAML)
        assert_clean_refusal("POST", status, answer)
        if status >= 400:
            assert handle.snapshot() == before
        assert handle.call("GET", HEALTH)[0] == 200


@pytest.mark.parametrize(
    "head", ["id: sets\nvariables:\n  x: !!set {a, b}\n", "id: bytes\ndescription: !!binary aGk=\n"]
)
def test_a_flow_with_yaml_only_types_is_refused_or_served(tmp_path: Path, head: str) -> None:
    """Sets and bytes have no JSON form: the flow JSON must not fail on them after the flow is stored."""
    with running_server(tmp_path) as handle:
        status, answer, _ = handle.call("POST", "/api/v1/flows", head + REREAD_TAIL, YAML)
        assert_clean_refusal("POST", status, answer)
        assert handle.call("GET", HEALTH)[0] == 200


@pytest.mark.parametrize("value", ["\xb2", "\xb9", "\xb3"])
def test_a_unicode_digit_content_length_is_a_400(served: Served, value: str) -> None:
    """`str.isdigit()` accepts `²`, `int()` does not."""
    status, body, _ = served.call("POST", "/api/v1/flows/validate", b"x", {"Content-Length": value})
    assert_clean_refusal("POST", status, body)


def test_a_file_input_sent_as_text_cannot_read_server_files(served: Served, tmp_path: Path) -> None:
    """A FILE input given as a text field naming a server path must not copy that file into storage."""
    flow = "id: files\nnamespace: fuzz\ninputs:\n  - id: upload\n    type: FILE\n    required: false\n"
    flow += "tasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n"
    if served.call("GET", "/api/v1/flows/fuzz/files")[0] == 404:
        assert served.call("POST", "/api/v1/flows", flow, YAML)[0] == 200
    secret = tmp_path / "server-only.txt"
    secret.write_text("not for http clients")
    form = urllib.parse.urlencode({"upload": str(secret)})
    status, body, _ = served.call("POST", "/api/v1/executions/trigger/fuzz/files?wait=true", form, FORM)
    if status == 200:
        execution = json.loads(body)
        uri = urllib.parse.quote(str(execution["inputs"].get("upload")), safe="")
        status, body, _ = served.call("GET", f"/api/v1/executions/{execution['id']}/file?path={uri}")
    assert b"not for http clients" not in body


# ---------------------------------------------------------------- raw sockets: what http.client will not send

RAW_TOKENS = (
    "GET", "POST", "PUT", "DELETE", "BREW", " ", "  ", "/", "/api/v1/flows/search", "/api/v1/flows", "*", "%",
    "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/x", "\r\n", "\n", "\r", "Host: x", "Content-Length: 5",
    "Content-Length: -5", "Content-Length: \xb9\xb9", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip",
    "Expect: 100-continue", "Content-Type: application/json", ": novalue", "NoColon", "\t", "\x00", "é", "0", "ff",
    "{}",
)  # fmt: skip


def raw_exchange(port: int, data: bytes, seconds: float = 10) -> bytes:
    """Send `data`, half-close (the server sees end of input, not a stall), read the answer to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def final_answer(answer: bytes) -> tuple[int | None, bytes]:
    """Status and body of the last non-1xx response; status None for an HTTP/0.9-style answer (body only)."""
    while answer.startswith(b"HTTP/"):
        head, _, rest = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status >= 200:
            return status, rest
        answer = rest
    return None, answer


@fuzz(150)
@given(tokens=st.lists(st.sampled_from(RAW_TOKENS), max_size=30))
def test_malformed_raw_requests_get_a_clean_answer(served: Served, tokens: list[str]) -> None:
    """Request lines and headers http.client refuses to send: a 4xx JSON, 505, or a closed connection."""
    answer = raw_exchange(served.port, "".join(tokens).encode("latin-1") + b"\r\n\r\n")
    status, body = final_answer(answer)
    assert status is None or status < 500 or status in (501, 505), answer[:500]
    if body and (status is None or status >= 400):  # HTTP/0.9 gets the JSON without a status line
        assert json.loads(body).get("message"), answer[:500]
    assert served.call("GET", HEALTH)[0] == 200


def test_a_declared_oversized_body_gets_413_before_it_is_sent(served: Served) -> None:
    """A declared length or a chunk size over the limit is refused before a byte of the body is read."""
    head = b"POST /api/v1/flows HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-yaml\r\n"
    for framing in (
        b"Content-Length: 200000000\r\n\r\nid: x\n",
        b"Transfer-Encoding: chunked\r\n\r\n7fffffff\r\nid: x\n",
    ):
        status, body = final_answer(raw_exchange(served.port, head + framing))
        assert status == 413 and json.loads(body)["message"]


@pytest.mark.parametrize(
    "partial",
    [
        b"GET /api/v1/flo",  # a request line that never ends
        b"POST /api/v1/flows HTTP/1.1\r\nHost: x\r\nContent-Len",  # headers cut in the middle
        b"POST /api/v1/flows HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nid: x\n",  # a body that stops
        b"POST /api/v1/flows HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nab",  # a chunk that stops
    ],
)
def test_stalled_clients_do_not_block_others(served: Served, partial: bytes) -> None:
    """Eight connections stuck mid-request hold eight threads, not the listener."""
    stalled = [socket.create_connection(("127.0.0.1", served.port), timeout=5) for _ in range(8)]
    try:
        for sock in stalled:
            sock.sendall(partial)
        started = time.monotonic()
        status, _, _ = served.call("GET", HEALTH)
        assert status == 200 and time.monotonic() - started < 3
    finally:
        for sock in stalled:
            sock.close()
