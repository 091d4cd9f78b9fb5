// The execution page's live parts: the header follows /api/v1/executions/{id}/follow (state, duration, labels,
// which actions apply), the tab's task runs refresh as they change, and the buttons call /api/v1. Everything
// from the execution is written as text (textContent), never as HTML.
import { api, notice, localTimes } from "/ui/static/app.js";

const TERMINATED = new Set(["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED"]);
const RESTARTABLE = new Set(["FAILED", "KILLED", "WARNING", "CANCELLED"]);

/** Which buttons a state allows (kestractl restarts ended executions, resumes paused ones, kills live ones). */
function allowed(state) {
  return {
    restart: RESTARTABLE.has(state),
    kill: !TERMINATED.has(state),
    labels: TERMINATED.has(state),
    resume: state === "PAUSED",
  };
}

/** `1h 02m`, `3m 07s`, `4.2s`, `12ms`: as the server writes them. */
export function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60000), seconds = Math.floor(ms / 1000) % 60;
  const hours = Math.floor(minutes / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return hours ? `${hours}h ${pad(minutes % 60)}m` : `${minutes}m ${pad(seconds)}s`;
}

function badge(state) {
  const span = document.createElement("span");
  span.className = `state state-${state}`;
  span.textContent = state;
  return span;
}

class ExecutionPage {
  constructor(header) {
    this.header = header;
    this.id = header.dataset.id;
    this.renderedState = header.dataset.state;
    this.source = null;
    this.refreshing = null;
    this.bind();
    this.showActions(header.dataset.state);
    setInterval(() => this.tick(), 1000);
    if (header.dataset.live) this.follow();
  }

  get state() { return this.header.dataset.state; }

  tick() {
    if (TERMINATED.has(this.state) || !this.header.dataset.start) return;
    const start = Date.parse(this.header.dataset.start);
    const end = this.header.dataset.end ? Date.parse(this.header.dataset.end) : Date.now();
    document.getElementById("exec-duration").textContent = formatDuration(Math.max(0, end - start));
  }

  follow() {
    if (this.source) return;
    this.source = new EventSource(`/api/v1/executions/${encodeURIComponent(this.id)}/follow`);
    this.source.onmessage = (event) => {
      this.update(JSON.parse(event.data));
      if (event.lastEventId === "end") this.stop();
    };
  }

  stop() {
    if (this.source) this.source.close();
    this.source = null;
  }

  update(execution) {
    const state = execution.state.current;
    const changed = state !== this.state;
    this.header.dataset.state = state;
    this.header.dataset.end = execution.state.endDate || "";
    document.getElementById("exec-state").replaceChildren(badge(state));
    this.showLabels(execution.labels || []);
    this.showActions(state);
    this.tick();
    if (TERMINATED.has(state)) {
      const start = Date.parse(execution.state.startDate), end = Date.parse(execution.state.endDate);
      document.getElementById("exec-duration").textContent = formatDuration(Math.max(0, end - start));
    }
    if (changed && state === "PAUSED" && this.renderedState !== "PAUSED") {
      window.location.reload(); // the resume form is drawn from the paused task's onResume inputs
      return;
    }
    this.refreshSoon();
    this.header.dispatchEvent(new CustomEvent("execution:update", { bubbles: true, detail: execution }));
  }

  showLabels(labels) {
    const dd = document.getElementById("exec-labels");
    const items = labels.map(({ key, value }) => {
      const span = document.createElement("span");
      span.className = "label";
      span.textContent = `${key}:${value}`;
      return span;
    });
    dd.replaceChildren(...items);
  }

  showActions(state) {
    const can = allowed(state);
    for (const button of this.header.querySelectorAll("[data-action]")) button.hidden = !can[button.dataset.action];
    document.getElementById("resume-form").hidden = !can.resume;
    if (!can.labels) document.getElementById("labels-form").hidden = true;
  }

  /** The tab's task runs again (at most once a second while the execution changes). */
  refreshSoon() {
    if (this.refreshing) return;
    this.refreshing = setTimeout(async () => {
      this.refreshing = null;
      for (const el of document.querySelectorAll("[data-live-fragment]")) {
        const response = await fetch(el.dataset.liveFragment, { headers: { Accept: "text/html" } });
        if (response.ok) {
          el.innerHTML = await response.text(); // server-rendered with autoescape
          localTimes(el);
        }
      }
    }, 1000);
  }

  async act(label, method, path, body) {
    try {
      const execution = await api(method, `/api/v1/executions/${encodeURIComponent(this.id)}${path}`, body);
      notice(label);
      if (execution && execution.state) this.update(execution);
      if (!TERMINATED.has(this.state)) this.follow();
      return true;
    } catch (error) {
      notice(error.message, true);
      return false;
    }
  }

  bind() {
    const on = (action, fn) => this.header.querySelector(`[data-action="${action}"]`).addEventListener("click", fn);
    on("restart", () => this.act("Restarted.", "POST", "/restart"));
    on("kill", () => this.act("Kill requested.", "DELETE", "/kill"));
    on("labels", (event) => {
      const form = document.getElementById("labels-form");
      form.hidden = !form.hidden;
      event.currentTarget.setAttribute("aria-expanded", String(!form.hidden));
    });
    this.bindLabels(document.getElementById("labels-form"));
    this.bindResume(document.getElementById("resume-form"));
  }

  bindLabels(form) {
    const rows = form.querySelector(".label-rows");
    form.querySelector("[data-add-label]").addEventListener("click", () => {
      rows.append(document.getElementById("label-row").content.cloneNode(true));
      rows.lastElementChild.querySelector("input").focus();
    });
    rows.addEventListener("click", (event) => {
      const remove = event.target.closest("[data-remove-label]");
      if (remove) remove.closest(".label-row").remove();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const labels = [...rows.querySelectorAll(".label-row")]
        .map((row) => ({ key: row.querySelector('[name="key"]').value.trim(), value: row.querySelector('[name="value"]').value }))
        .filter((label) => label.key);
      if (await this.act("Labels saved.", "POST", "/labels", labels)) form.hidden = true;
    });
  }

  bindResume(form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      for (const [name, value] of [...data.entries()]) {
        if (value instanceof File && !value.name) data.delete(name); // an empty file field sends nothing
      }
      await this.act("Resumed.", "POST", "/resume", data);
    });
  }
}

/** A file's first rows: ION records and CSV as a table, anything else as text. */
function previewTable(rows) {
  const table = document.createElement("table");
  const [head, ...body] = rows;
  const tr = table.createTHead().insertRow();
  for (const cell of head) { const th = document.createElement("th"); th.textContent = cell; tr.append(th); }
  const tbody = table.createTBody();
  for (const row of body) {
    const line = tbody.insertRow();
    for (const cell of row) line.insertCell().textContent = cell;
  }
  const wrap = document.createElement("div");
  wrap.className = "table-wrap";
  wrap.append(table);
  return wrap;
}

function csvRows(text) {
  const rows = [[]];
  let field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { rows[rows.length - 1].push(field); field = ""; }
    else if (c === "\n") { rows[rows.length - 1].push(field.replace(/\r$/, "")); rows.push([]); field = ""; }
    else field += c;
  }
  rows[rows.length - 1].push(field);
  return rows.filter((row) => row.length > 1 || row[0] !== "");
}

function previewContent(render) {
  if (render.type === "LIST" && render.content.length) {
    const keys = [...new Set(render.content.flatMap((r) => (r && typeof r === "object" ? Object.keys(r) : ["value"])))];
    const cell = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
    return previewTable([keys, ...render.content.map((r) => keys.map((k) => cell(r && typeof r === "object" ? r[k] : r)))]);
  }
  if (render.type === "TEXT" && ["csv", "tsv"].includes(render.extension)) return previewTable(csvRows(render.content));
  const pre = document.createElement("pre");
  let text = typeof render.content === "string" ? render.content : JSON.stringify(render.content, null, 2);
  if (render.extension === "json") { try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* as is */ } }
  pre.textContent = text;
  return pre;
}

async function preview(id, path) {
  const box = document.getElementById("preview");
  try {
    const query = new URLSearchParams({ path, maxRows: "100" });
    const render = await api("GET", `/api/v1/executions/${encodeURIComponent(id)}/file/preview?${query}`);
    document.getElementById("preview-name").textContent = path.split("/").pop();
    const note = document.createElement("p");
    note.className = "muted";
    note.textContent = render.truncated ? "First 100 rows." : "";
    document.getElementById("preview-body").replaceChildren(previewContent(render), note);
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  } catch (error) {
    notice(error.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const header = document.getElementById("execution");
  if (!header) return;
  new ExecutionPage(header);
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-preview]");
    if (button) preview(header.dataset.id, button.dataset.preview);
  });
});
