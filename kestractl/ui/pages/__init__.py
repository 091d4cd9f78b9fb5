"""One module per page (or group of pages), each with `add_routes(router, ui)`: its own handlers,
templates under `templates/<module>/`, and, when it has live parts, `static/<module>.js`."""

from kestractl.ui.pages import (
    dashboard,
    editor,
    execute_form,
    execution,
    executions_list,
    flows,
    logs,
    namespaces,
    tests,
)

MODULES = [dashboard, flows, editor, execute_form, executions_list, execution, logs, namespaces, tests]
