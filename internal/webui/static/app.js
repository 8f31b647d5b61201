// The trace browser: one canvas at a time, read through the /v1 API with
// an admin token (dev hands the page its own; serve's page asks for one
// and keeps it in sessionStorage). Every value a trace holds is shown with
// textContent, never parsed as HTML.

const $ = (sel) => document.querySelector(sel);
const state = { mode: "serve", token: "", canvas: "", now: null, selected: "" };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "left") e.style.left = v; // CSSOM: the page's CSP refuses style attributes
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function status(msg, isError = false) {
  const s = $("#status");
  s.textContent = msg;
  s.className = isError ? "error" : "";
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + state.token, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    const msg = data?.error?.message || r.status + " " + r.statusText;
    throw new Error(method + " " + path + ": " + msg);
  }
  return { data, headers: r.headers };
}

const canvasPath = () => "/v1/canvases/" + encodeURIComponent(state.canvas);
const fmt = (t) => (t ? new Date(t).toISOString().replace(".000Z", "Z") : "");

// kind is the class a trace is drawn with: why it is kept, strongest first.
function kind(s) {
  const k = s.keptBecause || [];
  if (s.held || k.includes("held")) return "held";
  if (k.includes("latest")) return "latest";
  if (k.includes("recent")) return "recent";
  return "expiring";
}

function describe(s) {
  const k = s.keptBecause || [];
  const why = k.length ? "kept: " + k.join(", ") : "kept by nothing";
  const until = s.expiresAfter ? "; may expire after " + fmt(s.expiresAfter) : "; not expiring while " + (k.includes("held") ? "held" : "latest");
  return why + (k.length || s.expiresAfter ? until : "");
}

async function loadClock() {
  if (state.mode !== "dev") return;
  try {
    const r = await fetch("/_emulator/clock");
    const c = await r.json();
    state.now = new Date(c.now);
    $("#clock-now").textContent = fmt(c.now);
  } catch (e) {
    status("emulator clock: " + e.message, true);
  }
}

async function advance(by) {
  status("advancing the clock by " + by + "…");
  const r = await fetch("/_emulator/clock/advance?by=" + encodeURIComponent(by), { method: "POST", headers: { "X-Tracegw-Emulator": "1" } });
  const c = await r.json();
  if (!r.ok) throw new Error(c?.error?.message || r.statusText);
  $("#advance-result").textContent = "+" + by + ": renewed " + c.renewed + ", deleted " + c.deleted + ", notifications " + c.notificationsConsumed;
  await loadClock();
  await loadCanvas();
}

async function rememberCanvas(c) {
  const list = JSON.parse(localStorage.getItem("tracegw.canvases") || "[]").filter((x) => x !== c);
  list.unshift(c);
  localStorage.setItem("tracegw.canvases", JSON.stringify(list.slice(0, 10)));
  return renderCanvases();
}

// renderCanvases lists the canvases that hold traces (GET /v1/canvases,
// admin) and the ones opened in this browser, which a token that cannot
// list canvases still has.
async function renderCanvases() {
  const recent = JSON.parse(localStorage.getItem("tracegw.canvases") || "[]");
  let all = [];
  let note = "";
  if (state.token) {
    try {
      const { data } = await api("GET", "/v1/canvases?limit=100");
      all = data.canvases;
      if (data.nextCursor) note = " (the first 100)";
    } catch (e) {
      note = " (cannot list canvases: " + e.message + ")";
    }
  }
  const button = (c) => el("button", { type: "button", "data-canvas": c, class: c === state.canvas ? "selected" : "", onclick: () => openCanvas(c) }, c);
  const others = recent.filter((c) => !all.includes(c));
  $("#canvases").replaceChildren(
    el("span", { class: "muted" }, "canvases with traces" + note + ": "), ...(all.length ? all.map(button) : [el("span", { class: "muted" }, "none ")]),
    ...(others.length ? [el("span", { class: "muted" }, " opened here: "), ...others.map(button)] : []),
  );
}

async function openCanvas(c) {
  state.canvas = c.trim().toLowerCase();
  $("#canvas-input").value = state.canvas;
  location.hash = "canvas=" + state.canvas;
  state.selected = "";
  $("#detail").hidden = true;
  await loadCanvas();
  await rememberCanvas(state.canvas);
}

async function loadCanvas() {
  if (!state.canvas) return;
  status("reading canvas " + state.canvas + "…");
  try {
    const path = canvasPath();
    const [search, holds, policy] = await Promise.all([
      api("GET", path + "/traces?limit=1000"),
      api("GET", path + "/holds"),
      api("GET", path + "/policy").catch(() => ({ data: null })),
    ]);
    const tlids = new Set();
    for (const s of search.data.traces) {
      tlids.add(s.rootTLID);
      for (const t of s.latestFor || []) tlids.add(t);
    }
    const sorted = [...tlids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)).slice(0, 1000);
    let lists = {};
    if (sorted.length) lists = (await api("POST", path + "/recent-traces", { tlids: sorted, limit: 100 })).data.toplevels;
    const held = new Map(holds.data.holds.map((h) => [h.traceID, h]));
    renderOverview(search.data, held, policy.data);
    renderToplevels(sorted, lists, held);
    status(search.data.traces.length + " traces in " + sorted.length + " toplevels");
    if (state.selected) await showTrace(state.selected);
  } catch (e) {
    status(e.message, true);
  }
}

function renderOverview(page, held, policy) {
  const parts = [page.traces.length + (page.nextCursor ? "+" : "") + " traces", held.size + " held"];
  if (policy) parts.push("keep " + policy.keepPerToplevel + " per toplevel" + (policy.isDefault ? " (server default)" : " (this canvas)"));
  $("#overview").replaceChildren(el("span", {}, "canvas " + state.canvas + ": " + parts.join(", ")));
}

function renderToplevels(tlids, lists, held) {
  const now = state.now ? state.now.getTime() : Date.now();
  const sections = tlids.map((tlid) => {
    const list = lists[tlid] || [];
    const times = list.map((s) => new Date(s.timestamp).getTime());
    const from = Math.min(now - 3600e3, ...times);
    const span = Math.max(now - from, 1);
    const pos = (t) => (100 * (t - from)) / span;
    const ticks = [];
    for (let d = 1; d <= 60; d++) {
      const t = now - d * 86400e3;
      if (t < from) break;
      if (d <= 10 || d % 7 === 0) ticks.push(el("span", { class: "tick", left: pos(t) + "%" }, "-" + d + "d"));
    }
    const marks = list.map((s) =>
      el("button", { type: "button", class: "mark " + kind(s), left: pos(new Date(s.timestamp).getTime()) + "%",
        title: fmt(s.timestamp) + " — " + describe(s), "aria-label": "trace " + s.traceID, onclick: () => showTrace(s.traceID) }));
    const chips = list.map((s) =>
      el("button", { type: "button", class: "trace " + kind(s) + (s.traceID === state.selected ? " selected" : ""),
        "data-trace-id": s.traceID, "data-kept": (s.keptBecause || []).join(" "), "data-held": String(s.held || held.has(s.traceID)),
        "data-expires-after": s.expiresAfter || "", title: describe(s), onclick: () => showTrace(s.traceID) },
        fmt(s.timestamp),
        ...(s.keptBecause || []).map((k) => el("span", { class: "badge " + k }, k)),
        s.expiresAfter ? el("span", { class: "muted" }, "expires after " + fmt(s.expiresAfter)) : ""));
    return el("section", { class: "toplevel", "data-tlid": tlid },
      el("h2", {}, "toplevel " + tlid + " ", el("span", { class: "muted" }, list.length + " traces, newest right")),
      el("div", { class: "track" }, ...ticks, ...marks),
      el("div", { class: "chips" }, ...chips));
  });
  $("#toplevels").replaceChildren(...(sections.length ? sections : [el("p", { class: "muted" }, "no traces")]));
}

// tree renders a JSON value as nested <details>, collapsed past depth 1.
function tree(v, depth = 0, key) {
  const label = key === undefined ? [] : [el("span", { class: "key" }, key), ": "];
  if (v !== null && typeof v === "object") {
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
    const d = el("details", depth < 2 ? { open: "" } : {},
      el("summary", {}, ...label, Array.isArray(v) ? "[" + v.length + "]" : "{" + entries.length + "}"));
    for (const [k, x] of entries) d.append(tree(x, depth + 1, k));
    return d;
  }
  const cls = typeof v === "string" ? "str" : typeof v === "number" ? "num" : "lit";
  return el("div", { class: "leaf" }, ...label, el("span", { class: cls }, JSON.stringify(v)));
}

async function showTrace(id) {
  state.selected = id;
  history.replaceState(null, "", "#canvas=" + state.canvas + "&trace=" + id); // a link to this trace
  for (const b of document.querySelectorAll(".trace")) b.classList.toggle("selected", b.dataset.traceId === id);
  const panel = $("#detail");
  panel.hidden = false;
  try {
    const path = canvasPath() + "/traces/" + id;
    const [{ data: t, headers }, { data: hs }] = await Promise.all([api("GET", path), api("GET", canvasPath() + "/holds")]);
    const hold = hs.holds.find((h) => h.traceID === id);
    const kept = headers.get("X-Kept-Because") || "nothing";
    const rows = [["trace", id], ["root", t.rootTLID], ["toplevels", (t.tlids || []).join(", ")], ["timestamp", fmt(t.timestamp)],
      ["generation", (headers.get("ETag") || "").replaceAll('"', "")], ["kept because", kept],
      ["latest for", headers.get("X-Latest-For") || "—"], ["may expire after", headers.get("X-Expires-After") || "not while held or latest"]];
    if (hold) rows.push(["held", "since " + fmt(hold.heldAt) + (hold.until ? " until " + fmt(hold.until) : "") + (hold.heldBy ? " by " + hold.heldBy : "") + (hold.reason ? ": " + hold.reason : "")]);
    const form = el("fieldset", { id: "hold-form" }, el("legend", {}, hold ? "held" : "hold this trace"));
    if (hold) {
      form.append(el("button", { type: "button", id: "release-btn", onclick: () => act(() => api("DELETE", path + "/hold")) }, "Release"));
    } else {
      const reason = el("input", { id: "hold-reason", placeholder: "reason (optional)" });
      const until = el("input", { id: "hold-until", placeholder: "until: 3d, 72h or an RFC 3339 time (optional)" });
      form.append(reason, until, el("button", { type: "button", id: "hold-btn", onclick: () => {
        const body = {};
        if (reason.value) body.reason = reason.value;
        if (until.value) body.until = until.value;
        return act(() => api("PUT", path + "/hold", body));
      } }, "Hold"));
    }
    panel.replaceChildren(
      el("h2", {}, "trace"), el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])), form,
      el("h2", {}, "input"), el("div", { class: "tree", id: "input-tree" }, ...(t.input || []).map(([name, v]) => tree(v, 1, name))),
      el("h2", {}, "function results (" + (t.functionResults || []).length + ")"),
      el("div", { class: "tree", id: "results-tree" }, ...(t.functionResults || []).map((r) =>
        tree(r.value, 1, r.fnName + " @" + r.tlid + "/" + r.exprID + " (" + r.argHash + ")"))),
    );
  } catch (e) {
    panel.replaceChildren(el("p", { class: "muted" }, e.message));
  }
}

async function act(f) {
  try {
    await f();
    await loadCanvas();
  } catch (e) {
    status(e.message, true);
  }
}

async function start() {
  try {
    const cfg = await (await fetch("/ui/config.json")).json();
    state.mode = cfg.mode || "serve";
    if (cfg.token) state.token = cfg.token;
  } catch {
    state.mode = "serve";
  }
  if (state.mode !== "dev") {
    state.token = sessionStorage.getItem("tracegw.token") || "";
    $("#auth").hidden = false;
  } else {
    $("#clock").hidden = false;
    await loadClock();
  }
  $("#token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("#token-input").value.trim();
    sessionStorage.setItem("tracegw.token", state.token);
    $("#token-input").value = "";
    status("token set");
    renderCanvases();
    loadCanvas();
  });
  $("#canvas-form").addEventListener("submit", (e) => {
    e.preventDefault();
    openCanvas($("#canvas-input").value);
  });
  $("#refresh-btn").addEventListener("click", async () => { await loadClock(); await loadCanvas(); });
  for (const b of document.querySelectorAll("[data-advance]")) {
    b.addEventListener("click", () => advance(b.dataset.advance).catch((e) => status(e.message, true)));
  }
  await renderCanvases();
  const m = location.hash.match(/canvas=([0-9a-fA-F-]{36})/);
  const tm = location.hash.match(/trace=([0-9a-fA-F-]{36})/);
  if (m) await openCanvas(m[1]);
  if (m && tm) await showTrace(tm[1].toLowerCase());
  document.body.dataset.ready = "true";
}

start();
