"""Flow YAML → Flow: aliases, defaults, labels, triggers, and every problem reported with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestractl.errors import ValidationError
from kestractl.parser import parse_flow, split_documents
from kestractl.tasks import registry


def problems(text: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_flow(text, "f.yaml")
    return info.value.problems


BASE = "id: f\nnamespace: dev\ntasks:\n"
LOG = "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


def test_legacy_and_current_task_names_resolve_to_the_same_class() -> None:
    pairs = [
        ("io.kestra.core.tasks.log.Log", "io.kestra.plugin.core.log.Log"),
        ("io.kestra.core.tasks.debugs.Return", "io.kestra.plugin.core.debug.Return"),
        ("io.kestra.core.tasks.flows.Flow", "io.kestra.plugin.core.flow.Subflow"),
        ("io.kestra.core.tasks.flows.EachSequential", "io.kestra.plugin.core.flow.EachSequential"),
        ("io.kestra.core.tasks.executions.Fail", "io.kestra.plugin.core.execution.Fail"),
    ]
    for legacy, current in pairs:
        assert registry.resolve(legacy) is registry.resolve(current) is not None


def test_a_valid_flow_parses_with_labels_inputs_variables_and_outputs() -> None:
    flow = parse_flow(
        BASE + LOG + "labels:\n  team: data\n  on: yes\ninputs:\n  - name: x\n    type: INT\n    defaults: 3\n"
        "variables:\n  v: 1\noutputs:\n  - id: o\n    type: STRING\n    value: '{{ inputs.x }}'\n"
    )
    assert (flow.namespace, flow.id) == ("dev", "f")
    assert flow.labels == [("team", "data"), ("on", "yes")]
    assert flow.inputs[0].id == "x" and flow.inputs[0].defaults == 3
    assert flow.variables == {"v": 1}
    assert flow.outputs[0].id == "o"


def test_labels_as_a_list_of_key_values() -> None:
    flow = parse_flow(BASE + LOG + "labels:\n  - key: a\n    value: b\n")
    assert flow.labels == [("a", "b")]


def test_plugin_defaults_fill_missing_properties_unless_forced() -> None:
    flow = parse_flow(
        BASE + "  - id: a\n    type: io.kestra.core.tasks.log.Log\n"
        "  - id: b\n    type: io.kestra.plugin.core.log.Log\n    message: own\n    level: INFO\n"
        "taskDefaults:\n  - type: io.kestra.plugin.core.log.Log\n    values:\n      message: default\n"
        "  - type: io.kestra.plugin.core.log\n    forced: true\n    values:\n      level: WARN\n"
    )
    first, second = flow.tasks
    assert first.spec["message"] == "default" and first.spec["level"] == "WARN"
    assert second.spec["message"] == "own" and second.spec["level"] == "WARN"


def test_every_problem_is_reported_with_its_line() -> None:
    found = problems(
        "id: bad id\nnamespace: Dev\nunknown: 1\ntasks:\n"
        "  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
        "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n"
        "  - type: io.kestra.plugin.core.log.Log\n    message: x\n"
        "  - id: c\n    type: com.example.Nope\n"
        "  - id: d\n    type: io.kestra.plugin.core.debug.Return\n    timeout: soon\n"
    )
    assert "f.yaml:1: id: `bad id` does not match ^[a-zA-Z0-9][a-zA-Z0-9._-]*$" in found
    assert "f.yaml:2: namespace: `Dev` does not match ^[a-z0-9][a-z0-9._-]*$" in found
    assert 'f.yaml:3: unknown: Unrecognized field "unknown" (Flow), not marked as ignorable' in found
    assert "f.yaml:5: tasks[0].message: required" in found
    assert "f.yaml:7: tasks[1].id: duplicate task id `a` (first used at tasks[0])" in found
    assert "f.yaml:10: tasks[2].id: required" in found
    assert "f.yaml:13: tasks[3].type: unknown task type `com.example.Nope`: no installed plugin provides it" in found
    assert any(p.startswith("f.yaml:16: tasks[4].timeout:") for p in found)


def test_nested_task_problems_carry_their_full_path() -> None:
    found = problems(
        BASE + "  - id: p\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n"
        "      - id: inner\n        type: io.kestra.plugin.core.flow.If\n        condition: 'true'\n"
        "        then:\n          - id: deep\n            type: nope\n"
    )
    assert found == [
        "f.yaml:12: tasks[0].tasks[0].then[0].type: unknown task type `nope`: no installed plugin provides it"
    ]


def test_missing_tasks_and_empty_document() -> None:
    assert "f.yaml:1: tasks: required (a non-empty list of tasks)" in problems("id: f\nnamespace: dev\n")
    assert problems("") == ["f.yaml: a flow must be a YAML mapping with id, namespace and tasks"]


def test_yaml_syntax_errors_and_tabs_name_the_line() -> None:
    assert problems(BASE + "  - id: [\n")[0].startswith("f.yaml:5:")
    assert problems(BASE + "\t- id: a\n") == [
        "f.yaml:4: a tab character is not allowed in YAML indentation; use spaces"
    ]


def test_retry_and_input_problems() -> None:
    found = problems(
        BASE + "  - id: a\n    type: io.kestra.plugin.core.debug.Return\n    retry:\n      type: sometimes\n"
        "inputs:\n  - id: x\n    type: STRNG\n"
    )
    assert any("tasks[0].retry.type" in p for p in found)
    assert any("inputs[0].type" in p and "STRNG" in p for p in found)


def test_triggers_are_validated_now_and_kept_for_the_server() -> None:
    flow = parse_flow(
        BASE + LOG + "triggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '*/5 * * * *'\n"
    )
    assert flow.triggers[0]["cron"] == "*/5 * * * *"
    found = problems(
        BASE + LOG + "triggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n"
        "    cron: 'every day'\n  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n"
    )
    assert any("triggers[0].cron" in p for p in found)
    assert any("triggers[1].key: required" in p for p in found)


def test_dag_dependencies_must_exist_and_not_cycle() -> None:
    dag = (
        BASE + "  - id: g\n    type: io.kestra.plugin.core.flow.Dag\n    tasks:\n"
        "      - task:\n          id: a\n          type: io.kestra.plugin.core.debug.Return\n"
        "        dependsOn: [b]\n"
        "      - task:\n          id: b\n          type: io.kestra.plugin.core.debug.Return\n"
        "        dependsOn: [{dep}]\n"
    )
    assert any("cycle" in p for p in problems(dag.format(dep="a")))
    assert any("unknown task `zz`" in p for p in problems(dag.format(dep="zz")))


def test_multi_document_files_split_on_dashes() -> None:
    assert len(split_documents(BASE + LOG + "---\n" + BASE.replace("id: f", "id: g") + LOG)) == 2
    assert split_documents("# only a comment\n---\n" + BASE + LOG) == [BASE + LOG]


def test_labels_take_one_shape_everywhere_and_print_like_java() -> None:
    """Flows, Subflow/ForEachItem tasks and triggers share `label_pairs`: a map or a list of key/value."""
    from kestractl.model import label_pairs, label_text

    assert label_pairs({"team": "data", "prod": True}) == [("team", "data"), ("prod", True)]
    assert label_pairs([{"key": "team", "value": "data"}]) == [("team", "data")]
    assert label_pairs(None) == [] and label_pairs("team=data") is None and label_pairs([{"value": 1}]) is None
    assert [label_text(v) for v in (True, None, 3)] == ["true", "", "3"]
    assert parse_flow(BASE + LOG + "labels:\n  prod: true\n").labels == [("prod", "true")]


def test_libyaml_and_the_python_loader_read_every_flow_alike() -> None:
    """The fast path (libyaml) must give the same data and line numbers as the loader whose messages we keep."""
    import yaml

    from kestractl.parser import _FastLoader, _Loader

    def lines(node: object) -> object:
        if isinstance(node, dict):
            return (getattr(node, "line", None), node.key_lines, {k: lines(v) for k, v in node.items()})
        if isinstance(node, list):
            return (getattr(node, "line", None), [lines(v) for v in node])
        return node

    root = Path(__file__).parent.parent
    sources = [*root.glob("sample_flows/*.yaml"), *root.glob("tests/flows/*.yaml")]
    assert len(sources) > 10
    for path in sources:
        for text in split_documents(path.read_text()):
            assert lines(yaml.load(text, Loader=_FastLoader)) == lines(yaml.load(text, Loader=_Loader)), path


def test_unknown_properties_are_refused_where_kestra_refuses_them() -> None:
    found = problems(
        "id: f\nnamespace: dev\ninputs:\n  - id: n\n    type: INT\n    maxi: 3\n"
        "triggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n    crons: x\n"
        "tasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n    invalid: y\n"
    )
    assert sorted(found) == [
        'f.yaml:16: tasks[0].invalid: Unrecognized field "invalid" (io.kestra.plugin.core.debug.Return), '
        "not marked as ignorable",
        'f.yaml:4: inputs[0].maxi: Unrecognized field "maxi" (INT input), not marked as ignorable',
        'f.yaml:8: triggers[0].crons: Unrecognized field "crons" (io.kestra.plugin.core.trigger.Schedule), '
        "not marked as ignorable",
    ]


def test_plugin_defaults_may_carry_properties_other_types_do_not_have() -> None:
    flow = parse_flow(
        BASE + LOG + "pluginDefaults:\n  - type: io.kestra.plugin.core\n    values:\n      format: unused\n", "f.yaml"
    )
    assert flow.tasks[0].spec["message"] == "hi"


def test_an_unknown_plugin_type_names_its_kestra_plugin() -> None:
    found = problems(BASE + "  - id: up\n    type: io.kestra.plugin.aws.s3.Upload\n")
    assert found == [
        "f.yaml:5: tasks[0].type: unknown task type `io.kestra.plugin.aws.s3.Upload`: "
        "it belongs to Kestra's plugin-aws, which is not installed"
    ]


def test_flows_kestra_refuses_as_a_whole_are_refused() -> None:
    worker_group = BASE + LOG + "    workerGroup:\n      key: gpu\n"
    assert problems(worker_group) == [
        "f.yaml:7: tasks[0].workerGroup: Worker Group is an Enterprise Edition functionality"
    ]
    recursive = BASE + "  - id: me\n    type: io.kestra.plugin.core.flow.Subflow\n    namespace: dev\n    flowId: f\n"
    assert problems(recursive) == ["f.yaml: tasks.me: Recursive call to flow [dev.f]"]
    switch = BASE + "  - id: s\n    type: io.kestra.plugin.core.flow.Switch\n    value: x\n    cases: {}\n"
    assert problems(switch) == ["f.yaml:7: tasks[0].cases: No task defined, neither cases or default have any tasks"]
    pause = BASE + "  - id: wd\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n    tasks:\n"
    pause += "      - id: p\n        type: io.kestra.plugin.core.flow.Pause\n"
    assert problems(pause) == [
        "f.yaml:6: tasks[0].tasks[0]: Only runnable tasks are allowed as children of a WorkingDirectory task"
    ]


def test_listeners_must_have_tasks_and_known_keys() -> None:
    found = problems(
        BASE + LOG + "listeners:\n  - tasks: []\n  - tasks:\n      - id: b\n        type: nope\n    when: x\n"
    )
    assert found == [
        "f.yaml:8: listeners[0].tasks: required (a non-empty list of tasks)",
        'f.yaml:12: listeners[1].when: Unrecognized field "when" (Listener), not marked as ignorable',
        "f.yaml:11: listeners[1].tasks[0].type: unknown task type `nope`: no installed plugin provides it",
    ]


def test_a_key_written_twice_in_one_map_is_refused() -> None:
    found = problems(BASE + LOG + "    message: again\n")
    assert found == ["f.yaml:7: duplicate key `message`"]


def test_a_key_merged_in_with_an_anchor_may_be_overridden() -> None:
    text = BASE + "  - &log\n    id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    text += "  - <<: *log\n    id: b\n    message: there\n"
    assert [t.spec["message"] for t in parse_flow(text, "f.yaml").tasks] == ["hi", "there"]


def test_concurrency_needs_a_limit_of_at_least_one_and_a_known_behavior() -> None:
    found = problems(BASE + LOG + "concurrency:\n  limit: 0\n  behavior: WAIT\n  max: 2\n")
    assert sorted(found) == [
        "f.yaml:7: concurrency.behavior: must be one of QUEUE, CANCEL, FAIL",
        "f.yaml:7: concurrency.limit: must be a whole number >= 1, not `0`",
        'f.yaml:7: concurrency.max: Unrecognized field "max" (Concurrency), not marked as ignorable',
    ]
    flow = parse_flow(BASE + LOG + "concurrency:\n  limit: 2\n", "f.yaml")
    assert flow.concurrency == {"limit": 2, "behavior": "QUEUE"}


@pytest.mark.parametrize("trigger_id", ['"bad id!"', "-dash", "[a]", "{a: 1}"])
def test_a_trigger_id_is_held_to_kestras_pattern(trigger_id: str) -> None:
    """AbstractTrigger's id has the task id's pattern; a list or map there is named, not a stray TypeError."""
    trigger = f"triggers:\n  - id: {trigger_id}\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n"
    assert problems(BASE + LOG + trigger)[0].startswith("f.yaml:8: triggers[0].id: `")


@pytest.mark.parametrize("tagged", ["!!map ''", "!!seq ''", "!!map [a]", "!!seq {a: 1}"])
def test_a_map_or_list_tag_on_the_wrong_kind_of_node_is_refused(tagged: str) -> None:
    """PyYAML's own constructors refuse these; the parser's line-keeping ones read `!!map ''` as an empty map."""
    assert problems(BASE + LOG + f"variables:\n  x: {tagged}\n")[0].startswith("f.yaml:8: expected a ")
