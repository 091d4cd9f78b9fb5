"""Templates of literal text and `{{ dotted.path }}`s are read without compiling Jinja, and give exactly what
Jinja gives: the same text, or the same error."""

from __future__ import annotations

from typing import Any

import pytest

from kestractl import expressions
from kestractl.errors import ExpressionError
from kestractl.expressions import PathsTemplate, render

VARIABLES: dict[str, Any] = {
    "flow": {"id": "f", "namespace": "dev"},
    "outputs": {"t1": {"value": 3.0, "items": [1, 2], "map": {"a": None}, "values": "key"}},
    "inputs": {"flag": True, "none": None, "text": "x" * 3},
    "task": {"id": "t2"},
    "now": lambda: "called",
    "words": "a string",
}


def jinja_text(template: str) -> str:
    """What the full way gives: Jinja's text, or the message of the error `render` makes of its failure."""
    try:
        return "".join(expressions._jinja(template).generate(VARIABLES))
    except Exception as error:  # every failure, as `render` reports it
        return expressions._failure(template, error).message


def rendered_text(template: str) -> str:
    try:
        return render(template, VARIABLES)
    except ExpressionError as error:
        return error.message


@pytest.mark.parametrize(
    "template",
    [
        "task {{ task.id }} of {{ flow.namespace }}.{{flow.id}}",
        "{{ outputs.t1.value }} {{ outputs.t1.items }} {{ outputs.t1.map }} {{ inputs.flag }} [{{ inputs.none }}]",
        "{{ outputs.t1.values }} {{\n  flow.id\n}}\n",
        "}} {{ flow.id }}}} %} #}",
        "{{ now }}",
        "{{ missing.key }}",
        "{{ flow.missing }}",
        "{{ inputs.none.key }}",
        "{{ outputs.t1.items.size }}",
    ],
)
def test_a_paths_template_gives_what_jinja_gives(template: str) -> None:
    assert PathsTemplate.of(template) is not None
    assert rendered_text(template) == jinja_text(template)


@pytest.mark.parametrize(
    "template",
    [
        "{{ flow.id | upper }}",
        "{{- flow.id }}",
        "{{ flow.id -}}",
        "{{{ flow.id }}",
        "{% if true %}{{ flow.id }}{% endif %}",
        "{# note #}{{ flow.id }}",
        "{{ null }}",
        "{{ true }}",
        "{{ loop.index }}",
        "{{ contains }}",
        "line\r\n{{ flow.id }}",
        "{{ flow['id'] }}",
        "{{ outputs.t-1.value }}",
    ],
)
def test_any_other_shape_is_compiled_by_jinja(template: str) -> None:
    assert PathsTemplate.of(template) is None


def test_a_paths_template_compiles_nothing() -> None:
    template = "compiled once {{ task.id }} 91c2"
    compiled = expressions._compile(template)
    assert render(template, VARIABLES) == "compiled once t2 91c2"
    assert isinstance(compiled, PathsTemplate) and "_jinja" not in vars(compiled)


def test_a_jinja_render_copies_no_chained_globals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every render copies the template's globals into its context: a plain map, not Jinja's `ChainMap` to the
    environment's, read key by key (half of what a short template like `read(x) | trim` cost)."""
    import collections

    reads = [0]
    getitem = collections.ChainMap.__getitem__

    def counted(self: collections.ChainMap[str, Any], key: str) -> Any:
        reads[0] += 1
        return getitem(self, key)

    template = "{{ words | upper }} {{ range(1, 2) | length }} {{ now() }}"
    assert render(template, VARIABLES) == "A STRING 2 called"  # the globals are still there (`range`)
    monkeypatch.setattr(collections.ChainMap, "__getitem__", counted)
    assert render(template, VARIABLES) == "A STRING 2 called"
    assert reads[0] == 0
