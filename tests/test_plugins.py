"""The plugin API, proven with the example plugin installed from examples/plugin-hello (as `./test` does) and
with plugins written into a temporary folder on `PYTHONPATH`, found by their entry points as pip would find them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kestractl.errors import PluginError, ValidationError
from kestractl.plugin import Condition, ConditionContext, PollContext, PollingTrigger, Prop, RunnableTask, register
from kestractl.server.app import StandaloneServer
from kestractl.tasks import registry
from kestractl.tasks.properties import coerce, problems
from tests.conftest import Cli, executions_of, runs, state, wait_for

GREET = """id: greet
namespace: dev
inputs:
  - id: times
    type: INT
    defaults: 2
tasks:
  - id: hello
    type: io.kestra.plugin.hello.Greet
    name: "{{ flow.id }}"
    times: "{{ inputs.times }}"
    style: LOUD
"""


def deploy_text(cli: Cli, tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    result = cli("flow", "deploy", str(path))
    return result.exit_code, result.stderr


def test_a_flow_runs_a_third_party_task(cli: Cli, tmp_path: Path) -> None:
    assert deploy_text(cli, tmp_path, GREET)[0] == 0
    code, execution = cli.execute("dev", "greet", "--input", "times=3")
    assert (code, state(execution)) == (0, "SUCCESS")
    assert runs(execution, "hello")[0]["outputs"] == {"greeting": "HELLO, GREET!", "count": 3}
    logs = cli("executions", "logs", execution["id"]).stdout
    assert logs.count("HELLO, GREET!") == 3


@pytest.mark.parametrize(
    ("properties", "problem"),
    [
        ("    times: 2\n", "tasks[0].name: required"),
        ("    name: x\n    times: often\n", "tasks[0].times: expected an integer, not `often`"),
        ("    name: x\n    style: QUIET\n", "tasks[0].style: must be one of PLAIN, LOUD, not `QUIET`"),
        ("    name: [a, b]\n", "tasks[0].name: expected a string, not `['a', 'b']`"),
        ("    name: x\n    colour: red\n", 'tasks[0].colour: Unrecognized field "colour"'),
    ],
)
def test_the_declaration_validates_at_deploy(cli: Cli, tmp_path: Path, properties: str, problem: str) -> None:
    text = "id: bad\nnamespace: dev\ntasks:\n  - id: hello\n    type: io.kestra.plugin.hello.Greet\n" + properties
    code, stderr = deploy_text(cli, tmp_path, text)
    assert code != 0 and problem in stderr, stderr
    assert "Traceback" not in stderr
    assert cli("flow", "list").stdout.strip() == "" or "bad" not in cli("flow", "list").stdout


def test_a_rendered_value_of_the_wrong_kind_fails_the_task_with_one_line(cli: Cli, tmp_path: Path) -> None:
    deploy_text(cli, tmp_path, GREET.replace("type: INT", "type: STRING").replace("defaults: 2", "defaults: lots"))
    code, execution = cli.execute("dev", "greet")
    assert (code, state(execution)) == (1, "FAILED")
    logs = cli("executions", "logs", execution["id"]).stdout
    assert "times: expected an integer, not `lots`" in logs


def test_plugins_list_names_the_package_and_its_version(cli: Cli) -> None:
    found = json.loads(cli("plugins", "list", "--json").stdout)
    rows = {row["type"]: row for row in found}
    assert rows["io.kestra.plugin.hello.Greet"] == {
        "type": "io.kestra.plugin.hello.Greet",
        "kind": "task",
        "package": "kestractl-plugin-hello",
        "version": "0.1.0",
    }
    assert rows["io.kestra.plugin.core.log.Log"]["package"] == "kestractl"
    assert rows["io.kestra.plugin.core.http.Trigger"]["kind"] == "trigger"
    assert rows["io.kestra.plugin.jdbc.postgresql.Trigger"]["kind"] == "trigger"


def test_plugins_doc_is_generated_from_the_declaration(cli: Cli) -> None:
    page = cli("plugins", "doc", "io.kestra.plugin.hello.Greet").stdout
    assert "| `times` | integer |  | How many times to greet. Default: `1`. |" in page
    assert "| `name` | string | yes | Who to greet. |" in page
    assert "| `count` | How many times it was logged. |" in page
    assert "    type: io.kestra.plugin.hello.Greet\n    name:" in page
    trigger = cli("plugins", "doc", "io.kestra.plugin.core.http.Trigger").stdout
    assert "| `interval` | duration (static) |  | The interval between two polls. Default: `PT60S`. |" in trigger
    assert "triggers:\n  - id: trigger\n    type: io.kestra.plugin.core.http.Trigger\n    uri:" in trigger
    missing = cli("plugins", "doc", "io.kestra.plugin.aws.s3.Upload")
    assert missing.exit_code != 0
    assert "plugin-aws, which is not installed" in missing.stderr


def test_two_classes_registering_one_type_is_an_error_naming_both() -> None:
    class Twin(RunnableTask):
        type_name = "io.kestra.plugin.core.log.Log"

    from kestractl.tasks import registry

    registry.resolve("io.kestra.plugin.core.log.Log")
    with pytest.raises(PluginError, match=r"registered twice: by kestractl\.tasks\.core\.Log and by .*Twin"):
        register(Twin)
    assert registry.resolve("io.kestra.plugin.core.log.Log").__module__ == "kestractl.tasks.core"  # type: ignore[union-attr]


def _plugin(site: Path, name: str, source: str) -> None:
    """A plugin as pip installs one: its module, and a dist-info folder naming it in the entry-point group."""
    site.mkdir(exist_ok=True)
    (site / f"{name}.py").write_text(source)
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[kestractl.plugins]\n{name} = {name}\n")


def _validate(tmp_path: Path, site: Path, task_type: str) -> subprocess.CompletedProcess[str]:
    flow = tmp_path / "f.yaml"
    flow.write_text(f"id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: {task_type}\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    command = [sys.executable, "-m", "kestractl", "--home", str(tmp_path / "h"), "flow", "validate", str(flow)]
    return subprocess.run(command, capture_output=True, text=True, env=env)


def test_a_broken_plugin_is_one_line_naming_it(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _plugin(site, "broken_plugin", "raise ImportError('needs libfoo')\n")
    done = _validate(tmp_path, site, "io.kestra.plugin.foo.Bar")
    assert done.returncode != 0
    assert "plugin `broken_plugin` (broken_plugin) cannot be loaded: needs libfoo" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_plugin_that_claims_a_taken_type_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    source = (
        "from kestractl.plugin import RunnableTask, register\n"
        "@register\nclass Greet(RunnableTask):\n    type_name = 'io.kestra.plugin.hello.Greet'\n"
    )
    _plugin(site, "aaa_impostor", source)
    done = _validate(tmp_path, site, "io.kestra.plugin.other.Thing")
    assert "registered twice" in done.stderr and "kestractl_hello.Greet" in done.stderr, done.stderr
    assert "aaa_impostor.Greet" in done.stderr


HEAVY = ("pyarrow", "openpyxl", "fastavro", "psycopg", "pymysql", "aiosmtpd", "smtplib", "httpx")


def test_plugins_are_imported_only_for_a_type_kestractl_lacks(tmp_path: Path) -> None:
    """`execute` of a core flow never reads the entry points nor imports a plugin (ours included) or a library
    they use; a plugin's type loads the plugin modules, and still none of those libraries until a task runs."""
    (tmp_path / "core.yaml").write_text(
        "id: core\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    )
    (tmp_path / "greet.yaml").write_text(GREET)
    code = (
        "import sys; from kestractl.cli.app import main\n"
        f"home = {str(tmp_path / 'home')!r}\n"
        "try: main(['--home', home, *sys.argv[1:]])\n"
        "except SystemExit: pass\n"
        "plugins = any(m == 'kestractl_hello' or m.startswith('kestractl.plugins') for m in sys.modules)\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('loaded:', plugins, 'importlib.metadata' in sys.modules, *heavy, file=sys.stderr)"
    )

    def loaded(*argv: str) -> str:
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
        return done.stderr.splitlines()[-1]

    assert loaded("flow", "deploy", str(tmp_path / "core.yaml"), str(tmp_path / "greet.yaml")) == "loaded: True True"
    assert loaded("execute", "dev", "core") == "loaded: False False"
    assert loaded("--version") == "loaded: False False"
    assert loaded("execute", "dev", "greet") == "loaded: True True"


def test_every_type_declares_each_property_as_a_prop() -> None:
    """The issue's rule: each property declared once, in full (a bare description says no type, no default)."""
    bare = [
        f"{name} ({klass.__name__}).{key}"
        for name, kind in registry.every_type().items()
        for klass in kind.__mro__
        for key, value in vars(klass).get("properties", {}).items()
        if not isinstance(value, Prop)
    ]
    assert bare == []


def test_prop_checks_and_converts_as_jackson_coerces() -> None:
    declared = {
        "n": Prop("a count", type="integer"),
        "f": Prop("a ratio", type="number"),
        "b": Prop("a flag", type="boolean"),
        "d": Prop("a wait", type="duration"),
        "s": Prop("a name", type="string", required=True),
        "fixed": Prop("static", type="integer", dynamic=False),
    }
    ok = {"n": "5", "f": "1.5e3", "b": "TRUE", "d": "PT1M", "s": 5, "fixed": 3}
    assert problems(ok, declared) == []
    assert problems({"s": "x", "n": "{{ x }}", "fixed": "{{ x }}"}, declared) == [
        "fixed: expected an integer, not `{{ x }}`"
    ]
    assert problems({"b": "yes", "d": "1 minute"}, declared) == [
        "b: expected a boolean (true or false), not `yes`",
        "d: `1 minute` is not an ISO-8601 duration (e.g. PT30S)",
        "s: required",
    ]
    assert [coerce(k, declared[k], v) for k, v in ok.items()][:5] == [
        5,
        1500.0,
        True,
        coerce("d", declared["d"], "PT1M"),
        "5",
    ]
    with pytest.raises(ValueError, match="n: expected an integer, not `1.5`"):
        coerce("n", declared["n"], "1.5")
    with pytest.raises(ValueError, match="Prop type must be one of"):
        Prop("x", type="int")


class FileAppears(PollingTrigger):
    """A plugin's polling trigger: starts an execution once a file exists."""

    type_name = "io.kestra.plugin.test.FileAppears"
    properties = {**PollingTrigger.properties, "path": Prop("The file to wait for.", type="string", required=True)}
    outputs = {"size": "The file's size in bytes."}

    def poll(self, ctx: PollContext) -> dict[str, Any] | None:
        path = Path(self.prop(ctx, "path"))
        return {"size": path.stat().st_size} if path.exists() else None


register(FileAppears)

WATCH = """id: watch
namespace: dev
tasks:
  - id: seen
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.size }}}} bytes"
triggers:
  - id: file
    type: io.kestra.plugin.test.FileAppears
    path: "{path}"
    interval: PT0.1S
    stopAfter: [SUCCESS]
"""


def test_a_plugin_polling_trigger_is_validated_and_run_by_the_server(
    standalone: tuple[StandaloneServer, Path], tmp_path: Path
) -> None:
    server, flows = standalone
    target = tmp_path / "arrived.txt"
    bad = WATCH.replace('    path: "{path}"\n', "").replace("PT0.1S", "soon")
    assert parse_problems(bad) == [
        "triggers[0].interval: `soon` is not an ISO-8601 duration (e.g. PT30S)",
        "triggers[0].path: required",
    ]
    (flows / "watch.yaml").write_text(WATCH.format(path=target))
    time.sleep(0.5)
    assert executions_of(server, "watch") == []
    target.write_text("hello")
    done = wait_for(lambda: [e for e in executions_of(server, "watch") if e.state.current.is_terminated()])
    assert done[0].task_runs[0].outputs == {"value": "5 bytes"}
    assert done[0].trigger is not None and done[0].trigger["type"] == "io.kestra.plugin.test.FileAppears"


def parse_problems(text: str) -> list[str]:
    from kestractl.parser import parse_flow

    try:
        parse_flow(text, "f.yaml")
    except ValidationError as error:
        return [p.split(": ", 1)[1] for p in error.problems]
    return []


class UpstreamPrefix(Condition):
    """A plugin's condition: the upstream execution's flow id starts with a prefix."""

    type_name = "io.kestra.plugin.test.UpstreamPrefix"
    properties = {"prefix": Prop("The prefix.", type="string", required=True)}

    def test(self, ctx: ConditionContext) -> bool:
        return ctx.execution is not None and ctx.execution.flow_id.startswith(self.prop(ctx, "prefix"))


register(UpstreamPrefix)


def test_a_plugin_condition_is_validated_and_checked() -> None:
    from kestractl.model import Execution
    from kestractl.triggers.conditions import check

    trigger = "triggers:\n  - id: after\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
    flow = "id: f\nnamespace: dev\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    condition = "      - type: io.kestra.plugin.test.UpstreamPrefix\n"
    assert parse_problems(flow + trigger + condition) == ["triggers[0].conditions[0].prefix: required"]
    assert parse_problems(flow + trigger + condition + "        prefix: x\n        colour: red\n") == [
        'triggers[0].conditions[0].colour: Unrecognized field "colour" (io.kestra.plugin.test.UpstreamPrefix), '
        "not marked as ignorable"
    ]
    spec = {"type": UpstreamPrefix.type_name, "prefix": "{{ trigger.wanted }}"}
    context = ConditionContext(variables={"trigger": {"wanted": "etl-"}}, execution=Execution("e", "dev", "etl-a", 1))
    assert check(spec, context) is True
    context.execution = Execution("e", "dev", "report", 1)
    assert check(spec, context) is False


def test_plugins_doc_shows_a_condition_inside_a_trigger(cli: Cli) -> None:
    page = cli("plugins", "doc", UpstreamPrefix.type_name).stdout
    assert "    conditions:\n      - type: io.kestra.plugin.test.UpstreamPrefix\n        prefix:" in page


def test_every_type_has_a_doc_generated_from_its_declaration() -> None:
    from kestractl.tasks import reference, registry

    for name, cls in registry.every_type().items():
        page = reference.doc(cls)
        assert page.startswith(f"### `{cls.type_name}`"), name
        assert f"type: {cls.type_name}" in page, name
        for prop in cls.all_properties():
            assert f"| `{prop}` |" in page, f"{name}.{prop}"
