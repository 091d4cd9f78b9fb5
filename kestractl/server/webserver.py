"""`server webserver`: Kestra's webserver alone, the REST API (`/api/v1`) and the UI (`/ui/`) over the store, with no
executor loop and no scheduler. Executions it creates (webhooks, POST executions) are CREATED rows that executors
sharing the database pick up; kills, restarts and resumes are written on the rows (see `StoredExecutions`); pages
and endpoints that follow an execution read the store. Any number may run at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

from kestractl.config import Home
from kestractl.server.app import ServerOptions, http_server
from kestractl.server.executions import StoredExecutions
from kestractl.server.liveness import ServiceLiveness
from kestractl.storage import open_storage
from kestractl.store import open_store
from kestractl.store.service_records import ServerConfig, ServiceState, ServiceType

Say = Callable[[str, str], None]


class WebServer:
    def __init__(self, home: Home, options: ServerOptions, say: Say) -> None:
        self.options, self.say = options, say
        self.store = open_store(options.database or home.db_path)
        self.executions = StoredExecutions(self.store, open_storage(home))
        self.stop_event = threading.Event()
        config = ServerConfig(options.heartbeat_interval, options.heartbeat_timeout, options.grace_seconds)
        self.liveness = ServiceLiveness(self.store, config, say, coordinate=False, services=(ServiceType.WEBSERVER,))
        self._http = http_server(self.executions, options)

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    def serve(self) -> None:
        """Serve requests until `stop_event` is set (the caller wires signals to it)."""
        self.liveness.register()
        http = threading.Thread(target=self._http.serve_forever, name="http", daemon=True)
        heartbeats = threading.Thread(target=self.liveness.run, args=(self.stop_event,), name="liveness", daemon=True)
        http.start()
        heartbeats.start()
        self.say("INFO", f"listening on http://{self.options.host}:{self.port} (webserver: executors run elsewhere)")
        self.stop_event.wait()
        self._http.shutdown()
        self._http.server_close()
        heartbeats.join()
        self.liveness.leave(ServiceState.TERMINATED_GRACEFULLY)
        self.store.close()
        self.say("INFO", "stopped")
