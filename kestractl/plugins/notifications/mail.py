"""Email over SMTP: `MailSend`, and `MailExecution` with an execution's summary. The message is built in
`mail_message` and sent by `smtp` (standard library), both imported when a mail is sent."""

from __future__ import annotations

from typing import Any

from kestractl.plugin import Prop, RunContext, RunnableTask, register
from kestractl.plugins.notifications.summary import PROPERTIES as EXECUTION_PROPERTIES
from kestractl.plugins.notifications.summary import summarise

STRATEGIES = ("SMTP", "SMTPS", "SMTP_TLS", "SMTP_OAUTH2")
# Kestra sends this text part when only html is given (and as MailExecution's text).
PLAIN_FALLBACK = "Please view this email in a modern email client"
ATTACHMENTS = "`{name, uri (kestra:///…), contentType (default application/octet-stream)}` maps, or them as JSON."


@register
class MailSend(RunnableTask):
    """Send an email (html and plain text, attachments and images from internal storage) through an SMTP server."""

    type_name = "io.kestra.plugin.notifications.mail.MailSend"
    properties = {
        "host": Prop("The SMTP server's host.", type="string", required=True),
        "port": Prop("The SMTP server's port (default: 25, 465 for SMTPS, 587 for STARTTLS).", type="integer"),
        "username": Prop("The user name to log in with.", type="string"),
        "password": Prop("The password to log in with (the access token for SMTP_OAUTH2).", type="string"),
        "transportStrategy": Prop("How the connection is secured.", type="string", default="SMTPS", values=STRATEGIES),
        "sessionTimeout": Prop("The timeout of the connection, in milliseconds.", type="integer", default=10000),
        "verifyServerIdentity": Prop("Check the certificate's host name.", type="boolean", default=True),
        "trustedHosts": Prop("Hosts whose certificate is trusted without verification.", type="array"),
        "from": Prop("The sender's address.", type="string", required=True),
        "to": Prop("The recipients' addresses, separated by `;`.", type="string", required=True),
        "cc": Prop("The copied recipients' addresses, separated by `;`.", type="string"),
        "subject": Prop("The subject.", type="string"),
        "htmlTextContent": Prop("The body as html (offered with the plain text as alternatives).", type="string"),
        "plainTextContent": Prop("The body as plain text.", type="string"),
        "attachments": Prop(f"Files attached to the email: {ATTACHMENTS}", type="any"),
        "embeddedImages": Prop(f"Images the html shows as `cid:NAME`: {ATTACHMENTS}", type="any"),
    }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        from kestractl.plugins.notifications import mail_message, smtp

        message = mail_message.build(ctx, *self.bodies(ctx))
        recipients = mail_message.addresses(ctx.prop("to")) + mail_message.addresses(ctx.prop("cc"))
        smtp.send(ctx, message, recipients)
        ctx.info(f"Mail sent to {', '.join(recipients)}")
        return {}

    def bodies(self, ctx: RunContext) -> tuple[str | None, str]:
        """The html body (if any) and the plain text body."""
        return ctx.prop("htmlTextContent"), ctx.prop("plainTextContent") or PLAIN_FALLBACK


@register
class MailExecution(MailSend):
    """Send an email that summarises an execution: state, duration, link, failed task, custom fields."""

    type_name = "io.kestra.plugin.notifications.mail.MailExecution"
    properties = {**EXECUTION_PROPERTIES}

    def bodies(self, ctx: RunContext) -> tuple[str | None, str]:
        from kestractl.plugins.notifications.mail_message import execution_html

        return execution_html(summarise(ctx)), PLAIN_FALLBACK
