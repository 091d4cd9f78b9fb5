"""Every function, filter and test of Kestra's Pebble exists here, by name.

The lists are copied (names only) from Kestra's `core/src/main/java/io/kestra/core/runners/pebble/Extension.java`
at commit 1e87364a3d440025d3e47becddb98d306e431b89 (the 1.x line: `isDateBetween`, `loopOutputs`, `subflow`,
the bounded `range`), and from Pebble's own `CoreExtension.java` (commit 88da8e243a37e2bbc2b55bc4b4f207e5dce1c5fa)
plus its escaper extension (`escape`, `raw`), which every Kestra template also has. Our functions are the static
globals of `kestractl.expressions` and the runtime ones a real `Contexts` gives a task (`read`, `kv` …).
"""

from __future__ import annotations

from pathlib import Path

from kestractl import expressions_env
from kestractl.engine.contexts import Contexts, LogBuffer
from kestractl.model import Execution, new_id
from kestractl.parser import parse_flow
from kestractl.storage import LocalStorage
from kestractl.store import open_store

KESTRA_FUNCTIONS = [
    "now", "range", "fromJson", "env", "secret", "kv", "read", "fileURI", "render", "renderOnce", "encrypt",
    "decrypt", "yaml", "printContext", "fetchContext", "uuid", "id", "ksuid", "fromIon", "fileSize", "errorLogs",
    "randomInt", "randomPort", "fileExists", "isFileEmpty", "nanoId", "tasksWithState", "http", "subflow",
    "isPublicHoliday", "isDayWeekInMonth", "isWeekend", "isDateBetween", "isLastWorkingDay", "dayOfWeek",
    "hourOfDay", "dayOfMonth", "monthOfYear", "loopOutputs",
]  # fmt: skip
KESTRA_FILTERS = [
    "chunk", "className", "date", "dateAdd", "timestamp", "timestampMicro", "timestampMilli", "timestampNano", "jq",
    "escapeChar", "toJson", "distinct", "keys", "number", "urldecode", "slugify", "substringBefore",
    "substringBeforeLast", "substringAfter", "substringAfterLast", "flatten", "indent", "nindent", "yaml",
    "startsWith", "endsWith", "values", "toIon", "sha1", "sha512", "md5", "string", "regexMatch", "regexReplace",
    "regexExtract",
]  # fmt: skip
KESTRA_TESTS = ["json"]

PEBBLE_FUNCTIONS = ["max", "min", "range"]
PEBBLE_FILTERS = [
    "abbreviate", "abs", "capitalize", "date", "default", "first", "join", "last", "lower", "numberformat", "slice",
    "sort", "rsort", "reverse", "title", "trim", "upper", "urlencode", "length", "replace", "merge", "split",
    "base64encode", "base64decode", "sha256", "nl2br", "escape", "raw",
]  # fmt: skip
PEBBLE_TESTS = ["empty", "even", "iterable", "map", "null", "odd", "defined"]

# Kestra functions that cannot apply here; each is explained in docs/expressions.md.
NOT_APPLICABLE = {"subflow": "runs a flow while Kestra's webserver renders an execute form"}

DOCS = Path(__file__).parent.parent / "docs" / "expressions.md"


def runtime_functions(tmp_path: Path) -> set[str]:
    """The functions a task's variables carry, from a real `Contexts` over a real store and storage."""
    store = open_store(tmp_path / "k.db")
    try:
        contexts = Contexts(store, LocalStorage(tmp_path / "storage"), LogBuffer(store))
        flow = parse_flow(
            "id: f\nnamespace: n\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: x"
        )
        execution = Execution(id=new_id(), namespace="n", flow_id="f", flow_revision=1)
        context = contexts.make(flow, execution, {"t": flow.tasks[0]}, flow.tasks[0], None)
        return {name for name, value in context.variables.items() if callable(value)}
    finally:
        store.close()


def static_functions() -> set[str]:
    return {name for name in expressions_env.ENV.globals if not name.startswith("_")}


def test_every_kestra_function_exists(tmp_path: Path) -> None:
    ours = static_functions() | runtime_functions(tmp_path)
    missing = [n for n in KESTRA_FUNCTIONS + PEBBLE_FUNCTIONS if n not in ours and n not in NOT_APPLICABLE]
    assert missing == []


def test_every_kestra_filter_exists() -> None:
    assert [n for n in KESTRA_FILTERS + PEBBLE_FILTERS if n not in expressions_env.ENV.filters] == []


def test_every_kestra_test_exists() -> None:
    assert [n for n in KESTRA_TESTS + PEBBLE_TESTS if n not in expressions_env.ENV.tests] == []


def test_functions_left_out_are_explained_in_the_docs() -> None:
    text = DOCS.read_text()
    assert [name for name in NOT_APPLICABLE if f"`{name}" not in text] == []


def test_the_runtime_functions_are_not_static_ones(tmp_path: Path) -> None:
    """A name given by both would make the runtime one win silently: each function has one home."""
    assert static_functions() & runtime_functions(tmp_path) == set()
