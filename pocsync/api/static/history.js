"use strict";
// "History of <State>": the signed-in PoC's own State's audit trail (GET /v1/history/{state}, issue 16 part 2).
// Reachable from the header and from the State's entries; #/history/<STATE> shows it. Text only (pocsync.el).
(function () {
  const P = window.pocsync;
  const T = P.T;
  const $ = (id) => document.getElementById(id);
  const N = P.N;  // marks a text for translation where T is applied later (tests/unit/test_i18n.py finds it)
  const STATUS = { applied: N("Applied"), refused: N("Refused by every directory") };
  const OPS = { put: N("Listed or changed"), delete: N("Deleted"), withdraw: N("Withdrawn by the State"),
    notice: N("Held change: previous contacts notified"), object: N("Held change: objection"),
    approve: N("Held change: approved"), release: N("Held change: released after the hold"),
    check: N("Communication check"), confirm: N("Confirmed unchanged") };
  const FIELDS = { state: N("State"), kind: N("Kind") };  // entry members the entry page never labels
  const COLUMNS = [N("When"), N("Directory"), N("Entered by"), N("Entry"), N("Change"), N("Details")];

  function ownState() {
    const s = P.session();
    if (!s || s.scope !== "directory" || typeof s.subject !== "string") return null;
    const st = s.subject.split("/")[0];
    return /^[A-Z]{3}$/.test(st) ? st : null;
  }
  function section() {
    let sec = $("history");
    if (!sec) {
      sec = P.el("section", undefined, "hidden");
      sec.id = "history";
      sec.setAttribute("aria-labelledby", "history-title");
      document.querySelector("main").append(sec);
    }
    return sec;
  }
  function headerLink() {
    const st = ownState();
    let a = $("history-link");
    if (!st) { if (a) a.remove(); return; }
    if (!a) {
      a = P.el("a", undefined, "button");
      a.id = "history-link";
      $("who").after(a);
    }
    a.textContent = P.safe(T("History of") + " " + st);
    a.href = "#/history/" + st;
  }
  function value(v) { return v === null || v === undefined ? T("(not given)") : P.plain(v); }
  function diffBox(x) {
    const box = P.el("div", undefined, "small");
    if (x.diff && Array.isArray(x.diff.changes)) {
      if (!x.diff.against && x.op === "put") box.append(P.el("div", T("First version of this key."), "muted"));
      for (const c of x.diff.changes) {
        if (c.field === "holder_epoch") continue;
        const line = P.el("div");
        const words = c.change === "added" ? value(c.after)
          : c.change === "removed" ? T("removed") + " (" + T("was") + " " + value(c.before) + ")"
          : value(c.before) + " → " + value(c.after);
        const label = P.own(FIELDS, c.field) ? T(P.own(FIELDS, c.field)) : P.labelOf(c.field);
        line.append(P.el("strong", label + ": "), P.el("span", words));
        box.append(line);
      }
      if (x.diff.against && !x.diff.changes.length) box.append(P.el("div", T("No field changed."), "muted"));
    }
    if (x.held && x.held !== "released") {  // the contact-change guard held it: never the State's contact
      box.append(P.el("div", T("Held, did not take effect") + ": " + String(x.held), "bad"));
    }
    if (x.status === "refused") {
      box.append(P.el("div", T("Refused") + ": " + String(x.reason) + " — " + String(x.message || ""), "bad"));
    }
    return box;
  }
  function opRow(x) {
    const tr = P.el("tr");
    const when = P.el("td", undefined, "nowrap"); when.append(P.timeEl(x.hlc, P.dateTime(x.hlc)));
    const who = P.el("td"); who.append(P.originPill(x.origin));
    const what = P.el("td");
    what.append(P.el("div", T(P.own(OPS, x.op) || String(x.op))),
      P.el("div", T(P.own(STATUS, x.status) || String(x.status)), x.status === "refused" ? "bad small" : "muted small"));
    const details = P.el("td"); details.append(diffBox(x));
    tr.append(when, who, P.el("td", x.author), P.el("td", x.key), what, details);
    if (x.status === "refused") tr.className = "refused";
    return tr;
  }
  async function show(state) {
    const sec = section();
    for (const s of ["signin", "directory", "entry"]) $(s).classList.add("hidden");
    sec.classList.remove("hidden");
    sec.replaceChildren(P.el("p", T("Loading…"), "muted"));
    let d;
    try { d = await P.api("/v1/history/" + encodeURIComponent(state)); } catch (e) {
      sec.replaceChildren(P.el("p", e.message, "bad"));
      return;
    }
    const back = P.el("a", T("← Back to the directory")); back.href = "#";
    const card = P.el("div", undefined, "card");
    const title = P.el("h2", T("History of") + " " + P.stateName(d.state) + " (" + d.state + ")");
    title.id = "history-title";
    const refused = d.ops.filter((x) => x.status === "refused").length;
    card.append(title, P.el("p", d.ops.length + " " + T("changes from every directory") + ", " + refused + " " +
      T("refused") + ". " + T("Every change is signed by the directory that made it."), "muted"));
    const dl = P.el("a", T("Download the verifiable bundle (signed change-sets)"), "button");
    dl.href = "/v1/history/" + encodeURIComponent(d.state) + "/bundle"; dl.setAttribute("download", "");
    card.append(dl);
    const wrap = P.el("div", undefined, "table-wrap");
    const t = P.el("table", undefined, "data"); t.id = "history-ops";
    const h = P.el("tr");
    for (const c of COLUMNS) h.append(P.el("th", T(c)));
    const thead = P.el("thead"); thead.append(h);
    const tb = P.el("tbody"); tb.append(...d.ops.slice().reverse().map(opRow));
    t.append(thead, tb); wrap.append(t); card.append(wrap);
    if (!d.ops.length) card.append(P.el("p", T("No change is recorded for this State."), "muted"));
    const parts = [back, card];
    if (Array.isArray(d.records) && d.records.length) {
      const rc = P.el("div", undefined, "card"); rc.append(P.el("h2", T("Other records about this State")));
      for (const r of d.records) {
        const line = P.el("div");
        line.append(P.originPill(r.origin), " ", P.el("span", String(r.namespace) + " " + String(r.key) + ": " +
          P.plain(r.record) + " (" + P.dateTime(r.hlc) + ")"));
        rc.append(line);
      }
      parts.push(rc);
    }
    sec.replaceChildren(...parts);
    window.scrollTo(0, 0);
  }
  function route() {
    const m = /^#\/history\/([A-Za-z]{3})$/.exec(location.hash);
    if (m && P.session()) { show(m[1].toUpperCase()); return; }
    const sec = $("history");
    if (sec) sec.classList.add("hidden");
  }
  function update() { headerLink(); snapshotLink(); route(); }
  P.HOOKS.entry.push((d, container) => {  // on the State's own entries: a way to its history
    const st = ownState();
    if (!st || !d || !d.entry || d.entry.state !== st) return;
    const p = P.el("p", undefined, "card");
    const a = P.el("a", T("History of") + " " + st + ": " + T("every change to its entries, from every directory"));
    a.href = "#/history/" + st;
    p.append(a); container.append(p);
  });
  // --- the crisis snapshot: a signed copy of the directory, encrypted to a passphrase generated here ------
  const ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";  // 32 symbols: 5 bits each, 32 of them = 160 bits
  function passphrase() {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const chars = Array.from(bytes, (b) => ALPHABET[b & 31]).join("");
    return chars.match(/.{4}/g).join("-");
  }
  async function downloadSnapshot(box) {
    const pw = passphrase();
    box.replaceChildren(P.el("p", T("Preparing the snapshot…"), "muted"));
    box.classList.remove("hidden");
    let r;
    try {
      r = await fetch("/v1/snapshot", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ passphrase: pw }) });
    } catch (e) { box.replaceChildren(P.el("p", T("The directory could not be reached."), "bad")); return; }
    if (!r.ok) {
      const p = await r.json().catch(() => ({}));
      box.replaceChildren(P.el("p", String(p.detail || p.title || r.statusText), "bad"));
      return;
    }
    const blob = await r.blob();
    const a = P.el("a", T("Save the snapshot file again"));
    a.href = URL.createObjectURL(blob);
    a.download = "pocsync-snapshot.age";
    const code = P.el("code", pw); code.id = "snapshot-passphrase";
    box.replaceChildren(
      P.el("p", T("The snapshot was downloaded. Its passphrase is shown once: write it down and keep it apart " +
        "from the file.")), code,
      P.el("p", T("Open it with `pocsync snapshot verify` or `pocsync snapshot render` and the federation's root.pub."),
        "muted small"), a);
    a.click();
  }
  function snapshotLink() {
    const where = document.querySelector("#directory .downloads");
    if (!where || $("dl-snapshot")) return;
    const a = P.el("a", T("Crisis snapshot (encrypted)")); a.id = "dl-snapshot"; a.href = "#";
    const box = P.el("div", undefined, "notice hidden"); box.id = "snapshot-box";
    a.addEventListener("click", (e) => { e.preventDefault(); downloadSnapshot(box); });
    where.append(a);
    document.querySelector("#directory .toolbar").after(box);
  }
  window.addEventListener("hashchange", route);
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver(update).observe($("who"), { childList: true, characterData: true, subtree: true });
  });
})();
