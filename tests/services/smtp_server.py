"""An SMTP server on 127.0.0.1 (aiosmtpd, a test dependency) that keeps every message it receives, parsed.

`SmtpServer(tls=...)`: `None` plain, `"SMTPS"` TLS from the first byte, `"STARTTLS"` TLS required before the mail;
`users` (name → password) turns on AUTH LOGIN/PLAIN (and XOAUTH2, the password as the token). Use the
`smtp_server` fixture for a plain server.
"""

from __future__ import annotations

import base64
import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from tests.services.tls import server_context


@dataclass(frozen=True)
class Mail:
    """One message as the server received it: the envelope, and the message parsed."""

    sender: str
    recipients: list[str]
    message: EmailMessage


class _Handler:
    def __init__(self, users: dict[str, str] | None) -> None:
        self.mails: list[Mail] = []
        self.users = users or {}

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> Any:
        """OAuth2 login (`user=NAME^Aauth=Bearer TOKEN^A^A`): the token is the user's password here."""
        from aiosmtpd.smtp import AuthResult

        fields = dict(part.split("=", 1) for part in base64.b64decode(args[1]).decode().split("\x01") if part)
        token = fields.get("auth", "").removeprefix("Bearer ")
        return AuthResult(success=self.users.get(fields.get("user", "")) == token, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=default)
        assert isinstance(parsed, EmailMessage)
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


class SmtpServer:
    def __init__(self, folder: Path, tls: str | None = None, users: dict[str, str] | None = None) -> None:
        from aiosmtpd.controller import Controller

        self._handler = _Handler(users)
        context = server_context(folder) if tls else None
        kwargs: dict[str, Any] = {"authenticator": _Authenticator(users), "auth_require_tls": False} if users else {}
        if tls == "STARTTLS":
            kwargs.update(tls_context=context, require_starttls=True)
        self.port = free_port()
        self._controller = Controller(
            self._handler,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=context if tls == "SMTPS" else None,
            **kwargs,
        )
        self._controller.start()

    @property
    def mails(self) -> list[Mail]:
        return self._handler.mails

    def only(self) -> Mail:
        assert len(self.mails) == 1, self.mails
        return self.mails[0]

    def stop(self) -> None:
        self._controller.stop()


class _Authenticator:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        login, password = (part.decode() for part in (data.login, data.password))
        return AuthResult(success=self.users.get(login) == password, handled=False)


def free_port() -> int:
    """A port nothing listens on (the probe that found it is closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path)
    yield server
    server.stop()
