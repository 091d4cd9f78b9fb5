"""The web UI served by `server standalone` at `/ui/`: server-rendered pages (Jinja2, already a dependency)
with a little of our own JavaScript for the live parts. Nothing here changes state by itself: pages read the
store, and every action goes through `/api/v1`, so the UI cannot drift from the API.

Imported only by the server, and its templates only when a page is first asked for."""
