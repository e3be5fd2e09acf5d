// Held contact changes on the operator dashboard (issue 16): an alarm for every objected change (keys only, no
// contact data) and the number of changes pending.  Reads /v1/health → held.
(function () {
  "use strict";
  const box = document.getElementById("held-alarms");
  if (!box) return;
  const FORBIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
  function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text).replace(FORBIDDEN, "\ufffd"); if (cls) e.className = cls; return e; }
  async function refresh() {
    const dash = document.getElementById("dash");
    if (!dash || dash.classList.contains("hidden")) return;  // not signed in: ask nothing (no 401 in the console)
    let h;
    try {
      const r = await fetch("/v1/health", { credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store" });
      if (!r.ok) return;
      h = await r.json();
    } catch (e) { return; }
    const held = h && h.held;
    box.replaceChildren();
    if (!held) return;
    for (const o of held.objected || []) {
      box.append(el("div", "OBJECTION: the held contact change of " + o.key + " by " + o.origin +
        " was objected to through a notice link and is cancelled everywhere — check with the State whether somebody tried to redirect its contact.", "alarm held-objected"));
    }
    if (held.pending) box.append(el("p", held.pending + " contact change(s) held, waiting for their notice and hold period or an approval (`pocsync entry pending`).", "muted held-pending"));
  }
  refresh();
  setInterval(refresh, 5000);
})();
