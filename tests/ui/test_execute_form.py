"""The execute form: a control per input type, `dependsOn` re-evaluated by Kestra's validate endpoint, its
messages at the field, labels, a FILE upload, and the new execution opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import wait_for
from tests.ui.conftest import Ui, needs_chromium, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
FLOW = f"""
id: form
namespace: dev.ui
inputs:
  - id: upload
    type: FILE
  - id: count
    type: INT
    max: 10
    defaults: 3
  - id: flag
    type: BOOLEAN
    defaults: false
  - id: color
    type: SELECT
    values: [red, green, blue]
    defaults: red
  - id: shade
    type: SELECT
    dependsOn:
      inputs: [color]
      condition: "{{{{ inputs.color != 'red' }}}}"
    expression: "{{{{ inputs.color == 'blue' ? ['navy', 'sky'] : ['lime', 'olive'] }}}}"
  - id: when
    type: DATETIME
  - id: payload
    type: JSON
  - id: token
    type: SECRET
  - id: evil
    type: STRING
    required: false
    description: "{EVIL}"
    defaults: "<img src=x onerror=alert(3)>"
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ inputs.count }}}}"
"""
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_validate_answers_each_input_in_kestras_shape(ui: Ui) -> None:
    ui.deploy(FLOW)
    status, body = ui.call("POST", "/api/v1/executions/dev.ui/form/validate", "color=blue&count=99&token=s3", FORM)
    assert status == 200 and (body["id"], body["namespace"]) == ("form", "dev.ui")
    by_id = {item["input"]["id"]: item for item in body["inputs"]}
    assert set(by_id["count"]) == {"input", "value", "enabled", "isDefault", "errors"}
    message = "Invalid input for `count`, it must be less than `10`, but received `99`"
    assert by_id["count"]["errors"] == [{"message": message}]
    assert by_id["shade"]["enabled"] and by_id["shade"]["input"]["values"] == ["navy", "sky"]
    assert by_id["flag"] == {**by_id["flag"], "value": False, "isDefault": True, "errors": []}
    assert by_id["token"]["value"] == "******"  # a secret is never echoed
    status, body = ui.call("POST", "/api/v1/executions/dev.ui/form/validate", "upload=/etc/passwd", FORM)
    upload = next(item for item in body["inputs"] if item["input"]["id"] == "upload")
    assert "missing required input" in upload["errors"][0]["message"]  # a server path never names a file
    assert not next(item for item in body["inputs"] if item["input"]["id"] == "shade")["enabled"]


@needs_chromium
def test_run_a_flow_from_the_form_with_a_file_and_typed_inputs(ui: Ui, page: Page) -> None:
    ui.deploy(FLOW)
    page.goto(ui.url("/ui/flows/edit/dev.ui/form/execute"))
    shade = page.locator(".input-field[data-input-id=shade]")
    assert page.get_by_label("count").input_value() == "3" and shade.is_hidden()
    assert EVIL in page.locator("[data-input-id=evil] .input-description").inner_text()
    assert page.locator("[data-input-id=evil] input").input_value() == "<img src=x onerror=alert(3)>"
    page.locator("[data-input-id=upload] input").set_input_files(
        files=[{"name": "data.txt", "mimeType": "text/plain", "buffer": b"uploaded bytes"}]
    )
    page.get_by_label("count").fill("99")
    page.locator("[data-input-id=count] .input-error", has_text="it must be less than `10`").wait_for()
    page.get_by_label("count").fill("7")
    page.locator("[data-input-id=flag] input[type=checkbox]").check()
    page.locator("[data-input-id=color] select").select_option("green")
    shade.wait_for()
    page.locator("[data-input-id=shade] option[value=lime]").wait_for(state="attached")
    page.locator("[data-input-id=color] select").select_option("blue")
    page.locator("[data-input-id=shade] option[value=sky]").wait_for(state="attached")
    page.locator("[data-input-id=shade] select").select_option("sky")
    page.locator("[data-input-id=when] input").fill("2024-05-01T10:30:15")
    page.locator("[data-input-id=payload] textarea").fill('{"a": [1, 2]}')
    page.locator("[data-input-id=token] input").fill("s3cret")
    page.get_by_role("button", name="Add a label").click()
    page.get_by_label("Key").fill("team")
    page.get_by_label("Value", exact=True).fill("data")
    screenshot(page, "execute-form")
    expected_when = page.evaluate("new Date('2024-05-01T10:30:15').toISOString()")
    page.get_by_role("button", name="Execute", exact=True).click()
    page.wait_for_url("**/ui/executions/dev.ui/form/*")
    execution_id = page.url.rsplit("/", 1)[-1]
    status, execution = ui.call("GET", f"/api/v1/executions/{execution_id}")
    inputs = execution["inputs"]
    assert status == 200 and {"key": "team", "value": "data"} in execution["labels"]
    assert (inputs["count"], inputs["flag"], inputs["color"], inputs["shade"]) == (7, True, "blue", "sky")
    assert inputs["when"] == expected_when.replace(".000Z", "Z") and inputs["payload"] == {"a": [1, 2]}
    assert inputs["token"] != "s3cret" and inputs["evil"] == "<img src=x onerror=alert(3)>"
    status, data = ui.call("GET", f"/api/v1/executions/{execution_id}/file?path={inputs['upload']}")
    assert status == 200 and data == "uploaded bytes"
    wait_for(lambda: ui.call("GET", f"/api/v1/executions/{execution_id}")[1]["state"]["current"] == "SUCCESS")


@needs_chromium
def test_a_refused_execution_puts_kestras_message_on_its_field(ui: Ui, page: Page) -> None:
    ui.deploy(FLOW.replace("type: FILE", "type: FILE\n    required: false").replace("type: SECRET", "type: STRING"))
    page.goto(ui.url("/ui/flows/edit/dev.ui/form/execute"))
    page.get_by_label("count").fill("12")
    page.get_by_role("button", name="Execute", exact=True).click()
    error = page.locator("[data-input-id=count] .input-error")
    error.wait_for()
    assert "Invalid input for `count`, it must be less than `10`, but received `12`" in error.inner_text()
    assert page.url.endswith("/execute") and page.locator("#notice.bad").is_visible()
    assert page.locator("[data-input-id=when] .input-error", has_text="missing required input").is_visible()


MORE = """
id: more
namespace: dev.ui
inputs:
  - id: tags
    type: MULTISELECT
    values: [a, b, c]
    allowCustomValue: true
  - id: items
    type: ARRAY
    itemType: INT
    defaults: [1, 2]
  - id: day
    type: DATE
  - id: at
    type: TIME
  - id: wait
    type: DURATION
  - id: optional
    type: BOOLEAN
    required: false
  - id: mail
    type: EMAIL
  - id: config
    type: YAML
    defaults:
      key: value
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def test_each_input_type_gets_its_control(ui: Ui) -> None:
    ui.deploy(MORE)
    status, html = ui.call("GET", "/ui/flows/edit/dev.ui/more/execute")
    assert status == 200
    for expected in ('type="date"', 'type="time"', 'placeholder="PT1H"', 'type="email"', "multiple", "(not set)"):
        assert expected in html, expected
    assert ">1\n2</textarea>" in html and "key: value" in html  # ARRAY one per line, YAML as YAML


@needs_chromium
def test_lists_dates_and_an_unset_boolean_reach_the_execution(ui: Ui, page: Page) -> None:
    ui.deploy(MORE)
    page.goto(ui.url("/ui/flows/edit/dev.ui/more/execute"))
    page.locator("[data-input-id=tags] select").select_option(["a", "c"])
    page.get_by_label("Other values").fill("z")
    page.locator("[data-input-id=items] textarea").fill("3\n4\n")
    page.locator("[data-input-id=day] input").fill("2024-02-29")
    page.locator("[data-input-id=at] input").fill("13:45")
    page.locator("[data-input-id=wait] input").fill("PT90M")
    page.locator("[data-input-id=mail] input").fill("me@example.com")
    page.get_by_role("button", name="Execute", exact=True).click()
    page.wait_for_url("**/ui/executions/dev.ui/more/*")
    inputs = ui.call("GET", f"/api/v1/executions/{page.url.rsplit('/', 1)[-1]}")[1]["inputs"]
    assert (inputs["tags"], inputs["items"], inputs["day"], inputs["at"]) == (
        ["a", "c", "z"],
        [3, 4],
        "2024-02-29",
        "13:45:00",
    )
    assert (inputs["wait"], inputs["mail"], inputs["config"]) == ("PT1H30M", "me@example.com", {"key": "value"})
    assert inputs["optional"] is None  # left unset, not false
