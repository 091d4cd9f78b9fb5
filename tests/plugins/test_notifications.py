"""The notifications plugin against real services on 127.0.0.1: an HTTP sink that receives every chat's webhook
(the test reads the JSON each one sent) and an SMTP server (aiosmtpd) that receives the mails, over plain SMTP,
SMTPS and STARTTLS with a self-signed certificate made by the test. Flows run through the real CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kestractl.errors import NotFoundError
from kestractl.server.app import StandaloneServer
from tests.conftest import Cli, executions_of, state, wait_for
from tests.services.http_sink import HttpSink
from tests.services.smtp_server import SmtpServer, free_port

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
        (
            "discord.DiscordIncomingWebhook",
            '    payload: \'{"content": "hi {{ flow.id }}"}\'\n',
            {"content": "hi notify"},
        ),
        ("teams.TeamsIncomingWebhook", '    payload: \'{"text": "hi"}\'\n', {"text": "hi"}),
        ("google.GoogleChatIncomingWebhook", '    payload: \'{"text": "hi"}\'\n', {"text": "hi"}),
        ("zulip.ZulipIncomingWebhook", '    payload: \'{"text": "hi"}\'\n', {"text": "hi"}),
        (
            "mattermost.MattermostIncomingWebhook",
            "    messageText: '**bold** stays Markdown'\n",
            {"text": "**bold** stays Markdown"},
        ),
    ],
)
def test_each_incoming_webhook_posts_its_payload(
    cli: Cli, tmp_path: Path, http_sink: HttpSink, task_type: str, properties: str, sent: dict[str, Any]
) -> None:
    options = "    options:\n      headers:\n        X-Source: kestractl\n"
    code, execution = run_flow(
        cli, tmp_path, one_task(task_type, f"    url: {http_sink.url}/in\n{properties}{options}")
    )
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
    properties = f'    url: {http_sink.url}/services/secret\n    payload: \'{{"text": "x"}}\'\n'
    code, execution = run_flow(cli, tmp_path, one_task("slack.SlackIncomingWebhook", properties))
    assert (code, state(execution)) == (1, "FAILED")
    line = [line for line in logs(cli, execution).splitlines() if "ERROR" in line]
    host = http_sink.url.removeprefix("http://")
    assert len(line) == 1 and f"webhook {host} answered 404 Not Found: no_service" in line[0]
    assert "secret" not in line[0] and "Traceback" not in logs(cli, execution)


def test_an_unreachable_webhook_fails_the_task_with_one_line(cli: Cli, tmp_path: Path) -> None:
    closed = free_port()
    properties = f'    url: http://127.0.0.1:{closed}/hook\n    payload: \'{{"content": "x"}}\'\n'
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


# ---- execution summaries ------------------------------------------------------------------------------------------

FAILING = """id: failing
namespace: dev
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: hi
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
"""
ALERT = f"""id: alert
namespace: dev
inputs:
  - id: url
    type: STRING
  - id: failed
    type: STRING
tasks:
  - id: slack
    type: {N}.slack.SlackExecution
    url: "{{{{ inputs.url }}}}/slack"
    executionId: "{{{{ inputs.failed }}}}"
    customMessage: "Look at {{{{ flow.id }}}}"
    customFields:
      env: prod
    username: kestra
  - id: discord
    type: {N}.discord.DiscordExecution
    url: "{{{{ inputs.url }}}}/discord"
    executionId: "{{{{ inputs.failed }}}}"
    username: kestra
    avatarUrl: https://x.test/a.png
    content: Alert
    embedList:
      - title: Failure
        color: [255, 0, 0]
  - id: teams
    type: {N}.teams.TeamsExecution
    url: "{{{{ inputs.url }}}}/teams"
    executionId: "{{{{ inputs.failed }}}}"
    activityTitle: Kestra
  - id: google
    type: {N}.google.GoogleChatExecution
    url: "{{{{ inputs.url }}}}/google"
    executionId: "{{{{ inputs.failed }}}}"
  - id: zulip
    type: {N}.zulip.ZulipExecution
    url: "{{{{ inputs.url }}}}/zulip"
    executionId: "{{{{ inputs.failed }}}}"
    customFields:
      env: prod
  - id: mattermost
    type: {N}.mattermost.MattermostExecution
    url: "{{{{ inputs.url }}}}/mattermost"
    executionId: "{{{{ inputs.failed }}}}"
    customMessage: Look
  - id: telegram
    type: {N}.telegram.TelegramExecution
    endpointOverride: "{{{{ inputs.url }}}}"
    token: T
    channel: "1"
    executionId: "{{{{ inputs.failed }}}}"
"""


def test_execution_variants_summarise_another_execution_as_kestra_templates_do(
    cli: Cli, tmp_path: Path, http_sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTRA_URL", "http://kestra.test:8080/")
    failing, failed = run_flow(cli, tmp_path, FAILING)
    assert failing == 1
    code, execution = run_flow(cli, tmp_path, ALERT, f"url={http_sink.url}", f"failed={failed['id']}")
    assert (code, state(execution)) == (0, "SUCCESS"), logs(cli, execution)
    sent = {request.path.strip("/"): request.json for request in http_sink.requests}
    link = f"http://kestra.test:8080/ui/main/executions/dev/failing/{failed['id']}"
    outcome = re.compile(r"Failed on task `boom` after 0:00:\d\d\.\d{3}")
    headline = f"*<{link}|[dev] failing ➛ FAILED>*\n> "

    slack = sent["slack"]
    assert slack["text"].startswith(headline) and outcome.search(slack["text"])
    assert slack["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": "Look at alert"}}
    assert slack["blocks"][1]["accessory"]["url"] == link and slack["username"] == "kestra"
    attachment = slack["attachments"][0]
    assert attachment["color"] == "danger" and isinstance(attachment["ts"], int)
    assert [(f["title"], f["value"]) for f in attachment["fields"]] == [
        ("Namespace", "dev"),
        ("Flow ID", "failing"),
        ("Execution ID", failed["id"]),
        ("Execution Status", "FAILED"),
        ("env", "prod"),
        ("Final task ID", "boom"),
    ]
    assert [f["title"] for f in sent["zulip"]["attachments"][0]["fields"]][-2:] == ["Final task ID", "env"]

    discord = sent["discord"]
    assert (discord["username"], discord["avatar_url"], discord["content"], discord["tts"]) == (
        "kestra",
        "https://x.test/a.png",
        "Alert",
        False,
    )
    embed = discord["embeds"][0]
    assert (embed["title"], embed["color"]) == ("Failure", 0xFF0000)
    assert embed["description"].startswith(f"Namespace: dev\nFlow ID: failing\nExecution ID: {failed['id']}\n")
    assert embed["description"].endswith(f"Final task ID: boom \n\n[Link to the Execution page]({link})")
    assert outcome.fullmatch(embed["footer"]["text"])

    teams = sent["teams"]
    assert (teams["@type"], teams["themeColor"], teams["sections"][0]["activityTitle"]) == (
        "MessageCard",
        "0076D7",
        "Kestra",
    )
    assert {"name": "Final task ID", "value": "boom"} in teams["sections"][0]["facts"]
    assert teams["summary"].startswith(headline)

    google = sent["google"]["text"]
    assert google.startswith(
        f"Kestra Google notification: Namespace dev, Flow ID failing, Execution ID {failed['id']}, "
        f"Execution Status FAILED, Final task ID boom. {headline}"
    )
    mattermost = sent["mattermost"]["text"]
    assert mattermost.startswith(f"Look\n**[[dev] failing ➛ FAILED]({link})**\n> Failed on task `boom`")
    telegram = sent["botT/sendMessage"]
    assert telegram["chat_id"] == "1"
    assert telegram["text"].startswith(f'"<dev failing {failed["id"]} ➛ FAILED - Final task ID ➛ boom> Failed on')
    assert telegram["text"].endswith(f' ({link})"')


def test_an_execution_variant_reports_the_current_execution_by_default(
    cli: Cli, tmp_path: Path, http_sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KESTRA_URL", raising=False)
    flow = one_task("slack.SlackExecution", f"    url: {http_sink.url}/hook\n")
    code, execution = run_flow(cli, tmp_path, flow)
    assert (code, state(execution)) == (0, "SUCCESS")
    slack = http_sink.only().json
    assert slack["text"].startswith("*[dev] notify ➛ RUNNING*\n> Succeeded after 0:00:")
    assert "accessory" not in slack["blocks"][0]
    assert slack["attachments"][0]["fields"][-1] == {"title": "Final task ID", "value": "send", "short": True}


ALERT_ON_FAILURE = f"""id: alert
namespace: dev
tasks:
  - id: slack
    type: {N}.slack.SlackExecution
    url: "{{url}}/alert"
    executionId: "{{{{{{{{ trigger.executionId }}}}}}}}"
triggers:
  - id: on_failure
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [FAILED]
"""


def test_a_flow_triggered_alert_reports_the_execution_that_failed(
    standalone: tuple[StandaloneServer, Path], http_sink: HttpSink
) -> None:
    server, flows = standalone
    (flows / "failing.yaml").write_text(FAILING)
    (flows / "alert.yaml").write_text(ALERT_ON_FAILURE.format(url=http_sink.url))
    wait_for(lambda: _deployed(server, "failing") and _deployed(server, "alert"))
    failed = server.runner.create_execution(server.runner.flows.get("dev", "failing"), {})
    server.runner.submit(failed.id)
    wait_for(lambda: [e for e in executions_of(server, "alert") if e.state.current.is_terminated()])
    slack = http_sink.only().json
    assert slack["text"].startswith("*[dev] failing ➛ FAILED*\n> Failed on task `boom` after 0:00:")
    assert {"title": "Execution ID", "value": failed.id, "short": True} in slack["attachments"][0]["fields"]


def _deployed(server: StandaloneServer, flow_id: str) -> bool:
    try:
        server.runner.flows.get("dev", flow_id)
    except NotFoundError:
        return False
    return True


# ---- mail ---------------------------------------------------------------------------------------------------------


def mail_flow(port: int, strategy: str, extra: str = "") -> str:
    return f"""id: mail
namespace: dev
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "id,name\\n1,ada\\n"
    extension: .csv
  - id: send
    type: {N}.mail.MailSend
    host: 127.0.0.1
    port: {port}
    transportStrategy: {strategy}
    from: kestra@example.test
    to: ops@example.test; dev@example.test
    cc: boss@example.test
    subject: "Report of {{{{ flow.id }}}}"
    htmlTextContent: "<p>Rows for <b>{{{{ flow.namespace }}}}</b></p>"
    plainTextContent: "Rows for {{{{ flow.namespace }}}}"
    attachments:
      - name: report.csv
        uri: "{{{{ outputs.write.uri }}}}"
        contentType: text/csv
{extra}"""


def test_mail_send_delivers_subject_recipients_bodies_and_the_attachment(
    cli: Cli, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    code, execution = run_flow(cli, tmp_path, mail_flow(smtp_server.port, "SMTP"))
    assert (code, state(execution)) == (0, "SUCCESS"), logs(cli, execution)
    mail = smtp_server.only()
    assert mail.sender == "kestra@example.test"
    assert sorted(mail.recipients) == ["boss@example.test", "dev@example.test", "ops@example.test"]
    message = mail.message
    assert (message["Subject"], message["To"], message["Cc"]) == (
        "Report of mail",
        "ops@example.test, dev@example.test",
        "boss@example.test",
    )
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert html is not None and html.get_content().rstrip() == "<p>Rows for <b>dev</b></p>"
    assert text is not None and text.get_content().rstrip() == "Rows for dev"
    [attached] = list(message.iter_attachments())
    assert (attached.get_filename(), attached.get_content_type()) == ("report.csv", "text/csv")
    assert attached.get_payload(decode=True) == b"id,name\n1,ada\n"


def test_mail_execution_sends_the_summary_of_the_execution(
    cli: Cli, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTRA_URL", "http://kestra.test")
    properties = (
        f"    host: 127.0.0.1\n    port: {smtp_server.port}\n    transportStrategy: SMTP\n"
        "    from: kestra@example.test\n    to: ops@example.test\n    subject: Execution\n"
        "    customMessage: Nightly run\n    customFields:\n      team: data\n"
    )
    code, execution = run_flow(cli, tmp_path, one_task("mail.MailExecution", properties))
    assert (code, state(execution)) == (0, "SUCCESS"), logs(cli, execution)
    message = smtp_server.only().message
    html = message.get_body(("html",))
    assert html is not None
    body = html.get_content()
    for expected in (
        "[dev] notify ➛ ",
        "Nightly run",
        "Succeeded after 0:00:",
        f'href="http://kestra.test/ui/main/executions/dev/notify/{execution["id"]}"',
        f"<strong>Execution :</strong> {execution['id']}",
        "<strong>team :</strong> data",
    ):
        assert expected in body, expected
    plain = message.get_body(("plain",))
    assert plain is not None and plain.get_content().strip() == "Please view this email in a modern email client"


@pytest.mark.parametrize("tls", ["SMTPS", "STARTTLS"])
def test_mail_over_tls_with_a_self_signed_certificate_of_a_trusted_host(cli: Cli, tmp_path: Path, tls: str) -> None:
    server = SmtpServer(tmp_path, tls=tls, users={"kestra": "s3cret"})
    try:
        strategy = "SMTPS" if tls == "SMTPS" else "SMTP_TLS"
        login = "    username: kestra\n    password: s3cret\n"
        trusted = "    trustedHosts: [127.0.0.1]\n"
        code, execution = run_flow(cli, tmp_path, mail_flow(server.port, strategy, login + trusted))
        assert (code, state(execution)) == (0, "SUCCESS"), logs(cli, execution)
        assert server.only().message["Subject"] == "Report of mail"
        code, execution = run_flow(cli, tmp_path, mail_flow(server.port, strategy, login))
        assert state(execution) == "FAILED" and "CERTIFICATE_VERIFY_FAILED" in logs(cli, execution)
        bad = login.replace("s3cret", "wrong") + trusted
        code, execution = run_flow(cli, tmp_path, mail_flow(server.port, strategy, bad))
        assert state(execution) == "FAILED"
        assert f"SMTP server 127.0.0.1:{server.port} refused the mail: 535" in logs(cli, execution)
        assert len(server.mails) == 1
    finally:
        server.stop()


def test_smtp_oauth2_logs_in_with_the_access_token_over_starttls(cli: Cli, tmp_path: Path) -> None:
    server = SmtpServer(tmp_path, tls="STARTTLS", users={"kestra": "token-1"})
    try:
        extra = "    username: kestra\n    password: token-1\n    trustedHosts: [127.0.0.1]\n"
        code, execution = run_flow(cli, tmp_path, mail_flow(server.port, "SMTP_OAUTH2", extra))
        assert (code, state(execution)) == (0, "SUCCESS"), logs(cli, execution)
        code, execution = run_flow(cli, tmp_path, mail_flow(server.port, "SMTP_OAUTH2", extra.replace("-1", "-2")))
        assert state(execution) == "FAILED" and "refused the mail: 535" in logs(cli, execution)
        assert len(server.mails) == 1
    finally:
        server.stop()


def test_a_refused_smtp_connection_is_one_line(cli: Cli, tmp_path: Path) -> None:
    closed = free_port()
    code, execution = run_flow(cli, tmp_path, mail_flow(closed, "SMTP"))
    assert (code, state(execution)) == (1, "FAILED")
    errors = [line for line in logs(cli, execution).splitlines() if "ERROR" in line]
    assert len(errors) == 1 and f"cannot send through SMTP server 127.0.0.1:{closed}: " in errors[0]
    assert "Connection refused" in errors[0]


def test_embedded_images_given_as_json_are_related_parts_of_the_html(
    cli: Cli, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    images = (
        '    embeddedImages: \'[{"name": "logo.png", "uri": "{{ outputs.write.uri }}", "contentType": "image/png"}]\'\n'
    )
    code, execution = run_flow(cli, tmp_path, mail_flow(smtp_server.port, "SMTP", images))
    assert (code, state(execution)) == (0, "SUCCESS"), logs(cli, execution)
    related = [part for part in smtp_server.only().message.walk() if part.get_content_type() == "multipart/related"]
    assert len(related) == 1
    [logo] = [part for part in related[0].walk() if part["Content-ID"] == "<logo.png>"]
    assert logo.get_content_type() == "image/png" and logo.get_payload(decode=True) == b"id,name\n1,ada\n"


@pytest.mark.parametrize(
    ("task_type", "properties", "problem"),
    [
        ("slack.SlackIncomingWebhook", "    payload: '{}'\n", "tasks[0].url: required"),
        (
            "telegram.TelegramSend",
            "    token: t\n    channel: c\n    parseMode: RTF\n",
            "must be one of HTML, MARKDOWNV2",
        ),
        (
            "mail.MailSend",
            "    host: h\n    from: a@x\n    to: b@x\n    transportStrategy: TLS\n",
            "must be one of SMTP,",
        ),
        ("discord.DiscordExecution", "    url: u\n    embedList: {title: x}\n", "tasks[0].embedList: expected a list"),
    ],
)
def test_bad_properties_are_refused_at_deploy(
    cli: Cli, tmp_path: Path, task_type: str, properties: str, problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(one_task(task_type, properties))
    result = cli("flow", "deploy", str(path))
    assert result.exit_code != 0 and problem in result.stderr, result.stderr


def test_importing_the_plugin_imports_neither_httpx_nor_smtplib() -> None:
    probe = "import sys, kestractl.plugins.notifications; print([m for m in ('httpx', 'smtplib') if m in sys.modules])"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"
