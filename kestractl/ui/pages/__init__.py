"""One module per page (or group of pages), each with `add_routes(router, ui)`: its own handlers,
templates under `templates/<module>/`, and, when it has live parts, `static/<module>.js`."""

from kestractl.ui.pages import dashboard, executions_list, flows, logs

MODULES = [flows, dashboard, executions_list, logs]
