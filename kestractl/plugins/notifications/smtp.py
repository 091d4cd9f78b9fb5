"""Sending a message through an SMTP server with the standard library.

`transportStrategy` as simple-java-mail (which Kestra uses) names them: SMTP (plain), SMTPS (TLS from the first
byte), SMTP_TLS (STARTTLS), SMTP_OAUTH2 (STARTTLS, `password` is an OAuth2 access token sent with XOAUTH2).
Certificates are verified against the system's authorities, except those of the `trustedHosts`, which are trusted;
`verifyServerIdentity: false` keeps the verification but not the check of the host name.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
from email.message import EmailMessage

from kestractl.plugin import RunContext, TaskError

DEFAULT_PORTS = {"SMTP": 25, "SMTPS": 465, "SMTP_TLS": 587, "SMTP_OAUTH2": 587}


def send(ctx: RunContext, message: EmailMessage, recipients: list[str]) -> None:
    """Connect as `transportStrategy` says, log in if a user is given, send; any failure is one line."""
    strategy, host = ctx.prop("transportStrategy"), ctx.prop("host")
    port = ctx.prop("port") or DEFAULT_PORTS[strategy]
    where = f"SMTP server {host}:{port}"
    try:
        with _connect(ctx, strategy, host, port) as smtp:
            _login(ctx, smtp, strategy)
            smtp.send_message(message, to_addrs=recipients)
    except smtplib.SMTPException as error:
        raise TaskError(f"{where} refused the mail: {_reason(error)}") from None
    except (OSError, ssl.SSLError) as error:
        raise TaskError(f"cannot send through {where}: {_reason(error)}") from None


def _connect(ctx: RunContext, strategy: str, host: str, port: int) -> smtplib.SMTP:
    timeout = ctx.prop("sessionTimeout") / 1000
    context = _tls(ctx, host)
    if strategy == "SMTPS":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    smtp = smtplib.SMTP(host, port, timeout=timeout)
    if strategy != "SMTP":
        try:
            smtp.starttls(context=context)
        except BaseException:
            smtp.close()
            raise
    return smtp


def _tls(ctx: RunContext, host: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if host in [str(trusted) for trusted in ctx.prop("trustedHosts") or []]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif not ctx.prop("verifyServerIdentity"):
        context.check_hostname = False
    return context


def _login(ctx: RunContext, smtp: smtplib.SMTP, strategy: str) -> None:
    username, password = ctx.prop("username"), ctx.prop("password")
    if not username:
        return
    if strategy != "SMTP_OAUTH2":
        smtp.login(username, password or "")
        return
    token = f"user={username}\x01auth=Bearer {password or ''}\x01\x01"
    smtp.ehlo_or_helo_if_needed()
    code, answer = smtp.docmd("AUTH", "XOAUTH2 " + base64.b64encode(token.encode()).decode())
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, answer)


def _reason(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
        return f"{error.smtp_code} {' '.join(str(text).split())}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{who}: {code} {text!r}" for who, (code, text) in error.recipients.items())
    return " ".join(str(error).split()) or type(error).__name__
