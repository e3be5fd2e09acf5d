"use strict";
// Communication checks on the PoC page (issue 15): on the signed-in PoC's own entry, the checks waiting for an
// acknowledgement, each with a button (so that nobody has to trust a link in a mail); on every entry, a form to
// report that the entry is wrong (mailed to the secretariat of the directory whose version is shown).
// Text only (textContent via pocsync.el); every shown English string goes through pocsync.T.
(function () {
  const P = window.pocsync;
  if (!P) return;
  const T = P.T;

  async function post(path, body) {
    let r;
    try {
      r = await fetch(path, { method: "POST", credentials: "same-origin",
        headers: { "Accept": "application/json", "Content-Type": "application/json" }, body: JSON.stringify(body) });
    } catch (e) { throw new Error(T("The directory could not be reached. Check your network connection and try again.")); }
    const p = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(r.status === 429 ? T("Too many requests in a short time. Wait a few seconds and try again.")
      : (p.detail || p.title || r.statusText));
    return p;
  }

  function deadline(ms) {
    try { return new Date(ms).toLocaleString(); } catch (e) { return String(ms); }
  }

  async function waitingChecks(d, box) {
    const me = P.session();
    if (!me || me.subject !== d.key) return;  // a PoC acknowledges only their own entry's channels
    const data = await P.api("/v1/checks/waiting");
    if (!data.waiting || !data.waiting.length) return;
    const card = P.el("div", null, "card checks-waiting");
    card.id = "checks-waiting";
    card.append(P.el("h2", T("Communication check")));
    card.append(P.el("p", T("Your directory asks you to confirm that these addresses of your entry work. " +
      "Acknowledging here is the same as using the link in the check message.")));
    for (const w of data.waiting) {
      const row = P.el("p", null, "check-row");
      const btn = P.el("button", T("Acknowledge"), "primary");
      btn.type = "button";
      btn.dataset.channel = w.channel;
      const note = P.el("span", null, "muted small");
      row.append(P.el("strong", (w.label.startsWith("email") ? T("Email") : T("Telephone")) + " " + w.label.split(" ")[1]),
        " · " + T("answer before") + " " + deadline(w.deadline_ms) + " ", btn, " ", note);
      btn.addEventListener("click", async () => {
        btn.disabled = true;
        try {
          await post("/v1/checks/acknowledge", { channel: w.channel });
          note.textContent = T("Acknowledged. Thank you.");
          btn.remove();
        } catch (e) { note.textContent = String(e.message); btn.disabled = false; }
      });
      card.append(row);
    }
    box.append(card);
  }

  function reportForm(d, box) {
    const card = P.el("div", null, "card checks-report");
    const det = document.createElement("details");
    det.append(P.el("summary", T("Report that this entry is wrong")));
    det.append(P.el("p", T("Your message goes to the secretariat of the directory whose version is shown. " +
      "Do not include secrets."), "muted small"));
    const ta = document.createElement("textarea");
    ta.maxLength = 2000;
    ta.id = "report-text";
    ta.setAttribute("aria-label", T("What is wrong"));
    const btn = P.el("button", T("Send report"));
    btn.type = "button";
    btn.id = "report-send";
    const note = P.el("p", null, "muted small");
    btn.addEventListener("click", async () => {
      const text = ta.value.trim();
      if (!text) { note.textContent = T("Write what is wrong first."); return; }
      btn.disabled = true;
      try {
        await post("/v1/checks/report", { key: d.key, text });
        note.textContent = T("Sent. Thank you.");
        ta.value = "";
      } catch (e) { note.textContent = String(e.message); }
      btn.disabled = false;
    });
    const actions = P.el("div", null, "actions");
    actions.append(btn);
    det.append(ta, actions, note);
    card.append(det);
    box.append(card);
  }

  P.HOOKS.entry.push((d, box) => {
    const mine = P.el("div");
    box.append(mine);
    waitingChecks(d, mine).catch((e) => console.warn(e));
    reportForm(d, box);
  });
})();
