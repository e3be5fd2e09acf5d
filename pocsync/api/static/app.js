"use strict";
// The PoC page: talks only to this node's API, with the HttpOnly session cookie.
const $ = (id) => document.getElementById(id);
const FIELDS = ["organisation", "position", "person", "emails", "phones", "available_24_7", "timezone", "languages",
  "networks", "secure_channels", "notes"];

// Free text may hold what docs/adr/0013 allows; whatever a member node signed, the page shows controls,
// separators, bidi overrides/isolates and lone surrogates as U+FFFD (notes keep their line feeds).
const FORBIDDEN = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]|[\u{D800}-\u{DFFF}]/gu;
function safe(t) { return String(t).replace(FORBIDDEN, "\ufffd"); }
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = safe(text); if (cls) e.className = cls; return e; }
function show(id) { for (const s of ["signin", "directory", "entry"]) $(s).classList.toggle("hidden", s !== id); }
function fmt(v) {
  if (v === undefined || v === null) return "";
  if (Array.isArray(v)) return v.map((x) => typeof x === "object" ? JSON.stringify(x) : x).join(", ");
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

async function api(path, opts = {}) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin", headers: { "Accept": "application/json" } }, opts));
  if (r.status === 401) { show("signin"); throw new Error("signed out"); }
  if (!r.ok) { const p = await r.json().catch(() => ({})); throw new Error(p.detail || p.title || r.statusText); }
  return r.json();
}

async function signIn() {
  $("signin-error").textContent = "";
  const r = await fetch("/v1/session", { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: $("token").value.trim() }) });
  if (!r.ok) { const p = await r.json().catch(() => ({})); $("signin-error").textContent = "Sign-in refused: " + (p.detail || r.statusText); return; }
  $("token").value = "";
  await start();
}

async function start() {
  try {
    const me = await api("/v1/whoami");
    if (me.scope !== "directory") { $("signin-error").textContent = "This token is not a PoC token."; show("signin"); return; }
    $("who").textContent = "Signed in as " + me.subject + " · node " + me.node;
    $("signout").classList.remove("hidden");
    show("directory");
    await search();
  } catch (e) { show("signin"); }
}

async function search() {
  const p = new URLSearchParams();
  for (const k of ["q", "state", "kind", "network"]) { const v = $(k).value.trim(); if (v) p.set(k, v); }
  p.set("per_page", "500");
  const data = await api("/v1/entries?" + p.toString());
  const tb = $("results").querySelector("tbody"); tb.replaceChildren();
  for (const row of data.entries) {
    const e = row.entry, tr = el("tr", undefined, "link");
    tr.append(el("td", e.state), el("td", e.kind), el("td", e.organisation), el("td", fmt(e.position)),
      el("td", fmt((e.emails || []).concat(e.phones || []))), el("td", row.provenance.origin));
    tr.addEventListener("click", () => openEntry(row.key));
    tb.append(tr);
  }
  $("count").textContent = data.total + " entr" + (data.total === 1 ? "y" : "ies");
}

async function openEntry(key) {
  const d = await api("/v1/entries/" + key);
  $("entry-title").textContent = safe(key + " — " + d.entry.organisation);
  const tb = $("entry-fields").querySelector("tbody"); tb.replaceChildren();
  for (const f of FIELDS) if (d.entry[f] !== undefined) { const tr = el("tr"); tr.append(el("th", f.replace(/_/g, " ")), el("td", fmt(d.entry[f]))); tb.append(tr); }
  $("entry-vcard").href = "/v1/export?format=vcard&key=" + encodeURIComponent(key);
  const p = d.provenance;
  $("provenance").textContent = safe("Winning version from " + p.origin + ", change-set " + p.cs_id + " #" + p.index + ", hlc " + p.hlc + ", entered by " + p.author + ".");
  const vb = $("versions").querySelector("tbody"); vb.replaceChildren();
  for (const v of d.versions) { const tr = el("tr"); tr.append(el("td", v.origin), el("td", v.op), el("td", v.hlc), el("td", v.author)); vb.append(tr); }
  const div = $("divergences"); div.replaceChildren();
  const fields = Object.keys(d.divergent_fields || {});
  if (!fields.length) div.append(el("p", "All directories that list this PoC agree.", "ok"));
  else {
    const t = el("table"); const h = el("tr"); h.append(el("th", "Field"), el("th", "Values by directory")); t.append(h);
    for (const f of fields) { const tr = el("tr"); tr.append(el("td", f), el("td", Object.entries(d.divergent_fields[f]).map(([o, v]) => o + ": " + fmt(v)).join(" | "))); t.append(tr); }
    div.append(el("p", "The directories disagree on these fields; the secretariats have been told.", "warn"), t);
  }
  show("entry");
}

$("signin-btn").addEventListener("click", signIn);
$("search-btn").addEventListener("click", () => search().catch(() => {}));
$("q").addEventListener("keydown", (e) => { if (e.key === "Enter") search().catch(() => {}); });
$("back").addEventListener("click", (e) => { e.preventDefault(); show("directory"); });
$("signout").addEventListener("click", async () => { await fetch("/v1/session", { method: "DELETE", credentials: "same-origin" }); location.reload(); });
start();
