// kestractl UI: what every page shares. No framework, no build step; pages add their own module.

/** Dates in the browser's time zone: the server writes UTC `<time datetime>` elements. */
export function localTimes(root = document) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const date = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(date.getTime())) {
      el.textContent = date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
      el.title = el.getAttribute("datetime");
    }
  }
}

/** One line at the top of the page: what an action did or why it failed. */
export function notice(message, bad = false) {
  const el = document.getElementById("notice");
  if (!el) return;
  el.textContent = message;
  el.classList.toggle("bad", bad);
  el.hidden = !message;
}

/** A call to /api/v1; an error answer becomes an Error carrying the API's message (and its JSON body). */
export async function api(method, path, body = undefined, headers = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (body instanceof FormData || typeof body === "string") init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!response.ok) {
    const error = new Error((data && data.message) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

/** A server-rendered piece of a page (escaped by the server's templates), or null when the answer is an error. */
export async function fetchHtml(url) {
  const response = await fetch(url, { headers: { Accept: "text/html" } });
  return response.ok ? response.text() : null;
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/** Elements with `data-fragment="/ui/…"` are filled from that URL, and again every `data-refresh` seconds. */
export function fragments(root = document) {
  for (const el of root.querySelectorAll("[data-fragment]")) {
    const load = async () => {
      const html = await fetchHtml(el.dataset.fragment);
      if (html !== null) {
        el.innerHTML = html;
        localTimes(el);
        el.dispatchEvent(new CustomEvent("fragment:loaded", { bubbles: true }));
      }
    };
    if (!el.dataset.lazy) load();
    const every = Number(el.dataset.refresh || 0);
    if (every > 0) setInterval(() => { if (!document.hidden) load(); }, every * 1000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes();
  fragments();
});
