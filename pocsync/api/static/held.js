// Held contact changes on the PoC page (issue 16, PROTOCOL.md §16): pending changes of the entry shown and when
// each takes effect.  PoCs see which fields change and when, never the proposed values (ADR 30).
(function () {
  "use strict";
  const P = window.pocsync;
  if (!P) return;
  const T = P.T;
  function when(ms) {
    if (ms === null || ms === undefined) return T("after a notice by another directory and the hold period");
    const d = new Date(ms);
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) + " (" + d.toISOString().replace("T", " ").slice(0, 16) + " UTC)";
  }
  P.HOOKS.entry.push(async function (entry, container) {
    const key = entry && entry.key;
    if (!key) return;
    let data;
    try { data = await P.api("/v1/held?key=" + encodeURIComponent(key)); } catch (e) { return; }
    const rows = (data && data.held) || [];
    if (!rows.length) return;
    const card = P.el("div", undefined, "card");
    card.id = "held-changes";
    card.append(P.el("h2", T("Pending changes of contact details")));
    card.append(P.el("p", T("These changes were proposed and are held: the contact details shown above stay in force until each takes effect. The new details are not shown before then."), "muted"));
    const ul = P.el("ul");
    for (const r of rows) {
      const li = P.el("li");
      li.className = "held-" + (r.status === "objected" ? "objected" : "pending");
      const fields = (r.fields || []).map((f) => T(P.labelOf ? P.labelOf(f) : f)).join(", ");
      li.append(P.el("strong", fields || T("contact details")));
      li.append(P.el("span", " — " + T("proposed by") + " " + r.origin + ", "));
      if (r.status === "objected") {
        li.append(P.el("span", T("objected to: cancelled")));
      } else {
        li.append(P.el("span", T("takes effect") + ": "));
        li.append(P.el("span", when(r.takes_effect_ms), "held-when"));
      }
      ul.append(li);
    }
    card.append(ul);
    container.append(card);
  });
})();
