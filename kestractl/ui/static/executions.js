// Tables of executions (the list, the dashboard): rows of executions still going are refreshed every 2 s (only those rows, from
// /ui/fragments/executions), until every row shown has ended. Filters are a plain GET form: nothing to do here.
import { localTimes } from "/ui/static/app.js";

const EVERY_MS = 2000;

function liveIds(body) {
  return [...body.querySelectorAll("tr[data-live]")].map((row) => row.dataset.id);
}

async function refresh(body) {
  const ids = liveIds(body);
  if (!ids.length) return false;
  const response = await fetch(`/ui/fragments/executions?ids=${encodeURIComponent(ids.join(","))}`);
  if (!response.ok) return true;
  const parsed = document.createElement("template");
  parsed.innerHTML = await response.text();
  for (const row of parsed.content.querySelectorAll("tr[data-id]")) {
    const old = body.querySelector(`tr[data-id="${CSS.escape(row.dataset.id)}"]`);
    if (old) {
      localTimes(row);
      old.replaceWith(row);
    }
  }
  return liveIds(body).length > 0;
}

function watch(body) {
  const tick = async () => {
    let again = true;
    try {
      again = document.hidden || (await refresh(body));
    } catch {
      again = true; // the server may be restarting: try again at the next tick
    }
    if (again) setTimeout(tick, EVERY_MS);
  };
  if (liveIds(body).length) setTimeout(tick, EVERY_MS);
}

/** Every table of executions on the page (the list; the dashboard's running and failed ones). */
function start() {
  for (const body of document.querySelectorAll("table.executions tbody")) watch(body);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
