"use strict";
// "History of <State>": the signed-in PoC's own State's audit trail (GET /v1/history/{state}, issue 16 part 2).
// Reachable from the header and from the State's entries; #/history/<STATE> shows it. Text only (pocsync.el).
(function () {
  const P = window.pocsync;
  const T = P.T;
  const $ = (id) => document.getElementById(id);
  const STATUS = { applied: "Applied", refused: "Refused by every directory" };
  const OPS = { put: "Listed or changed", delete: "Deleted", withdraw: "Withdrawn by the State" };

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
        line.append(P.el("strong", P.labelOf(c.field) + ": "), P.el("span", words));
        box.append(line);
      }
      if (x.diff.against && !x.diff.changes.length) box.append(P.el("div", T("No field changed."), "muted"));
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
    for (const c of ["When", "Directory", "Entered by", "Entry", "Change", "Details"]) h.append(P.el("th", T(c)));
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
  function update() { headerLink(); route(); }
  P.HOOKS.entry.push((d, container) => {  // on the State's own entries: a way to its history
    const st = ownState();
    if (!st || !d || !d.entry || d.entry.state !== st) return;
    const p = P.el("p", undefined, "card");
    const a = P.el("a", T("History of") + " " + st + ": " + T("every change to its entries, from every directory"));
    a.href = "#/history/" + st;
    p.append(a); container.append(p);
  });
  window.addEventListener("hashchange", route);
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver(update).observe($("who"), { childList: true, characterData: true, subtree: true });
  });
})();
