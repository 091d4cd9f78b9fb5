"""Documentation that cannot drift: the task reference in docs/flows.md is what the registry declares."""

from __future__ import annotations

from kestractl.tasks import reference, registry


def test_task_reference_matches_the_declarations() -> None:
    page = reference.PAGE.read_text()
    assert reference.render() in page, "docs/flows.md is stale: run `python -m kestractl.tasks.reference`"


def test_every_registered_type_and_property_is_documented() -> None:
    page = reference.PAGE.read_text()
    for name, cls in registry.all_types().items():
        if "$" in name:  # ForEachItem's hidden children
            continue
        assert f"`{name}`" in page, name
        section = page.split(f"### `{cls.type_name}`", 1)[1].split("\n### ", 1)[0]
        for prop in cls.all_properties():
            assert f"| `{prop}` |" in section, f"{cls.type_name}.{prop}"
