"use strict";
// Freshness of an entry (issue 15, PROTOCOL.md §15.4): when it was last modified, confirmed by a secretariat and
// verified by a communication check, per channel ("email 1", "phone 1"), and "not verified since …" when the
// federation's policy counts it overdue. Everything is rendered as text (pocsync.el, textContent).
(function () {
  const P = window.pocsync;
  if (!P || !P.HOOKS) return;
  const T = P.T;
  const RESULT = {
    sent: "Check sent, awaiting an answer", acknowledged: "Acknowledged", no_response: "No response",
    bounced: "Bounced", answered: "Answered", no_answer: "No answer", wrong_number: "Wrong number",
  };
  const ISO = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?Z$/;
  function when(iso) {  // an RFC 3339 UTC time from the API → a <time>, or the word "never"
    if (typeof iso !== "string" || !ISO.test(iso)) return P.el("span", T("never"), "muted");
    const d = new Date(iso);
    if (isNaN(d.getTime())) return P.el("span", T("never"), "muted");
    const t = P.el("time", d.toLocaleDateString(undefined, { dateStyle: "medium" }));
    t.dateTime = d.toISOString(); t.title = d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
    return t;
  }
  function channelLabel(label) {  // "email 1" → "Email 1" (translated word, position kept)
    const m = /^(email|phone) ([0-9]{1,3})$/.exec(String(label));
    return m ? T(m[1] === "email" ? "Email" : "Telephone") + " " + m[2] : String(label);
  }
  function row(th, ...cells) {
    const tr = P.el("tr"); const td = P.el("td"); td.append(...cells);
    tr.append(P.el("th", th), td); return tr;
  }
  function render(d, container) {
    if (!d || !("last_modified" in d)) return;
    const card = P.el("div", undefined, "card"); card.id = "freshness";
    card.append(P.el("h2", T("Verification")));
    const od = d.overdue && typeof d.overdue === "object" ? d.overdue : null;
    const reasons = od && Array.isArray(od.reasons) ? od.reasons : [];
    if (reasons.length) {
      const box = P.el("div", undefined, "notice bad"); box.id = "freshness-overdue";
      if (reasons.includes("verify")) {
        const p = P.el("p"); p.append(T("Not verified since") + " ", d.last_verified ? when(d.last_verified)
          : P.el("span", T("it was listed")), ".");
        box.append(p);
      }
      if (reasons.includes("confirm")) {
        const since = [d.last_confirmed, d.last_modified].filter((x) => typeof x === "string").sort().pop();
        const p = P.el("p"); p.append(T("Not confirmed by its secretariat since") + " ", when(since), ".");
        box.append(p);
      }
      box.append(P.el("p", T("Check these details before relying on them in a crisis."), "muted"));
      card.append(box);
    }
    const tb = P.el("tbody");
    tb.append(row(T("Last modified"), when(d.last_modified)), row(T("Last confirmed"), when(d.last_confirmed)),
      row(T("Last verified"), when(d.last_verified)));
    for (const c of Array.isArray(d.verification) ? d.verification : []) {
      const cells = [when(c.last_verified)];
      const word = P.own(RESULT, c.last_result);
      if (word) cells.push(" · " + T("latest check") + ": " + T(word) + " (", when(c.last_checked), ")");
      tb.append(row(channelLabel(c.channel) + " — " + T("verified"), ...cells));
    }
    const t = P.el("table", undefined, "fields"); t.append(tb); card.append(t);
    card.append(P.el("p", T("A contact is verified when it answers a communication check; a secretariat confirms an " +
      "entry when it stands by it unchanged."), "muted small"));
    container.append(card);
  }
  P.HOOKS.entry.push(render);
})();
