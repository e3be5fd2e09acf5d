"use strict";
// Operator dashboard: polls /v1/health and /v1/health/history on this node; draws with inline SVG.
const $ = (id) => document.getElementById(id);
const COLORS = ["#0b5cad", "#b3261e", "#1b7f3b", "#9a6700", "#6f42c1", "#0e7c86", "#c2410c", "#475569"];
// Free text a member signed (a refused op's key, …) is shown by the rule of ADR 15, like the PoC page's safe().
const FORBIDDEN = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]|[\u{D800}-\u{DFFF}]/gu;
function safe(t) { return String(t).replace(FORBIDDEN, "\ufffd"); }
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = safe(text); if (cls) e.className = cls; return e; }

async function api(path) {
  const r = await fetch(path, { credentials: "same-origin", headers: { "Accept": "application/json" } });
  if (r.status === 401 || r.status === 403) { $("signin").classList.remove("hidden"); $("dash").classList.add("hidden"); throw new Error("auth"); }
  if (!r.ok) throw new Error(r.statusText);
  return r.json();
}

async function session(token) {  // GET /v1/session: always 200 (a refused token is not a failed request in the console)
  const headers = { "Accept": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch("/v1/session", { credentials: "same-origin", headers, cache: "no-store" });
  if (!r.ok) throw new Error(r.statusText);
  return r.json();
}
const NOT_OPERATOR = "This is a Point of Contact token: it opens the directory (/), not the dashboard. Ask the UN operator for an operator token.";
function refused(text) { $("signin").classList.remove("hidden"); $("dash").classList.add("hidden"); $("signin-error").textContent = text; }

async function signIn() {
  const token = $("token").value.trim().replace(/^Bearer\s+/i, "").replace(/\s+/g, "");
  if (!token) return refused("Sign-in refused: paste an operator token first.");
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token) || token.length > 8000) {
    return refused("Sign-in refused: this is not a token. Paste the whole operator token as `pocsync token issue --operator` printed it (it begins with “eyJ”).");
  }
  let s;
  try { s = await session(token); } catch (e) { return refused("Sign-in failed: the node did not answer (" + e.message + ")."); }
  if (!s.signed_in) return refused("Sign-in refused: " + (s.detail || s.reason));
  if (s.scope !== "health") return refused(NOT_OPERATOR);
  const r = await fetch("/v1/session", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }) });
  if (!r.ok) { const p = await r.json().catch(() => ({})); return refused("Sign-in refused: " + (p.detail || r.statusText)); }
  $("token").value = ""; $("signin-error").textContent = ""; start();
}

function age(s) { if (s === null || s === undefined) return "—"; return s < 120 ? Math.round(s) + " s" : s < 7200 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h"; }
function when(t) {  // unix seconds (or an ISO string) → local date and time
  if (t === null || t === undefined || t === "") return "—";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  if (isNaN(d)) return String(t);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleString([], { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}
function emptyRow(tbody, cols, text) { const tr = el("tr"); const td = el("td", text, "muted"); td.colSpan = cols; tr.append(td); tbody.append(tr); }
const VERDICT = { same: ["same heads and digest", "ok"], behind: [null, "warn"], ahead: [null, "warn"], diverged: ["DIVERGED: same change-sets, another view", "bad"] };
function compared(a) {
  if (a.state === "behind") return "lacks " + a.behind + " change-set" + (a.behind === 1 ? "" : "s") + " this node holds";
  if (a.state === "ahead") return "holds " + a.ahead + " change-set" + (a.ahead === 1 ? "" : "s") + " this node lacks";
  return (VERDICT[a.state] || [a.state])[0];
}

function statusPill(v) {
  if (v.status === "self") return el("span", "this node", "pill ok");
  if (v.status === "online") return el("span", "online", "pill ok");
  if (v.status === "offline") return el("span", "offline" + (v.offline_since ? " since " + when(v.offline_since) : ""), "pill bad");
  return el("span", v.status === "never seen" ? "never seen" : v.status, "pill warn");
}

function render(h, hist) {
  $("who").textContent = "node " + h.node;
  const alarms = $("alarms"); alarms.replaceChildren();
  const ann = h.announcements || {};
  for (const e of h.equivocations) alarms.append(el("div", "EQUIVOCATION: " + e.origin + " signed two change-sets with seq " + e.seq + " — its later edits have no effect until the root declares a chain restart.", "alarm"));
  for (const [n, a] of Object.entries(ann)) if (a.state === "diverged") alarms.append(el("div", "DIVERGED: " + n + " holds the same change-sets as this node but announces another view digest.", "alarm"));
  if (h.signing_blocked) alarms.append(el("div", "This node must not sign: " + h.signing_blocked, "alarm"));
  const nodes = $("nodes"); nodes.replaceChildren();
  for (const [o, v] of Object.entries(h.origins)) {
    const c = el("div", undefined, "node node-card"); c.dataset.node = o; c.dataset.status = v.status;
    c.append(el("b", o), el("span", " " + (v.role || ""), "muted"), el("br"), statusPill(v), el("br"));
    if (v.behind) c.append(el("span", "behind by " + v.behind + " change-set" + (v.behind === 1 ? "" : "s"), "bad behind"), el("br"));
    c.append(el("span", "head " + v.head_seq + (v.lag ? " · this node lacks " + v.lag : ""), v.lag ? "warn" : ""), el("br"),
      el("span", "last change-set " + age(v.last_changeset_age_s) + (v.last_changeset_age_s !== null ? " ago" : ""), "muted"), el("br"),
      el("span", v.status === "self" ? "" : "last contact " + (v.last_contact_age_s === null ? "never" : age(v.last_contact_age_s) + " ago" + (v.contact_via ? " (" + v.contact_via + ")" : "")), "muted"));
    if (v.status === "offline" && v.last_error) { const e = el("div", "last error: " + (v.last_error.length > 90 ? v.last_error.slice(0, 90) + "…" : v.last_error), "muted"); e.title = v.last_error; c.append(e); }
    nodes.append(c);
  }
  const db = $("digests").querySelector("tbody"); db.replaceChildren();
  const mine = el("tr"); mine.append(el("td", h.node + " (this node)"), el("td", h.digest.slice(0, 23) + "…"), el("td", "now"), el("td", "")); db.append(mine);
  const entries = Object.entries(ann);
  for (const [n, a] of entries) {
    const tr = el("tr"); tr.dataset.node = n; const d = el("td", a.digest.slice(0, 23) + "…"); d.title = a.digest;
    tr.append(el("td", n), d, el("td", age(a.age_s) + " ago" + (a.via ? " (" + a.via + ")" : "")), el("td", compared(a), (VERDICT[a.state] || [0, ""])[1])); db.append(tr);
  }
  if (!entries.length) emptyRow(db, 4, "No other node has announced its heads to this node yet (announcements arrive with pulls, pokes and MQTT).");
  $("verdict").textContent = h.converged ? "Converged: every node that announced its heads holds the same change-sets and view as this node."
    : "Not converged yet: see the rows below (lag resolves by itself; DIVERGED does not).";
  const days = Math.floor(h.manifest.expires_in_s / 86400), hours = Math.floor((h.manifest.expires_in_s % 86400) / 3600);
  $("manifest").replaceChildren(el("span", "Version " + h.manifest.version + " — expires in " + days + " days " + hours + " h "),
    el("span", h.manifest.warning || "", h.manifest.warning ? "bad" : ""),
    el("span", " — features enabled: " + ((h.manifest.features || []).join(", ") || "none")),
    el("br"), el("span", "Software: pocsync " + (h.software ? h.software.version + " (features: " + (h.software.features.join(", ") || "none") + ")" : "?")),
    ...(h.manifest.refused ? [el("br"), el("span", "Manifest v" + h.manifest.refused.version + " refused: it enables "
      + h.manifest.refused.missing_features.join(", ") + ", which this software lacks — upgrade pocsync", "bad")] : []));
  const sb = $("sources").querySelector("tbody"); sb.replaceChildren();
  for (const [n, v] of Object.entries(h.sources || {})) {
    const tr = el("tr"); const err = v.error ? v.error.reason + ": " + v.error.message : "";
    const reasons = Object.entries(v.invalid_reasons || {}).map(([r, c]) => r + " ×" + c).join(", ");
    tr.append(el("td", n), el("td", v.adapter), el("td", v.last_run ? new Date(v.last_run * 1000).toLocaleString() : "not yet"),
      el("td", v.result + (err ? " — " + err : ""), v.result === "error" ? "bad" : "ok"),
      el("td", v.records + " (" + v.valid + " valid, " + v.skipped + " skipped)"), el("td", v.puts + " put, " + v.deletes + " delete"),
      el("td", v.invalid + (reasons ? " (" + reasons + ")" : ""), v.invalid ? "warn" : ""));
    sb.append(tr);
  }
  if (!sb.children.length) { const tr = el("tr"); const td = el("td", "none configured ([[sources]] in sync.toml)", "muted"); td.colSpan = 7; tr.append(td); sb.append(tr); }
  const fb = $("feed").querySelector("tbody"); fb.replaceChildren();
  for (const f of hist.feed) { const tr = el("tr"); tr.append(el("td", when(f.at)), el("td", f.what), el("td", f.origin || ""), el("td", f.seq ?? ""), el("td", f.reason)); fb.append(tr); }
  if (!hist.feed.length) emptyRow(fb, 5, "Nothing quarantined or refused: every change-set this node received was applied.");
  drawChart(hist.lag);
}

function svgEl(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = safe(text);
  return e;
}

function niceMax(v) { if (v <= 4) return 4; const p = Math.pow(10, Math.floor(Math.log10(v))); for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p; return 10 * p; }

function drawChart(lag) {
  const svg = $("chart"), W = svg.clientWidth || 900, H = 220, L = 44, R = 12, T = 10, B = 26;
  svg.replaceChildren();
  const now = Date.now() / 1000, t0 = now - 3600;
  const origins = Object.keys(lag);
  let maxV = 0; for (const o of origins) for (const [, v] of lag[o]) maxV = Math.max(maxV, v);
  const top = niceMax(maxV);
  const x = (t) => L + (W - L - R) * Math.max(0, t - t0) / 3600, y = (v) => H - B - (H - T - B) * v / top;
  for (let i = 0; i <= 4; i++) {  // horizontal grid with change-set counts
    const v = top * i / 4, yy = y(v).toFixed(1);
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: yy, y2: yy, stroke: i ? "#e3e8ee" : "#8a96a3" }));
    svg.append(svgEl("text", { x: L - 6, y: (+yy + 4).toFixed(1), "text-anchor": "end", "font-size": "11", fill: "#5b6b7c" }, String(Math.round(v * 10) / 10)));
  }
  for (let m = 0; m <= 60; m += 10) {  // time axis: a tick every 10 minutes, local time
    const t = t0 + m * 60, xx = x(t).toFixed(1);
    svg.append(svgEl("line", { x1: xx, x2: xx, y1: T, y2: H - B, stroke: "#eef1f5" }));
    const label = m === 60 ? "now" : new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.append(svgEl("text", { x: xx, y: H - B + 16, "text-anchor": m === 0 ? "start" : m === 60 ? "end" : "middle", "font-size": "11", fill: "#5b6b7c" }, label));
  }
  const legend = $("legend"); legend.replaceChildren();
  if (!origins.length || !origins.some((o) => lag[o].length)) {
    svg.append(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "font-size": "13", fill: "#5b6b7c" }, "No samples yet: the node records each origin's lag every 10 s."));
    return;
  }
  if (maxV === 0) svg.append(svgEl("text", { x: (L + W - R) / 2, y: y(top / 2), "text-anchor": "middle", "font-size": "13", fill: "#1b7f3b" }, "No lag in this period: this node held every change-set announced to it."));
  origins.forEach((o, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = [];  // a step line: a lag holds until the next sample
    let prev = null;
    for (const [t, v] of lag[o]) { if (t < t0) continue; if (prev !== null) pts.push(`${x(t).toFixed(1)},${y(prev).toFixed(1)}`); pts.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`); prev = v; }
    if (pts.length) svg.append(svgEl("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": "2", "stroke-opacity": "0.85" }));
    const last = lag[o].length ? lag[o][lag[o].length - 1][1] : 0;
    const s = el("span", "■ " + o + " (now " + last + ")   "); s.style.color = color; legend.append(s);
  });
}

async function refresh() {
  try { const [h, hist] = await Promise.all([api("/v1/health"), api("/v1/health/history")]); render(h, hist); } catch (e) { /* shown by api() */ }
}

async function start() {
  let s;
  try { s = await session(); } catch (e) { return refused("The node did not answer (" + e.message + ")."); }
  if (!s.signed_in) { $("signin").classList.remove("hidden"); $("dash").classList.add("hidden"); return; }
  if (s.scope !== "health") return refused(NOT_OPERATOR);
  $("signin").classList.add("hidden"); $("dash").classList.remove("hidden"); $("signout").classList.remove("hidden");
  await refresh(); setInterval(refresh, 5000);
}
$("signin-btn").addEventListener("click", signIn);
$("signout").addEventListener("click", async () => { await fetch("/v1/session", { method: "DELETE", credentials: "same-origin" }); location.reload(); });
start();
