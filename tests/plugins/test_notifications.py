"""The notifications plugin against real services on 127.0.0.1: an HTTP sink that receives every chat's webhook
(the test reads the JSON each one sent) and an SMTP server (aiosmtpd) that receives the mails, over plain SMTP,
SMTPS and STARTTLS with a self-signed certificate made by the test. Flows run through the real CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, state
from tests.services.http_sink import HttpSink, http_sink  # noqa: F401
from tests.services.smtp_server import SmtpServer, free_port, smtp_server  # noqa: F401

N = "io.kestra.plugin.notifications"


def run_flow(cli: Cli, tmp_path: Path, text: str, *inputs: str) -> tuple[int, dict[str, Any]]:
    """Deploy `text` and execute it with `name=value` inputs."""
    flow_id = re.search(r"^id: (\S+)", text, re.M)
    assert flow_id
    path = tmp_path / f"{flow_id[1]}.yaml"
    path.write_text(text)
    deployed = cli("flow", "deploy", str(path))
    assert deployed.exit_code == 0, deployed.stderr
    return cli.execute("dev", flow_id[1], *[arg for name in inputs for arg in ("--input", name)])


def one_task(task_type: str, properties: str) -> str:
    return f"id: notify\nnamespace: dev\ntasks:\n  - id: send\n    type: {N}.{task_type}\n{properties}"


def logs(cli: Cli, execution: dict[str, Any]) -> str:
    return str(cli("executions", "logs", execution["id"]).stdout)


# ---- incoming webhooks ---------------------------------------------------------------------------------------------


def test_slack_incoming_webhook_posts_the_rendered_payload(cli: Cli, tmp_path: Path, http_sink: HttpSink) -> None:
    payload = '    payload: |\n      {"text": "Hello from {{ flow.id }}", "channel": "#ops"}\n'
    code, execution = run_flow(
        cli, tmp_path, one_task("slack.SlackIncomingWebhook", f"    url: {http_sink.url}/services/T/B/X\n{payload}")
    )
    assert (code, state(execution)) == (0, "SUCCESS")
    request = http_sink.only()
    assert (request.method, request.path) == ("POST", "/services/T/B/X")
    assert request.headers["content-type"] == "application/json"
    assert request.json == {"text": "Hello from notify", "channel": "#ops"}


def test_slack_message_text_in_markdown_is_sent_as_mrkdwn(cli: Cli, tmp_path: Path, http_sink: HttpSink) -> None:
    text = '    messageText: "**Done** __now__, see [the run](https://x.test/r)"\n'
    run_flow(cli, tmp_path, one_task("slack.SlackIncomingWebhook", f"    url: {http_sink.url}/hook\n{text}"))
    assert http_sink.only().json == {"text": "*Done* _now_, see <https://x.test/r|the run>"}


@pytest.mark.parametrize(
    ("task_type", "properties", "sent"),
    [
        ("discord.DiscordIncomingWebhook", '    payload: \'{"content": "hi {{ flow.id }}"}\'\n', {"content": "hi notify"}),
        ("teams.TeamsIncomingWebhook", '    payload: \'{"text": "hi"}\'\n', {"text": "hi"}),
        ("google.GoogleChatIncomingWebhook", '    payload: \'{"text": "hi"}\'\n', {"text": "hi"}),
        ("zulip.ZulipIncomingWebhook", '    payload: \'{"text": "hi"}\'\n', {"text": "hi"}),
        ("mattermost.MattermostIncomingWebhook", "    messageText: '**bold** stays Markdown'\n", {"text": "**bold** stays Markdown"}),
    ],
)
def test_each_incoming_webhook_posts_its_payload(
    cli: Cli, tmp_path: Path, http_sink: HttpSink, task_type: str, properties: str, sent: dict[str, Any]
) -> None:
    options = "    options:\n      headers:\n        X-Source: kestractl\n"
    code, execution = run_flow(cli, tmp_path, one_task(task_type, f"    url: {http_sink.url}/in\n{properties}{options}"))
    assert (code, state(execution)) == (0, "SUCCESS")
    request = http_sink.only()
    assert request.json == sent and request.headers["x-source"] == "kestractl"


def test_telegram_send_calls_the_bot_api_at_the_overridden_endpoint(
    cli: Cli, tmp_path: Path, http_sink: HttpSink
) -> None:
    properties = (
        f"    endpointOverride: {http_sink.url}\n    token: 123:abc\n    channel: '@ops'\n"
        "    payload: 'Run {{ execution.id }} done'\n    parseMode: MARKDOWNV2\n"
    )
    code, execution = run_flow(cli, tmp_path, one_task("telegram.TelegramSend", properties))
    assert (code, state(execution)) == (0, "SUCCESS")
    request = http_sink.only()
    assert request.path == "/bot123:abc/sendMessage"
    assert request.json == {"chat_id": "@ops", "text": f"Run {execution['id']} done", "parse_mode": "MarkdownV2"}


# ---- failures -------------------------------------------------------------------------------------------------------


def test_a_4xx_answer_fails_the_task_with_one_line_naming_host_and_status(
    cli: Cli, tmp_path: Path, http_sink: HttpSink
) -> None:
    http_sink.answer("/services/secret", 404, "no_service")
    properties = f"    url: {http_sink.url}/services/secret\n    payload: '{{\"text\": \"x\"}}'\n"
    code, execution = run_flow(cli, tmp_path, one_task("slack.SlackIncomingWebhook", properties))
    assert (code, state(execution)) == (1, "FAILED")
    line = [line for line in logs(cli, execution).splitlines() if "ERROR" in line]
    host = http_sink.url.removeprefix("http://")
    assert len(line) == 1 and f"webhook {host} answered 404 Not Found: no_service" in line[0]
    assert "secret" not in line[0] and "Traceback" not in logs(cli, execution)


def test_an_unreachable_webhook_fails_the_task_with_one_line(cli: Cli, tmp_path: Path) -> None:
    closed = free_port()
    properties = f"    url: http://127.0.0.1:{closed}/hook\n    payload: '{{\"content\": \"x\"}}'\n"
    code, execution = run_flow(cli, tmp_path, one_task("discord.DiscordIncomingWebhook", properties))
    assert (code, state(execution)) == (1, "FAILED")
    assert f"webhook 127.0.0.1:{closed} unreachable" in logs(cli, execution)


def test_a_payload_that_is_not_json_names_the_property(cli: Cli, tmp_path: Path, http_sink: HttpSink) -> None:
    properties = f"    url: {http_sink.url}/hook\n    payload: 'not json'\n"
    code, execution = run_flow(cli, tmp_path, one_task("slack.SlackIncomingWebhook", properties))
    assert state(execution) == "FAILED" and "payload: not valid JSON" in logs(cli, execution)
    assert http_sink.requests == []


def test_telegram_fails_when_the_bot_api_does_not_answer_ok(cli: Cli, tmp_path: Path, http_sink: HttpSink) -> None:
    http_sink.answer("/botT/sendMessage", 200, '{"ok": false}')
    properties = f"    endpointOverride: {http_sink.url}\n    token: T\n    channel: '1'\n    payload: hi\n"
    code, execution = run_flow(cli, tmp_path, one_task("telegram.TelegramSend", properties))
    assert state(execution) == "FAILED" and "Unable to send Telegram message" in logs(cli, execution)
