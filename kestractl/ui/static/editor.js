// The flow editor: a textarea with a line-number gutter, validated as you type through
// POST /api/v1/flows/validate (each problem marked at its line) and saved through /api/v1/flows.
import { api, debounce, notice } from "/ui/static/app.js";

const YAML = { "Content-Type": "application/x-yaml" };
const INDENT = "  ";

class Editor {
  constructor(root) {
    this.root = root;
    this.text = root.querySelector(".editor-source");
    this.gutter = root.querySelector(".editor-gutter");
    this.list = root.querySelector(".editor-problems");
    this.status = root.querySelector(".editor-status");
    this.saveButton = root.querySelector(".editor-save");
    this.namespace = root.dataset.namespace;
    this.flowId = root.dataset.flowId;
    this.leaving = false;
    this.lines = 0;
    this.validateSoon = debounce(() => this.validate(), 400);
    this.bind();
    this.renderGutter();
    this.validate();
  }

  bind() {
    this.text.addEventListener("input", () => { this.renderGutter(); this.validateSoon(); });
    this.text.addEventListener("scroll", () => { this.gutter.scrollTop = this.text.scrollTop; });
    this.text.addEventListener("keydown", (event) => this.key(event));
    this.list.addEventListener("click", (event) => {
      const item = event.target.closest("[data-line]");
      if (item) this.goTo(Number(item.dataset.line));
    });
    if (!this.saveButton) return;
    this.saveButton.addEventListener("click", () => this.save());
    document.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
        event.preventDefault();
        this.save();
      }
    });
  }

  /** Tab indents (two spaces) unless Escape came just before, so the keyboard can still leave the editor. */
  key(event) {
    if (event.key === "Escape") { this.leaving = true; return; }
    if (event.key !== "Tab" || this.leaving || this.text.readOnly || event.shiftKey) {
      this.leaving = false;
      return;
    }
    event.preventDefault();
    this.text.setRangeText(INDENT, this.text.selectionStart, this.text.selectionEnd, "end");
    this.text.dispatchEvent(new Event("input"));
  }

  /** One number per line; rebuilt only when the count changes. */
  renderGutter() {
    const count = this.text.value.split("\n").length;
    if (count === this.lines) return;
    while (this.gutter.childElementCount < count) {
      const line = document.createElement("div");
      line.textContent = String(this.gutter.childElementCount + 1);
      this.gutter.append(line);
    }
    while (this.gutter.childElementCount > count) this.gutter.lastElementChild.remove();
    this.lines = count;
    this.gutter.scrollTop = this.text.scrollTop;
  }

  async validate() {
    const source = this.text.value;
    try {
      const results = await api("POST", "/api/v1/flows/validate", source, YAML);
      const problems = results.flatMap((r) => r.problems || []).sort((a, b) => (a.line || 0) - (b.line || 0));
      if (source === this.text.value) this.show(problems);
    } catch (error) {
      this.status.textContent = `Validation unavailable: ${error.message}`;
    }
  }

  /** The gutter marks each problem's line; the list names line and message (a click goes there). */
  show(problems) {
    for (const line of this.gutter.querySelectorAll(".bad")) {
      line.classList.remove("bad");
      line.removeAttribute("title");
    }
    this.list.replaceChildren();
    for (const { line, message } of problems) {
      const item = document.createElement("li");
      const mark = line ? this.gutter.children[line - 1] : null;
      if (mark) {
        mark.classList.add("bad");
        mark.title = mark.title ? `${mark.title}\n${message}` : message;
      }
      const button = document.createElement("button");
      button.type = "button";
      button.className = "editor-problem";
      if (line) button.dataset.line = String(line);
      button.textContent = line ? `Line ${line}: ${message}` : message;
      item.append(button);
      this.list.append(item);
    }
    this.root.classList.toggle("invalid", problems.length > 0);
    this.status.textContent = problems.length ? `${problems.length} problem(s)` : "Valid";
  }

  goTo(line) {
    const lines = this.text.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
    this.text.focus();
    this.text.setSelectionRange(start, start + (lines[line - 1] || "").length);
    const height = this.text.scrollHeight / Math.max(lines.length, 1);
    this.text.scrollTop = Math.max(0, (line - 3) * height);
  }

  /** A new flow is created (then its own editor opens); an existing one gets a new revision. */
  async save() {
    if (!this.saveButton || this.saveButton.disabled) return;
    this.saveButton.disabled = true;
    try {
      const path = this.flowId
        ? `/api/v1/flows/${encodeURIComponent(this.namespace)}/${encodeURIComponent(this.flowId)}`
        : "/api/v1/flows";
      const flow = await api(this.flowId ? "PUT" : "POST", path, this.text.value, YAML);
      if (!this.flowId) {
        window.location.assign(`/ui/flows/edit/${encodeURIComponent(flow.namespace)}/${encodeURIComponent(flow.id)}/editor`);
        return;
      }
      this.root.querySelector(".editor-revision").textContent = String(flow.revision);
      notice(`Saved: revision ${flow.revision}`);
    } catch (error) {
      notice(`Not saved: ${error.message}`, true);
      if (error.status === 422) this.validate();
    } finally {
      this.saveButton.disabled = false;
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const root of document.querySelectorAll("[data-editor]")) new Editor(root);
});
