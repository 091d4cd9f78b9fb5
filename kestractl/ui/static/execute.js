// The execute form: reads each input's control into Kestra's multipart form, asks
// POST /api/v1/executions/{ns}/{id}/validate as values change (dependsOn, SELECT expressions, messages at the
// field), and creates the execution with POST /api/v1/executions/{ns}/{id}, then opens it.
import { api, debounce, notice } from "/ui/static/app.js";

/** `2024-05-01T10:30` in the browser's zone ⇄ an ISO instant in UTC. */
function toUtc(local) {
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? local : date.toISOString();
}

function toLocal(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 19);
}

function zoneText() {
  const minutes = -new Date().getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const hours = String(Math.floor(Math.abs(minutes) / 60)).padStart(2, "0");
  const rest = String(Math.abs(minutes) % 60).padStart(2, "0");
  return `${Intl.DateTimeFormat().resolvedOptions().timeZone} (UTC${sign}${hours}:${rest})`;
}

/** An ARRAY typed one value per line becomes a JSON array; JSON typed as such is sent as it is. */
function arrayText(text) {
  if (text.trim().startsWith("[")) return text;
  return JSON.stringify(text.split("\n").map((line) => line.trim()).filter(Boolean));
}

/** What one field sends: a string, a File, or null when left empty (the server then applies the default). */
function valueOf(field, forCheck) {
  const control = field.querySelector("[id^=input-]");
  switch (field.dataset.widget) {
    case "boolean":
      return control.type === "checkbox" ? String(control.checked) : control.value || null;
    case "datetime":
      return control.value ? toUtc(control.value) : null;
    case "multiselect": {
      const chosen = [...control.selectedOptions].map((option) => option.value);
      const custom = field.querySelector(".input-custom-values");
      if (custom) chosen.push(...custom.value.split("\n").map((v) => v.trim()).filter(Boolean));
      return chosen.length ? JSON.stringify(chosen) : null;
    }
    case "file": {
      const file = control.files[0];
      if (!file) return null;
      return forCheck ? new File([], file.name) : file;  // a check needs the name, not the bytes
    }
    default:
      if (!control.value) return null;
      return field.dataset.type === "ARRAY" ? arrayText(control.value) : control.value;
  }
}

class ExecuteForm {
  constructor(form) {
    this.form = form;
    this.base = `${encodeURIComponent(form.dataset.namespace)}/${encodeURIComponent(form.dataset.flowId)}`;
    this.fields = new Map([...form.querySelectorAll(".input-field")].map((f) => [f.dataset.inputId, f]));
    this.touched = new Set();
    this.submitted = false;
    this.checkSoon = debounce(() => this.check(), 300);
    this.setUp();
    this.check();
  }

  setUp() {
    for (const control of this.form.querySelectorAll("input[data-utc]")) {
      if (control.dataset.utc) control.value = toLocal(control.dataset.utc);
      control.closest(".input-datetime").querySelector(".input-zone").textContent = `Your time zone: ${zoneText()}`;
    }
    const changed = (event) => {
      const field = event.target.closest(".input-field");
      if (!field) return;
      this.touched.add(field.dataset.inputId);
      this.checkSoon();
    };
    this.form.addEventListener("input", changed);
    this.form.addEventListener("change", changed);
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.submit(); });
    const rows = this.form.querySelector(".label-rows");
    this.form.querySelector(".label-add").addEventListener("click", () => {
      const row = this.form.querySelector("template.label-row").content.firstElementChild.cloneNode(true);
      rows.append(row);
      row.querySelector(".label-key").focus();
    });
    rows.addEventListener("click", (event) => {
      if (event.target.closest(".label-remove")) event.target.closest(".label-row").remove();
    });
  }

  formData(forCheck) {
    const data = new FormData();
    for (const [id, field] of this.fields) {
      if (field.hidden) continue;
      const value = valueOf(field, forCheck);
      if (value !== null) data.append(id, value);
    }
    return data;
  }

  labels() {
    const query = new URLSearchParams();
    for (const row of this.form.querySelectorAll(".label-rows .label-row")) {
      const key = row.querySelector(".label-key").value.trim();
      if (key) query.append("labels", `${key}:${row.querySelector(".label-value").value}`);
    }
    return query.toString();
  }

  async check() {
    try {
      const answer = await api("POST", `/api/v1/executions/${this.base}/validate`, this.formData(true));
      for (const item of answer.inputs) this.apply(item);
    } catch (error) {
      notice(error.message, true);
    }
  }

  /** The server's view of one input: shown or not (dependsOn), its choices, its message. */
  apply({ input, enabled, errors }) {
    const field = this.fields.get(input.id);
    if (!field) return;
    const wasHidden = field.hidden;
    field.hidden = !enabled;
    if (Array.isArray(input.values)) this.refreshChoices(field, input.values.map(String));
    const show = this.submitted || this.touched.has(input.id);
    this.showError(field, show && enabled ? errors.map((e) => e.message).join("\n") : "");
    if (wasHidden && enabled) this.checkSoon();  // a newly shown input may enable others in turn
  }

  refreshChoices(field, values) {
    const list = field.querySelector(".input-choices");
    if (!list) return;
    const current = [...list.querySelectorAll("option")].map((o) => o.value).filter(Boolean);
    if (current.join("\n") === values.join("\n")) return;
    const selected = new Set([...list.querySelectorAll("option")].filter((o) => o.selected).map((o) => o.value));
    const keep = [...list.querySelectorAll("option")].filter((o) => !o.value && list.tagName === "SELECT");
    list.replaceChildren(...keep, ...values.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      if (list.tagName === "SELECT") option.textContent = value;
      option.selected = selected.has(value);
      return option;
    }));
  }

  showError(field, message) {
    const slot = field.querySelector(".input-error");
    slot.textContent = message;
    slot.hidden = !message;
    field.classList.toggle("invalid", Boolean(message));
    field.querySelector("[id^=input-]").setAttribute("aria-invalid", message ? "true" : "false");
  }

  /** 4xx: each `Invalid input for \`id\`` message goes to its field; the rest to the notice. */
  showRefusal(error) {
    const messages = (error.data && error.data.errors) || [error.message];
    const loose = [];
    for (const message of messages) {
      const match = /for `([^`]+)`/.exec(message);
      const field = match && this.fields.get(match[1]);
      if (field && !field.hidden) this.showError(field, message);
      else loose.push(message);
    }
    notice(loose.length ? loose.join("\n") : "The execution was refused: see the fields marked.", true);
    const first = this.form.querySelector(".input-field.invalid [id^=input-]");
    if (first) first.focus();
  }

  async submit() {
    this.submitted = true;
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const query = this.labels();
      const path = `/api/v1/executions/${this.base}${query ? `?${query}` : ""}`;
      const execution = await api("POST", path, this.formData(false));
      const where = [execution.namespace, execution.flowId, execution.id].map(encodeURIComponent).join("/");
      window.location.assign(`/ui/executions/${where}`);
    } catch (error) {
      this.showRefusal(error);
      button.disabled = false;
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("[data-execute]")) new ExecuteForm(form);
});
