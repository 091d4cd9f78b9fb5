"""The layering of docs/architecture.md, checked by reading imports: lower rooms never import higher ones."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "kestractl"

# Lower number = lower layer. A module may import only modules of its own layer or below.
LAYERS = {
    "errors": 0,
    "model": 0,
    "durations": 0,
    "config": 1,
    "expressions": 1,
    "pebble_syntax": 1,
    "expressions_dates": 1,
    "expressions_env": 1,
    "expressions_text": 1,
    "expressions_filters": 1,
    "expressions_functions": 1,
    "expressions_jq": 1,
    "inputs": 1,
    "tasks.properties": 1,  # `Prop`, the declaration of a property: inputs declare theirs with it too
    "rows": 2,
    "store": 1,
    "storage": 1,
    "kv": 1,
    "namespace_files": 1,
    "namespaces": 2,  # every namespace known: asks the store and walks internal storage
    "tasks": 2,
    "plugin": 2,
    "triggers": 2,
    "plugins": 3,  # plugin families, above the plugin API they are built on (see the test below)
    "parser": 3,
    "flow_schema": 3,  # the flow's JSON Schema, from the parser's and the types' declarations
    "graph": 3,  # a flow's topology (Kestra's GraphUtils), for the API and the UI
    "deploy": 3,
    "engine": 4,
    "server": 5,
    "testing": 5,  # flow unit tests: the engine on a scratch store, for the `test` command and the tests API
    "ui": 5,  # pages served by the server, on the same footing as its API
    "cli": 6,
}


def layer(module: str) -> int:
    parts = module.removeprefix("kestractl.").split(".")
    for size in (2, 1):
        key = ".".join(parts[:size])
        if key in LAYERS:
            return LAYERS[key]
    return -1


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            found.append("relative import (use absolute kestractl.* imports)")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kestractl"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("kestractl")]
    return found


def test_imports_point_down_only() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        if module in ("kestractl", "kestractl.__main__"):
            continue
        own = layer(module)
        for target in imports(path):
            if target.startswith("relative") or (target != "kestractl" and layer(target) > own):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_plugin_families_import_kestractl_only_through_the_plugin_api() -> None:
    """A family under kestractl/plugins/ is built as a third party would build it: `kestractl.plugin` and its own
    package, nothing else of kestractl."""
    wrong = [
        f"{path.relative_to(PACKAGE.parent)} imports {target}"
        for path in (PACKAGE / "plugins").rglob("*.py")
        for target in imports(path)
        if target != "kestractl.plugin" and not target.startswith("kestractl.plugins.")
    ]
    assert wrong == []


def test_only_the_store_speaks_sql() -> None:
    """No other module touches sqlite3 or writes SQL (the DuckDB task runs its users' SQL, not ours; the JDBC
    plugin's SQLite tasks open a user's database with sqlite3, never kestractl's state)."""
    import re

    statement = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("store/") or relative == "plugins/jdbc/sqlite.py":
            continue
        text = path.read_text()
        if "sqlite3" in text or (path.name != "duckdb.py" and statement.search(text)):
            offenders.append(path.name)
    assert offenders == []


def test_cli_start_up_does_not_import_the_engine() -> None:
    heavy = "('kestractl.engine', 'jinja2', 'yaml', 'duckdb')"
    code = f"import sys, kestractl.cli.app; print(','.join(m for m in sys.modules if m.startswith({heavy})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_a_command_builds_and_imports_only_its_own_cli_module(tmp_path: Path) -> None:
    code = (
        "import sys; from kestractl.cli.app import main\n"
        f"try: main(['--home', {str(tmp_path)!r}, 'execute', 'dev', 'missing'])\n"
        "except SystemExit: pass\n"
        "print(*sorted(m for m in sys.modules if m.startswith('kestractl.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    # `backend` and `local`: the interface every command is written against, and its local implementation.
    assert out == [
        "kestractl.cli.app",
        "kestractl.cli.backend",
        "kestractl.cli.execute",
        "kestractl.cli.local",
        "kestractl.cli.output",
        "kestractl.cli.state",
    ]


def test_start_up_pauses_the_collector_until_the_command_has_imported_what_it_runs(tmp_path: Path) -> None:
    """Counted, not timed: the cyclic collector ran about 50 times while `execute` imported the engine."""
    code = (
        "import gc; from kestractl.cli import main\n"
        "runs = []\n"
        "gc.callbacks.append(lambda phase, info: runs.append(phase))\n"
        f"try: main(['--home', {str(tmp_path)!r}, 'execute', 'dev', 'missing'])\n"
        "except SystemExit: pass\n"
        "print(runs.count('start'), gc.isenabled())"
    )
    collections, enabled = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(collections) < 10 and enabled == "True"


def test_the_command_is_found_after_the_global_options_only() -> None:
    from kestractl.cli.app import command_of

    assert command_of(["--home", "h", "execute", "dev", "f"]) == "execute"
    assert command_of(["--home=h", "flow", "list"]) == "flow"
    assert command_of(["--home", "execute"]) is None  # the folder's name, not a command
    for args in ([], ["--help"], ["-h", "execute"], ["--version"], ["nope"], ["--install-completion"]):
        assert command_of(args) is None, args  # the whole app answers


def test_running_a_plain_flow_loads_no_task_library(tmp_path: Path) -> None:
    """HTTP, jq, encryption, holidays and murmur3 are imported by the tasks and functions that use them only."""
    libraries = ("httpx", "jq", "cryptography", "holidays", "mmh3", "duckdb", "psycopg", "pymysql")
    flow = tmp_path / "plain.yaml"
    flow.write_text(
        "id: plain\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    )
    code = (
        "import sys; from kestractl.cli.app import main\n"
        f"home = {str(tmp_path / 'home')!r}\n"
        "for argv in (['flow', 'deploy', sys.argv[1]], ['execute', 'dev', 'plain']):\n"
        "    try: main(['--home', home, *argv])\n"
        "    except SystemExit: pass\n"
        f"print('loaded:', *sorted(m for m in sys.modules if m.split('.')[0] in {libraries!r}), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(flow)], capture_output=True, text=True, check=True)
    assert done.stderr.splitlines()[-1] == "loaded:", done.stderr


def test_a_flow_of_plain_paths_runs_without_jinja(tmp_path: Path) -> None:
    """Literal text and `{{ dotted.path }}`s are read by `PathsTemplate`: Jinja's import is start-up time saved."""
    flow = tmp_path / "paths.yaml"
    flow.write_text(
        "id: paths\nnamespace: dev\ninputs:\n  - id: greeting\n    type: STRING\n    defaults: hello\n"
        "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: '{{ inputs.greeting }}, {{ flow.id }}'\n"
        "  - id: b\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: 'task {{ task.id }} of {{ flow.namespace }}'\n"
    )
    home = str(tmp_path / "home")
    subprocess.run([sys.executable, "-m", "kestractl", "--home", home, "flow", "deploy", str(flow)], check=True)
    code = (
        "import sys; from kestractl.cli.app import main\n"
        f"try: main(['--home', {home!r}, 'execute', 'dev', 'paths', '--input', 'greeting=hey'])\n"
        "except SystemExit as exit: print('exit', exit.code, file=sys.stderr)\n"
        "print('jinja2:', 'jinja2' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.splitlines()[-2:] == ["exit 0", "jinja2: False"], done.stderr


def test_docs_architecture_lists_the_layers_this_test_enforces() -> None:
    """docs/architecture.md's layer table names each room at the layer LAYERS gives it (`name*` covers a prefix)."""
    import re

    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    documented: dict[str, int] = {}
    for number, rooms in re.findall(r"^\| (\d) \| (.+?) \|", page, re.M):
        for name in re.findall(r"`([\w.*]+)/?`", rooms):
            documented[name] = int(number)

    def documented_layer(room: str) -> int | None:
        for name, number in documented.items():
            if name == room or (name.endswith("*") and room.startswith(name[:-1])):
                return number
        return None

    assert {room: documented_layer(room) for room in LAYERS} == LAYERS
