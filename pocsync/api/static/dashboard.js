"use strict";
// Operator dashboard: polls /v1/health and /v1/health/history on this node; draws with inline SVG.
const $ = (id) => document.getElementById(id);
const COLORS = ["#0b5cad", "#b3261e", "#1b7f3b", "#9a6700", "#6f42c1", "#0e7c86", "#c2410c", "#475569"];
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }

async function api(path) {
  const r = await fetch(path, { credentials: "same-origin", headers: { "Accept": "application/json" } });
  if (r.status === 401 || r.status === 403) { $("signin").classList.remove("hidden"); $("dash").classList.add("hidden"); throw new Error("auth"); }
  if (!r.ok) throw new Error(r.statusText);
  return r.json();
}

async function signIn() {
  const r = await fetch("/v1/session", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: $("token").value.trim() }) });
  if (!r.ok) { const p = await r.json().catch(() => ({})); $("signin-error").textContent = "Sign-in refused: " + (p.detail || r.statusText); return; }
  $("token").value = ""; start();
}

function age(s) { if (s === null || s === undefined) return "—"; return s < 120 ? Math.round(s) + " s" : s < 7200 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h"; }

function render(h, hist) {
  $("who").textContent = "node " + h.node;
  const alarms = $("alarms"); alarms.replaceChildren();
  for (const e of h.equivocations) alarms.append(el("div", "EQUIVOCATION: " + e.origin + " signed two change-sets with seq " + e.seq + " — its later edits have no effect until the root declares a chain restart.", "alarm"));
  if (!h.converged) alarms.append(el("div", "Not converged: another node announces a different view digest.", "alarm"));
  if (h.signing_blocked) alarms.append(el("div", "This node must not sign: " + h.signing_blocked, "alarm"));
  const nodes = $("nodes"); nodes.replaceChildren();
  for (const [o, v] of Object.entries(h.origins)) {
    const c = el("div", undefined, "node node-card"); c.dataset.node = o;
    const st = v.status === "self" ? "this node" : v.status;
    c.append(el("b", o), el("span", " " + (v.role || ""), "muted"), el("br"),
      el("span", st, "pill " + (v.status === "online" || v.status === "self" ? "ok" : v.status === "offline" ? "bad" : "warn")), el("br"),
      el("span", "head " + v.head_seq + (v.lag ? " · lag " + v.lag : ""), v.lag ? "warn" : ""), el("br"),
      el("span", "last change-set " + age(v.last_changeset_age_s), "muted"), el("br"),
      el("span", "last contact " + age(v.last_contact_age_s), "muted"));
    nodes.append(c);
  }
  const db = $("digests").querySelector("tbody"); db.replaceChildren();
  const mine = el("tr"); mine.append(el("td", h.node + " (this node)"), el("td", h.digest), el("td", "")); db.append(mine);
  for (const [n, d] of Object.entries(h.announced_digests)) { const tr = el("tr"); tr.append(el("td", n), el("td", d), el("td", d === h.digest ? "same" : "DIFFERENT", d === h.digest ? "ok" : "bad")); db.append(tr); }
  const days = Math.floor(h.manifest.expires_in_s / 86400), hours = Math.floor((h.manifest.expires_in_s % 86400) / 3600);
  $("manifest").replaceChildren(el("span", "Version " + h.manifest.version + " — expires in " + days + " days " + hours + " h "),
    el("span", h.manifest.warning || "", h.manifest.warning ? "bad" : ""),
    el("span", " — features enabled: " + ((h.manifest.features || []).join(", ") || "none")),
    el("br"), el("span", "Software: pocsync " + (h.software ? h.software.version + " (features: " + (h.software.features.join(", ") || "none") + ")" : "?")));
  const fb = $("feed").querySelector("tbody"); fb.replaceChildren();
  for (const f of hist.feed) { const tr = el("tr"); tr.append(el("td", f.at), el("td", f.what), el("td", f.origin || ""), el("td", f.seq ?? ""), el("td", f.reason)); fb.append(tr); }
  drawChart(hist.lag);
}

function drawChart(lag) {
  const svg = $("chart"), W = svg.clientWidth || 900, H = 180, pad = 28;
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const origins = Object.keys(lag); let maxV = 1, t0 = Date.now() / 1000 - 3600;
  for (const o of origins) for (const [, v] of lag[o]) maxV = Math.max(maxV, v);
  const x = (t) => pad + (W - 2 * pad) * Math.max(0, t - t0) / 3600, y = (v) => H - pad - (H - 2 * pad) * v / maxV;
  const axis = document.createElementNS(ns, "path"); axis.setAttribute("d", `M${pad},${pad} V${H - pad} H${W - pad}`); axis.setAttribute("stroke", "#999"); axis.setAttribute("fill", "none"); svg.append(axis);
  const lbl = document.createElementNS(ns, "text"); lbl.setAttribute("x", 2); lbl.setAttribute("y", pad); lbl.setAttribute("font-size", "11"); lbl.textContent = String(maxV); svg.append(lbl);
  const legend = $("legend"); legend.replaceChildren();
  origins.forEach((o, i) => {
    const pts = lag[o].map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const pl = document.createElementNS(ns, "polyline"); pl.setAttribute("points", pts); pl.setAttribute("fill", "none");
    pl.setAttribute("stroke", COLORS[i % COLORS.length]); pl.setAttribute("stroke-width", "2"); svg.append(pl);
    const s = el("span", "■ " + o + "  "); s.style.color = COLORS[i % COLORS.length]; legend.append(s);
  });
}

async function refresh() {
  try { const [h, hist] = await Promise.all([api("/v1/health"), api("/v1/health/history")]); render(h, hist); } catch (e) { /* shown by api() */ }
}

async function start() {
  try { await api("/v1/whoami"); } catch (e) { return; }
  $("signin").classList.add("hidden"); $("dash").classList.remove("hidden"); $("signout").classList.remove("hidden");
  await refresh(); setInterval(refresh, 5000);
}
$("signin-btn").addEventListener("click", signIn);
$("signout").addEventListener("click", async () => { await fetch("/v1/session", { method: "DELETE", credentials: "same-origin" }); location.reload(); });
start();
