"""Fixtures for plugin tests: the services they run against, started on 127.0.0.1 and torn down after."""

from tests.services.http_sink import http_sink  # noqa: F401
from tests.services.smtp_server import smtp_server  # noqa: F401
