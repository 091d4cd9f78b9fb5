// Namespaces pages: KV entries (add, edit, delete) and namespace files (create, upload, edit, delete).
// Every change goes through /api/v1; the page is then reloaded from the server, which shows the result.
import { api, notice } from "/ui/static/app.js";

const enc = encodeURIComponent;

/** Asks through the page's <dialog id="confirm"> (never window.confirm); resolves true when confirmed. */
function confirmed(question) {
  const dialog = document.getElementById("confirm");
  dialog.querySelector("#confirm-text").textContent = question;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

function showError(el, message) {
  el.textContent = message;
  el.hidden = !message;
}

function closers(dialog) {
  for (const button of dialog.querySelectorAll("[data-action=close]")) {
    button.addEventListener("click", () => dialog.close());
  }
}

// ---- KV ----------------------------------------------------------------------------------------

const HINTS = {
  STRING: "Any text, stored as it is typed.",
  NUMBER: "A number, e.g. 42 or 3.14.",
  BOOLEAN: "true or false.",
  DATETIME: "A date and time with its offset, e.g. 2025-01-31T10:00:00Z.",
  DATE: "A date, e.g. 2025-01-31.",
  DURATION: "An ISO 8601 duration, e.g. PT1H30M or P2D.",
  JSON: "A JSON object, array or value, e.g. {\"a\": 1}.",
};
const DURATION = /^-?P(?=\d|T\d)(\d+(\.\d+)?[YMWD])*(T(\d+(\.\d+)?[HMS])+)?$/i;

/** The PUT body Kestra's KV API takes for a typed value: a JSON/ION literal (a string is quoted). */
export function kvBody(type, text) {
  const value = text.trim();
  switch (type) {
    case "NUMBER":
      if (value === "" || !Number.isFinite(Number(value))) throw new Error("Not a number: " + value);
      return value;
    case "BOOLEAN":
      if (!/^(true|false)$/i.test(value)) throw new Error("Expected true or false");
      return value.toLowerCase();
    case "DATETIME": {
      if (!/[zZ]|[+-]\d\d:?\d\d$/.test(value) || Number.isNaN(Date.parse(value))) {
        throw new Error("Expected a date and time with an offset, e.g. 2025-01-31T10:00:00Z");
      }
      return new Date(value).toISOString();
    }
    case "DATE":
      if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(value))) throw new Error("Expected a date such as 2025-01-31");
      return value;
    case "DURATION":
      if (!DURATION.test(value)) throw new Error("Expected an ISO 8601 duration such as PT1H");
      return JSON.stringify(value.toUpperCase());
    case "JSON":
      try { JSON.parse(value); } catch (error) { throw new Error("Invalid JSON: " + error.message); }
      return value;
    default:
      return JSON.stringify(text);
  }
}

/** A value read from the API as the text the form edits. */
function kvText(type, value) {
  if (type === "JSON") return JSON.stringify(value, null, 2);
  return value === null || value === undefined ? "" : String(value);
}

function setupKv(root) {
  const namespace = root.dataset.namespace;
  const base = `/api/v1/namespaces/${enc(namespace)}/kv/`;
  const dialog = document.getElementById("kv-dialog");
  const form = document.getElementById("kv-form");
  const error = document.getElementById("kv-error");
  const hint = () => { document.getElementById("kv-hint").textContent = HINTS[form.type.value] || ""; };
  form.type.addEventListener("change", hint);
  closers(dialog);

  const open = async (key) => {
    form.reset();
    showError(error, "");
    document.getElementById("kv-title").textContent = key ? `Edit ${key}` : "Add a key";
    form.key.readOnly = Boolean(key);
    if (key) {
      const found = await api("GET", base + enc(key));
      form.key.value = key;
      form.type.value = found.type;
      form.value.value = kvText(found.type, found.value);
      const button = root.querySelector(`button[data-action=edit][data-key="${CSS.escape(key)}"]`);
      form.description.value = button ? button.dataset.description : "";
      // What is left of its TTL, so that saving an edit keeps the key expiring when it would have.
      const left = Math.floor((Date.parse(button?.dataset.expires || "") - Date.now()) / 1000);
      if (left > 0) form.ttl.value = `PT${left}S`;
    }
    hint();
    dialog.showModal();
    (key ? form.value : form.key).focus();
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = form.key.value.trim();
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/.test(key)) {
      showError(error, "A key starts with a letter or digit, then letters, digits, '.', '_' or '-'.");
      return;
    }
    try {
      const headers = { "Content-Type": "application/json" };
      if (form.ttl.value.trim()) headers.ttl = form.ttl.value.trim();
      if (form.description.value.trim()) headers.description = form.description.value.trim();
      await api("PUT", base + enc(key), kvBody(form.type.value, form.value.value), headers);
      dialog.close();
      location.reload();
    } catch (failure) {
      showError(error, failure.message);
    }
  });

  root.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const key = button.dataset.key;
    try {
      if (button.dataset.action === "add") await open(null);
      else if (button.dataset.action === "edit") await open(key);
      else if (button.dataset.action === "delete" && await confirmed(`Delete the key ${key}?`)) {
        await api("DELETE", base + enc(key));
        location.reload();
      }
    } catch (failure) {
      notice(failure.message, true);
    }
  });
}

// ---- files -------------------------------------------------------------------------------------

function setupFiles(root) {
  const { namespace, path, folder, kind } = root.dataset;
  const apiBase = `/api/v1/namespaces/${enc(namespace)}/files`;
  const page = (target) => `${location.pathname}${target ? "?path=" + enc(target) : ""}`;
  const join = (dir, name) => (dir ? `${dir}/${name}` : name);

  const upload = async (target, blob, name) => {
    const body = new FormData();
    body.append("fileContent", blob, name);
    await api("POST", `${apiBase}?path=${enc(target)}`, body);
  };

  /** Whether a file or folder is there already (a new file must not overwrite one). */
  const exists = async (target) => {
    try {
      await api("GET", `${apiBase}/stats?path=${enc(target)}`);
      return true;
    } catch (failure) {
      if (failure.status === 404) return false;
      throw failure;
    }
  };

  const dialog = document.getElementById("new-dialog");
  const form = document.getElementById("new-form");
  const error = document.getElementById("new-error");
  closers(dialog);
  let creating = "file";
  const openNew = (what) => {
    creating = what;
    form.reset();
    showError(error, "");
    document.getElementById("new-title").textContent = what === "file" ? "New file" : "New folder";
    form.path.value = folder ? folder + "/" : "";
    dialog.showModal();
    form.path.focus();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const target = form.path.value.trim().replace(/^\/+|\/+$/g, "");
    if (!target) return showError(error, "Give the path of the new " + creating);
    try {
      if (creating === "file" && await exists(target)) return showError(error, `/${target} already exists`);
      if (creating === "file") await upload(target, new Blob([""]), target.split("/").pop());
      else await api("POST", `${apiBase}/directory?path=${enc(target)}`);
      location.assign(page(target));
    } catch (failure) {
      showError(error, failure.message);
    }
  });

  document.getElementById("file-upload").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      const target = join(folder, file.name);
      await upload(target, file, file.name);
      location.assign(page(file.name.toLowerCase().endsWith(".zip") ? folder : target));
    } catch (failure) {
      notice(failure.message, true);
    }
  });

  const editor = document.getElementById("file-edit");
  const view = document.getElementById("file-view");
  editor?.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await upload(path, new Blob([editor.content.value], { type: "text/plain" }), path.split("/").pop());
      location.assign(page(path));
    } catch (failure) {
      notice(failure.message, true);
    }
  });
  const editing = (on) => {
    editor.hidden = !on;
    view.hidden = on;
    if (on) editor.content.focus();
  };

  root.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    try {
      if (action === "new-file" || action === "new-folder") openNew(action === "new-file" ? "file" : "folder");
      else if (action === "edit") editing(true);
      else if (action === "cancel-edit") editing(false);
      else if (action === "delete" && await confirmed(`Delete the ${kind} /${path}?`)) {
        await api("DELETE", `${apiBase}?path=${enc(path)}`);
        location.assign(page(""));  // emptied parent folders are gone too
      }
    } catch (failure) {
      notice(failure.message, true);
    }
  });
}

const kv = document.getElementById("kv");
if (kv) setupKv(kv);
const files = document.getElementById("files");
if (files) setupFiles(files);
