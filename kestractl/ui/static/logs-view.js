// The log view: lines live in a JS array (filled a page at a time, from where the reader looks), and only the
// rows in sight are in the page, each ROW pixels high inside a spacer as tall as all the lines. New lines come
// from /api/v1/logs/{id}/follow, after the position the first page was read up to. Lines are written as text.

const ROW = 20; // px: .log-line's height in execution.css
const PAGE = 500; // lines per request
const MARGIN = 30; // rows drawn above and below the visible ones
const TERMINATED = new Set(["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED"]);

class LogView {
  constructor(el) {
    this.el = el;
    this.spacer = el.querySelector(".logs-spacer");
    this.filters = { minLevel: el.dataset.minLevel, taskId: el.dataset.taskId, q: el.dataset.q };
    this.lines = [];
    this.total = 0;
    this.until = null;
    this.loading = new Set();
    this.drawn = null;
    this.tail = document.getElementById("logs-tail");
    this.status = document.getElementById("logs-status");
    el.addEventListener("scroll", () => this.schedule());
    window.addEventListener("resize", () => this.schedule());
    document.getElementById("logs-end").addEventListener("click", () => this.toEnd());
    document.addEventListener("execution:update", (event) => this.executionChanged(event.detail.state.current));
    this.start(el.dataset.live === "1");
  }

  async start(live) {
    const first = await this.fetch(0, PAGE);
    if (!first) return;
    this.until = first.until;
    this.total = first.total;
    this.store(0, first.lines);
    this.say();
    if (live) this.follow();
    if (this.tail.checked && live) this.toEnd();
    else this.schedule();
  }

  async fetch(offset, limit) {
    const query = new URLSearchParams({ offset, limit });
    for (const [name, value] of Object.entries(this.filters)) if (value) query.set(name, value);
    if (this.until !== null) query.set("until", this.until);
    const response = await fetch(`${this.el.dataset.window}?${query}`, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      this.status.textContent = `Cannot read the logs (${response.status}).`;
      return null;
    }
    return response.json();
  }

  store(offset, lines) {
    lines.forEach((line, i) => { this.lines[offset + i] = { time: line[1], level: line[2], task: line[3], message: line[5] }; });
  }

  async load(page) {
    if (this.loading.has(page)) return;
    this.loading.add(page);
    const answer = await this.fetch(page * PAGE, PAGE);
    if (answer) {
      this.store(page * PAGE, answer.lines);
      this.schedule();
    }
  }

  follow() {
    const query = new URLSearchParams({ after: this.seen || this.until || 0 });
    if (this.filters.minLevel) query.set("minLevel", this.filters.minLevel);
    this.source = new EventSource(`${this.el.dataset.follow}?${query}`);
    this.source.addEventListener("log", (event) => {
      this.seen = Number(event.lastEventId) || this.seen; // the line's position: a later stream starts after it
      this.arrived(JSON.parse(event.data));
    });
    this.source.onerror = () => { // the stream ends with the execution; otherwise the browser reconnects
      if (this.ended) { this.source.close(); this.source = null; }
    };
  }

  /** A restart or a resume from this page: its new lines stream in too. */
  executionChanged(state) {
    this.ended = TERMINATED.has(state);
    if (!this.ended && !this.source && this.until !== null) this.follow();
  }

  /** A line from the live stream: kept when it passes the task and text filters (the level is the server's). */
  arrived(entry) {
    const { taskId, q } = this.filters;
    if (taskId && entry.taskId !== taskId) return;
    if (q && !String(entry.message).toLowerCase().includes(q.toLowerCase())) return;
    this.lines[this.total] = { time: entry.timestamp, level: entry.level, task: entry.taskId, message: entry.message };
    this.total += 1;
    this.say();
    if (this.tail.checked) this.toEnd();
    else this.schedule();
  }

  say() {
    this.status.textContent = `${this.total.toLocaleString()} line${this.total === 1 ? "" : "s"}`;
  }

  toEnd() {
    this.spacer.style.height = `${this.total * ROW}px`;
    this.el.scrollTop = this.el.scrollHeight;
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = null; this.draw(); });
  }

  /** Only the rows in sight (and a margin) exist; missing pages are fetched and drawn when they arrive. */
  draw() {
    this.spacer.style.height = `${this.total * ROW}px`;
    const first = Math.max(0, Math.floor(this.el.scrollTop / ROW) - MARGIN);
    const last = Math.min(this.total, Math.ceil((this.el.scrollTop + this.el.clientHeight) / ROW) + MARGIN);
    for (let page = Math.floor(first / PAGE); page * PAGE < last; page++) {
      if (this.lines[page * PAGE] === undefined || this.lines[Math.min(last, (page + 1) * PAGE) - 1] === undefined) this.load(page);
    }
    const rows = [];
    for (let i = first; i < last; i++) rows.push(this.row(i, this.lines[i]));
    this.spacer.replaceChildren(...rows);
  }

  row(index, line) {
    const div = document.createElement("div");
    div.className = "log-line";
    div.style.transform = `translateY(${index * ROW}px)`;
    if (!line) {
      div.classList.add("loading");
      div.textContent = "…";
      return div;
    }
    const cell = (text, cls) => { const s = document.createElement("span"); s.className = cls; s.textContent = text || ""; return s; };
    div.classList.add(`level-${line.level}`);
    div.append(cell(new Date(line.time).toLocaleTimeString(), "log-time"), cell(line.level, "log-level"),
      cell(line.task, "log-task"), cell(line.message, "log-message"));
    div.title = line.message;
    return div;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("logs");
  if (el) new LogView(el);
});
