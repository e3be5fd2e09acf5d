"use strict";
// Communication checks on the operator dashboard (issue 15): each campaign's counts by status, by origin and by
// State, response times, who checked skipped channels, overdue entries and reports per origin. Data from
// GET /v1/checks (health scope), which holds no contact data: channels are "email 1", never an address.
(function () {
  const $ = (id) => document.getElementById(id);
  const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]|[\u{D800}-\u{DFFF}]/gu;
  const safe = (t) => String(t).replace(FORBIDDEN, "\ufffd");
  function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = safe(text); if (cls) e.className = cls; return e; }
  const STATUS = [["sent", "Awaiting answer"], ["acknowledged", "Acknowledged"], ["no_response", "No response"],
    ["bounced", "Bounced"], ["skipped", "Skipped (checked elsewhere)"], ["invalid", "Invalid address"], ["pending", "To mail"]];
  function when(ms) { try { return new Date(ms).toLocaleString(); } catch (e) { return String(ms); } }
  function secs(v) { return v === null || v === undefined ? "—" : v < 120 ? Math.round(v) + " s" : v < 7200 ? Math.round(v / 60) + " min" : (v / 3600).toFixed(1) + " h"; }

  function table(head, rows, cls) {
    const t = el("table", null, cls || "data");
    const tr = el("tr"); for (const h of head) tr.append(el("th", h));
    const th = el("thead"); th.append(tr); t.append(th);
    const tb = el("tbody");
    for (const r of rows) { const row = el("tr"); for (const c of r) row.append(el("td", c)); tb.append(row); }
    if (!rows.length) { const row = el("tr"); const td = el("td", "none", "muted"); td.colSpan = head.length; row.append(td); tb.append(row); }
    t.append(tb);
    return t;
  }
  function countsRow(name, c) { return [name].concat(STATUS.map(([k]) => String((c[k] || 0) + (k === "pending" ? (c.sending || 0) : 0)))); }

  function render(v) {
    const box = $("checks");
    box.replaceChildren();
    const mail = v.mail || {};
    box.append(el("p", "Mail relay: " + (mail.smtp || "—") + " · messages sent " + (mail.messages_sent || 0) +
      " · overdue reminders sent " + (mail.reminders_sent || 0) + (mail.last_error ? " · last error: " + mail.last_error : ""), "muted"));
    if (!v.campaigns.length) box.append(el("p", "No campaign at this node yet (pocsync check start).", "muted"));
    for (const c of v.campaigns) {
      const sec = el("section", null, "campaign");
      sec.dataset.campaign = c.campaign;
      sec.append(el("h3", "Campaign " + c.campaign));
      sec.append(el("p", "Started " + when(c.created_ms) + " by " + c.started_by + " · deadline " + secs(c.deadline_seconds) +
        " · " + c.status + " · " + c.channels + " channel(s), " + c.mailed + " mailed", "muted"));
      const head = ["", ...STATUS.map(([, w]) => w)];
      sec.append(table(head, [countsRow("All", c.counts)], "data campaign-counts"));
      sec.append(el("p", "Response time: median " + secs(c.response_seconds.median) + ", 90th percentile " +
        secs(c.response_seconds.p90) + " (" + c.response_seconds.n + " acknowledged)"));
      const codes = Object.entries(c.bounce_codes || {}).map(([k, n]) => k + " × " + n).join(", ");
      if (codes) sec.append(el("p", "Bounce reply codes: " + codes));
      const skipped = Object.entries(c.skipped_by || {}).map(([k, n]) => k + " (" + n + ")").join(", ");
      if (skipped) sec.append(el("p", "Checked by another node or changed: " + skipped));
      sec.append(el("h4", "By origin"), table(["Origin", ...head.slice(1)], Object.entries(c.by_origin).map(([o, x]) => countsRow(o, x))));
      sec.append(el("h4", "By State"), table(["State", ...head.slice(1)], Object.entries(c.by_state).map(([s, x]) => countsRow(s, x))));
      box.append(sec);
    }
    const fc = Object.entries(v.federation_campaigns || {});
    box.append(el("h3", "Campaigns of every node (signed results, merged)"));
    box.append(table(["Campaign", "Checked by", "Channels", "Sent, awaiting", "Acknowledged", "No response", "Bounced", "Median response"],
      fc.map(([id, c]) => {
        const r = c.results || {}; const t = c.response_seconds || [];
        return [id, (c.origins || []).join(", "), String(c.channels), String(r.sent || 0), String(r.acknowledged || 0),
          String(r.no_response || 0), String(r.bounced || 0), t.length ? secs(t[Math.floor((t.length - 1) / 2)]) : "—"];
      }), "data federation-campaigns"));
    box.append(el("h3", "Who checked (latest result per channel, every node)"));
    box.append(table(["Node", "Results"], Object.entries(v.checked_by).map(([n, d]) =>
      [n, Object.entries(d).map(([r, k]) => r + " " + k).join(", ")]), "data checked-by"));
    box.append(el("h3", "Overdue entries and reports of wrong entries, per origin"));
    const origins = Array.from(new Set(Object.keys(v.overdue_by_origin).concat(Object.keys(v.reports_by_origin)))).sort();
    box.append(table(["Origin", "Overdue entries", "Reports received"], origins.map((o) =>
      [o, String(v.overdue_by_origin[o] || 0), String((v.reports_by_origin[o] || {}).received || 0)]), "data overdue"));
  }

  async function refresh() {
    const dash = $("dash");
    if (!dash || dash.classList.contains("hidden")) return;
    try {
      const r = await fetch("/v1/checks", { credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store" });
      if (r.ok) render(await r.json());
    } catch (e) { /* the main dashboard reports the node unreachable */ }
  }
  setInterval(refresh, 3000);
  document.addEventListener("DOMContentLoaded", refresh);
})();
