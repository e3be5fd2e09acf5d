"use strict";
// The PoC page. It talks only to this node's API, with the HttpOnly session cookie, and renders every value from
// the directory as text (textContent only; no HTML is ever parsed from data): entries come from many secretariats.
const $ = (id) => document.getElementById(id);
// Words shown on the page go through T(«English text»): the translation of the page's language, or the English.
// Feature scripts (static/<feature>.js, loaded after this one) use the same T and the helpers in window.pocsync.
// The French and Spanish tables are in static/i18n.js (loaded before this script); tests/unit/test_i18n.py checks
// that every literal of a T, Tn or N call in static/*.js and every data-i18n text of the pages has both.
// T(«… {name} …», {name: value}) fills the named places after translating; Tn does the same with elements
// (for a sentence holding links or pills); N(«…») only marks a text that T translates later from a variable.
const LANGUAGES = { en: "English", fr: "Français", es: "Español" };  // each language's name in itself
const TRANSLATIONS = (window.POCSYNC_I18N && typeof window.POCSYNC_I18N === "object") ? window.POCSYNC_I18N : {};
for (const l of Object.keys(LANGUAGES)) if (!Object.prototype.hasOwnProperty.call(TRANSLATIONS, l)) TRANSLATIONS[l] = {};
const LANG_KEY = "pocsync.lang";
let LANG = pickLanguage();
function N(text) { return text; }
function T(text, vars) {
  const table = own(TRANSLATIONS, LANG);
  const t = (table && own(table, text)) || text;
  return vars ? t.replace(/\{([a-z_]+)\}/g, (m, k) => (own(vars, k) !== undefined ? String(own(vars, k)) : m)) : t;
}
function Tn(text, parts) {  // the translated sentence as a list of strings and nodes, ready for append(...)
  return T(text).split(/(\{[a-z_]+\})/).filter((x) => x !== "").map((x) => {
    const m = /^\{([a-z_]+)\}$/.exec(x);
    return m && own(parts, m[1]) !== undefined ? own(parts, m[1]) : x;
  });
}
function storedLanguage() { try { return window.localStorage.getItem(LANG_KEY); } catch (e) { return null; } }
function pickLanguage() {  // the one chosen with the switch, else the browser's first one we have, else English
  const stored = storedLanguage();
  if (stored && Object.prototype.hasOwnProperty.call(LANGUAGES, stored)) return stored;
  const wanted = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language || "en"];
  for (const tag of wanted) {
    const primary = String(tag || "").toLowerCase().split("-")[0];
    if (Object.prototype.hasOwnProperty.call(LANGUAGES, primary)) return primary;
  }
  return "en";
}
function locale() {  // for dates and names: the browser's own variant of the page language (en-GB, fr-CA…)
  const wanted = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language || ""];
  for (const tag of wanted) if (String(tag || "").toLowerCase().split("-")[0] === LANG) return String(tag);
  return LANG;
}
// Lookups keyed by data ("constructor" is a valid unknown field name) read own properties only.
const own = (table, key) => (Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined);

// ISO 3166-1 alpha-3 → alpha-2, for the browser's own country names (Intl.DisplayNames).
// tests/unit/test_web_static.py keeps it equal to pycountry's table.
const ALPHA3_TO_2 = Object.fromEntries("ABWAW AFGAF AGOAO AIAAI ALAAX ALBAL ANDAD AREAE ARGAR ARMAM ASMAS ATAAQ ATFTF ATGAG AUSAU AUTAT AZEAZ BDIBI BELBE BENBJ BESBQ BFABF BGDBD BGRBG BHRBH BHSBS BIHBA BLMBL BLRBY BLZBZ BMUBM BOLBO BRABR BRBBB BRNBN BTNBT BVTBV BWABW CAFCF CANCA CCKCC CHECH CHLCL CHNCN CIVCI CMRCM CODCD COGCG COKCK COLCO COMKM CPVCV CRICR CUBCU CUWCW CXRCX CYMKY CYPCY CZECZ DEUDE DJIDJ DMADM DNKDK DOMDO DZADZ ECUEC EGYEG ERIER ESHEH ESPES ESTEE ETHET FINFI FJIFJ FLKFK FRAFR FROFO FSMFM GABGA GBRGB GEOGE GGYGG GHAGH GIBGI GINGN GLPGP GMBGM GNBGW GNQGQ GRCGR GRDGD GRLGL GTMGT GUFGF GUMGU GUYGY HKGHK HMDHM HNDHN HRVHR HTIHT HUNHU IDNID IMNIM INDIN IOTIO IRLIE IRNIR IRQIQ ISLIS ISRIL ITAIT JAMJM JEYJE JORJO JPNJP KAZKZ KENKE KGZKG KHMKH KIRKI KNAKN KORKR KWTKW LAOLA LBNLB LBRLR LBYLY LCALC LIELI LKALK LSOLS LTULT LUXLU LVALV MACMO MAFMF MARMA MCOMC MDAMD MDGMG MDVMV MEXMX MHLMH MKDMK MLIML MLTMT MMRMM MNEME MNGMN MNPMP MOZMZ MRTMR MSRMS MTQMQ MUSMU MWIMW MYSMY MYTYT NAMNA NCLNC NERNE NFKNF NGANG NICNI NIUNU NLDNL NORNO NPLNP NRUNR NZLNZ OMNOM PAKPK PANPA PCNPN PERPE PHLPH PLWPW PNGPG POLPL PRIPR PRKKP PRTPT PRYPY PSEPS PYFPF QATQA REURE ROURO RUSRU RWARW SAUSA SDNSD SENSN SGPSG SGSGS SHNSH SJMSJ SLBSB SLESL SLVSV SMRSM SOMSO SPMPM SRBRS SSDSS STPST SURSR SVKSK SVNSI SWESE SWZSZ SXMSX SYCSC SYRSY TCATC TCDTD TGOTG THATH TJKTJ TKLTK TKMTM TLSTL TONTO TTOTT TUNTN TURTR TUVTV TWNTW TZATZ UGAUG UKRUA UMIUM URYUY USAUS UZBUZ VATVA VCTVC VENVE VGBVG VIRVI VNMVN VUTVU WLFWF WSMWS YEMYE ZAFZA ZMBZM ZWEZW".split(" ").map((p) => [p.slice(0, 3), p.slice(3)]));

// Field labels in words, in the order shown. Fields not named here follow, labelled from their name.
const LABELS = [["organisation", N("Organisation")], ["position", N("Position")], ["person", N("Person")],
  ["emails", N("Email")], ["phones", N("Telephone")], ["available_24_7", N("Available 24/7")],
  ["timezone", N("Time zone")], ["languages", N("Languages")], ["secure_channels", N("Secure channels")],
  ["networks", N("Networks")], ["notes", N("Notes")], ["public_key", N("OpenPGP public key")],
  ["public_key_fingerprint", N("OpenPGP key fingerprint")]];
const LABEL = Object.fromEntries(LABELS);
const HIDDEN_FIELDS = new Set(["state", "kind", "holder_epoch"]);
const KIND = { diplomatic: N("Diplomatic"), technical: N("Technical") };
const KIND_POC = { diplomatic: N("Diplomatic Point of Contact"), technical: N("Technical Point of Contact") };
const STATUS = { put: N("Lists it"), withdraw: N("Withdrew it"), delete: N("Deleted it") };

// What a refused token means, in words for the person holding it (reasons from pocsync/tokens.py and api/auth.py).
const NOT_A_TOKEN = N("This is not a valid access token. Paste the whole token exactly as your secretariat sent it " +
  "(it begins with “eyJ”), with nothing before or after it.");
const NOT_OURS = N("This access token was not issued by a directory of this federation, or it was changed after it " +
  "was issued. Ask your secretariat for a new one.");
const TOKEN_WORDS = {
  missing: N("Paste the access token your secretariat sent you, then choose Sign in."),
  malformed: NOT_A_TOKEN, oversize: NOT_A_TOKEN, forbidden_header: NOT_A_TOKEN, bad_alg: NOT_A_TOKEN,
  missing_claim: NOT_A_TOKEN, bad_subject: NOT_A_TOKEN, bad_scope: NOT_A_TOKEN,
  unknown_issuer: NOT_OURS, unknown_kid: NOT_OURS, bad_signature: NOT_OURS,
  expired: N("This access token has expired. Ask your secretariat for a new one."),
  not_yet_valid: N("This access token is not valid yet. Check that this computer’s date and time are right, " +
    "or try again in a few minutes."),
  issuer_out_of_scope: N("The directory that issued this token does not list your State, so the token gives no " +
    "access. Ask the secretariat that lists your State for a token."),
  subject_not_listed: N("The Point of Contact this token was issued for is no longer listed in the directory, so the " +
    "token no longer opens it. Ask your secretariat."),
  holder_changed: N("This token was issued to an earlier holder of this Point of Contact role. Ask your secretariat " +
    "for a token in your name."),
  rate_limited: N("Too many requests in a short time. Wait a few seconds and try again."),
  operator: N("This is an operator token: it opens the sync health dashboard (/dashboard), which shows no contact " +
    "details. The directory needs a Point of Contact token."),
  network: N("The directory could not be reached. Check your network connection and try again."),
};
const REFUSED = N("The directory did not accept this access token. Ask your secretariat for a new one.");

let current = null;  // the signed-in session, as GET /v1/session describes it

// Free text may hold what docs/adr/0015 allows; whatever a member node signed, the page shows controls,
// separators, bidi overrides/isolates and lone surrogates as U+FFFD (notes keep their line feeds).
const FORBIDDEN = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]|[\u{D800}-\u{DFFF}]/gu;
function safe(t) { return String(t).replace(FORBIDDEN, "\ufffd"); }

// --- small helpers (text only) ----------------------------------------------------------------------------
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = safe(text);
  if (cls) e.className = cls;
  return e;
}
function show(id) { for (const s of ["signin", "directory", "entry"]) $(s).classList.toggle("hidden", s !== id); }
function tryIntl(f, fallback) { try { return f(); } catch (e) { return fallback; } }
let regionNames = null, languageNames = null;  // Intl names in the page language (setLanguage makes them)

function stateName(code) {
  const a2 = own(ALPHA3_TO_2, code);
  const name = a2 && regionNames ? tryIntl(() => regionNames.of(a2), "") : "";
  return name && name !== a2 ? name : String(code);
}
function languageName(code) {
  const name = languageNames ? tryIntl(() => languageNames.of(String(code)), "") : "";
  return name && name.toLowerCase() !== String(code).toLowerCase() ? name : String(code);
}
function hlcDate(hlc) {  // "1795451477376-0000" → the Date of its wall-clock part, or null
  const m = /^([0-9]{13})-[0-9]{4}$/.exec(String(hlc || ""));
  return m ? new Date(Number(m[1])) : null;
}
function dateTime(hlc) {
  const d = hlcDate(hlc);
  return d ? d.toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short" }) : T("unknown");
}
function dateOnly(hlc) {
  const d = hlcDate(hlc);
  return d ? d.toLocaleDateString(locale(), { dateStyle: "medium" }) : T("unknown");
}
function timeEl(hlc, text) {  // a <time> carrying the UTC instant for machines and as a tooltip
  const t = el("time", text);
  const d = hlcDate(hlc);
  if (d) { t.dateTime = d.toISOString(); t.title = d.toISOString().replace("T", " ").slice(0, 19) + " UTC"; }
  return t;
}
function labelOf(field) {
  if (own(LABEL, field)) return T(own(LABEL, field));
  const words = String(field).replace(/_24_7$/, " 24/7").replace(/_/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
function plain(v) {  // any JSON value as one line of text
  if (v === undefined || v === null) return "";
  if (typeof v === "boolean") return v ? T("Yes") : T("No");
  if (Array.isArray(v)) return v.map(plain).join(", ");
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => labelOf(k) + ": " + plain(x)).join("; ");
  return safe(String(v));
}
function originPill(origin) {  // one colour per directory name, from a fixed palette
  let h = 0;
  for (const c of String(origin)) h = (h * 31 + c.charCodeAt(0)) % 997;
  return el("span", origin, "pill origin o" + (h % 6));
}
function listedBy(row) {
  return Array.isArray(row.listed_by) && row.listed_by.length ? row.listed_by : [row.provenance.origin];
}

// --- field values ------------------------------------------------------------------------------------------
function linkList(items, scheme) {
  const box = el("div", undefined, "values");
  for (const x of items) {
    const line = el("div"); const a = el("a", x);
    a.href = scheme + encodeURIComponent(String(x).replace(/\s+/g, "")).replace(/%40/g, "@").replace(/%2B/g, "+");
    line.append(a); box.append(line);
  }
  return box;
}
function fingerprint(fp) {
  const s = String(fp).replace(/\s+/g, "");
  return /^[0-9A-Fa-f]+$/.test(s) ? s.toUpperCase().match(/.{1,4}/g).join(" ") : String(fp);
}
function channelType(t) {
  const k = String(t || "").toLowerCase();
  return own({ openpgp: "OpenPGP", pgp: "OpenPGP", gpg: "OpenPGP", smime: "S/MIME", "s/mime": "S/MIME" }, k) ||
    (t ? String(t) : T("Channel"));
}
function channels(list) {
  const box = el("div", undefined, "values");
  for (const ch of list) {
    const item = el("div", undefined, "channel");
    box.append(item);
    if (ch === null || typeof ch !== "object" || Array.isArray(ch)) { item.append(el("span", plain(ch))); continue; }
    const head = el("div"); item.append(head);
    head.append(el("span", channelType(ch.type), "pill"));
    if (typeof ch.expires === "string") {
      const d = new Date(ch.expires.slice(0, 10) + "T00:00:00");
      const known = !isNaN(d);
      const expired = known && d < new Date();
      const when = known ? d.toLocaleDateString(locale(), { dateStyle: "medium" }) : ch.expires;
      head.append(" ", el("span", expired ? T("key expired on {date}", { date: when }) : T("key valid until {date}", { date: when }),
        expired ? "bad small" : "muted small"));
    }
    if (ch.fingerprint !== undefined) {
      const f = el("div", undefined, "small"); f.append(el("span", T("Fingerprint") + " ", "muted"), el("code", fingerprint(ch.fingerprint), "fpr"));
      item.append(f);
    }
    for (const [k, v] of Object.entries(ch)) {
      if (["type", "fingerprint", "expires"].includes(k)) continue;
      item.append(el("div", labelOf(k) + ": " + plain(v), "muted small"));
    }
  }
  return box;
}
function timezone(tz) {
  const now = tryIntl(() => new Date().toLocaleString(locale(),
    { timeZone: String(tz), weekday: "short", hour: "2-digit", minute: "2-digit" }), null);
  const box = el("div", String(tz));
  if (now) box.append(" ", el("span", T("(now {time} there)", { time: now }), "muted small"));
  return box;
}
function fieldValue(field, v) {
  if (field === "emails" && Array.isArray(v)) return linkList(v, "mailto:");
  if (field === "phones" && Array.isArray(v)) return linkList(v, "tel:");
  if (field === "available_24_7") {
    return v === true ? el("span", T("Yes, around the clock"), "ok") : el("span", v === false ? T("No") : plain(v));
  }
  if (field === "timezone" && typeof v === "string") return timezone(v);
  if (field === "languages" && Array.isArray(v)) return el("span", v.map(languageName).join(", "));
  if (field === "secure_channels" && Array.isArray(v)) return channels(v);
  if (field === "notes") return el("span", plain(v), "notes");
  if (field === "public_key" && typeof v === "string") {  // an armored key block: folded, as text
    const box = el("details"); box.append(el("summary", T("Show the key")), el("pre", v, "armor"));
    return box;
  }
  if (field === "public_key_fingerprint" && typeof v === "string") return el("code", fingerprint(v), "fpr");
  return el("span", plain(v));
}

// --- the API -----------------------------------------------------------------------------------------------
async function api(path) {
  let r;
  try { r = await fetch(path, { credentials: "same-origin", headers: { "Accept": "application/json" } }); }
  catch (e) { throw new Error(T(TOKEN_WORDS.network)); }
  if (r.status === 401) {
    const p = await r.json().catch(() => ({}));
    signedOut(p.reason || "expired", p.detail);
    throw new Error("signed out");
  }
  if (!r.ok) {
    const p = await r.json().catch(() => ({}));
    throw new Error(r.status === 429 ? T(TOKEN_WORDS.rate_limited) : (p.detail || p.title || r.statusText));
  }
  return r.json();
}
async function session(token) {  // GET /v1/session: always 200, with signed_in and, when refused, the reason
  const headers = { "Accept": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch("/v1/session", { credentials: "same-origin", headers, cache: "no-store" });
  if (!r.ok) throw new Error(r.statusText);
  return r.json();
}

// --- signing in --------------------------------------------------------------------------------------------
function tokenProblem(reason, detail) {
  $("signin-message").textContent = T(own(TOKEN_WORDS, reason) || REFUSED);
  $("signin-detail").textContent = detail ? safe(T("Detail for your secretariat: {detail}", { detail }) + (reason ? " (" + reason + ")" : "")) : "";
  $("signin-error").classList.remove("hidden");
}
function signedOut(reason, detail) {
  current = null;
  $("who").textContent = "";
  $("signout").classList.add("hidden");
  show("signin");
  if (reason && reason !== "missing") tokenProblem(reason, detail);
}
function cleanToken(text) {  // a token pasted from an e-mail may be wrapped over lines or keep its "Bearer "
  return String(text).trim().replace(/^Bearer\s+/i, "").replace(/\s+/g, "");
}

async function signIn() {
  $("signin-error").classList.add("hidden");
  const token = cleanToken($("token").value);
  if (!token) return tokenProblem("missing", "");
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token) || token.length > 8000) {
    return tokenProblem("malformed", "");
  }
  let s;
  try { s = await session(token); } catch (e) { return tokenProblem("network", ""); }
  if (!s.signed_in) return tokenProblem(s.reason, s.detail);
  if (s.scope !== "directory") return tokenProblem("operator", "");
  let r;
  try {
    r = await fetch("/v1/session", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });
  } catch (e) { return tokenProblem("network", ""); }
  if (!r.ok) { const p = await r.json().catch(() => ({})); return tokenProblem(p.reason, p.detail); }
  $("token").value = "";
  await start();
}

async function start() {
  let s;
  try { s = await session(); } catch (e) { show("signin"); return tokenProblem("network", ""); }
  if (!s.signed_in) return signedOut(s.reason, s.detail);
  if (s.scope !== "directory") { signedOut(); return tokenProblem("operator", ""); }
  current = s;
  $("who").textContent = safe(T("Signed in as {subject} · directory of {node}", { subject: s.subject, node: s.node }));
  $("signout").classList.remove("hidden");
  await route();
}

// --- the directory -----------------------------------------------------------------------------------------
function contactCell(e) {
  const td = el("td", undefined, "contact");
  const items = [].concat(Array.isArray(e.emails) ? e.emails : [], Array.isArray(e.phones) ? e.phones : []);
  for (const x of items) td.append(el("div", x));
  return td;
}
function entryRow(row) {
  const e = row.entry, tr = el("tr", undefined, "link");
  tr.tabIndex = 0;
  const st = el("td"); st.append(el("div", stateName(e.state), "strong"), el("div", e.state, "muted small"));
  const role = el("td"); role.append(el("div", plain(e.position)));
  if (e.person) role.append(el("div", plain(e.person), "muted small"));
  const lb = el("td", undefined, "pills"); for (const o of listedBy(row)) lb.append(originPill(o), " ");
  const upd = el("td", undefined, "nowrap"); upd.append(timeEl(row.provenance.hlc, dateOnly(row.provenance.hlc)));
  const h24 = e.available_24_7 === true ? el("td", T("Yes"), "ok") : el("td", T("No"), "muted");
  tr.append(st, el("td", own(KIND, e.kind) ? T(own(KIND, e.kind)) : plain(e.kind)), el("td", plain(e.organisation)), role, contactCell(e), h24, lb, upd);
  const open = () => { location.hash = "#/entry/" + encodeURIComponent(row.key); };
  tr.addEventListener("click", open);
  tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
  return tr;
}
// q is the node's full-text search (GET /v1/entries?q=: State, organisation, position, person, networks,
// notes; every word, also as the start of a word; best matches first). Typing searches after a short pause;
// only the answer to the latest request is shown.
let searchSeq = 0, typing = null;
// The node knows State names in English only: a search that is exactly a State's name in the page's language
// ("Allemagne") asks for that State's entries instead.
const folded = (text) => String(text).normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().trim();
function localState(q) {
  if (!regionNames || LANG === "en") return null;
  const want = folded(q);
  return Object.keys(ALPHA3_TO_2).find((code) => folded(stateName(code)) === want) || null;
}
async function search() {
  const p = new URLSearchParams();
  for (const k of ["q", "state", "kind", "network"]) { const v = $(k).value.trim(); if (v) p.set(k, v); }
  const code = p.has("q") && !p.has("state") ? localState(p.get("q")) : null;
  if (code) { p.delete("q"); p.set("state", code); }
  p.set("per_page", "500");
  const tb = $("results").querySelector("tbody");
  const seq = ++searchSeq;
  let data;
  try { data = await api("/v1/entries?" + p.toString()); } catch (e) {
    if (current && seq === searchSeq) { tb.replaceChildren(); $("count").textContent = safe(e.message); }
    return;
  }
  if (seq !== searchSeq) return;
  tb.replaceChildren(...data.entries.map(entryRow));
  if (!data.entries.length) {
    const tr = el("tr"); const td = el("td", T("No entry matches this search."), "empty"); td.colSpan = 8;
    tr.append(td); tb.append(tr);
  }
  const more = data.entries.length < data.total
    ? " " + T("(the first {n} are shown: refine the search)", { n: data.entries.length }) : "";
  $("count").textContent = (data.total === 1 ? T("1 entry") : T("{n} entries", { n: data.total })) + more;
}

// --- one entry ---------------------------------------------------------------------------------------------
function versionRow(v, p) {
  const tr = el("tr");
  const who = el("td"); who.append(originPill(v.origin));
  if (v.origin === p.origin && v.cs_id === p.cs_id) who.append(" ", el("span", T("shown above"), "tag"));
  const when = el("td", undefined, "nowrap"); when.append(timeEl(v.hlc, dateTime(v.hlc)));
  const cs = el("td"); cs.append(el("code", String(v.cs_id || "").slice(0, 12) + " #" + v.index, "small"));
  cs.title = T("change-set {id}, op {index}, sequence {seq}", { id: v.cs_id, index: v.index, seq: v.seq });
  tr.append(who, el("td", own(STATUS, v.op) ? T(own(STATUS, v.op)) : plain(v.op), v.op === "put" ? "" : "warn"), when, el("td", v.author), cs);
  return tr;
}
function divergences(d, n) {
  const div = $("divergences"); div.replaceChildren();
  const diff = Object.keys(d.divergent_fields || {});
  if (!diff.length) {
    div.append(el("p", n > 1 ? T("Every directory that lists this Point of Contact gives the same details.")
      : T("Only one directory lists this Point of Contact."), "ok"));
    return;
  }
  div.append(el("p", T("The directories disagree on these fields. The details above come from the most recent change; " +
    "another directory's listing may be outdated."), "warn"));
  const t = el("table", undefined, "data"); const h = el("tr"); h.append(el("th", T("Field")), el("th", T("Value in each directory")));
  t.append(h);
  for (const f of diff) {
    const tr = el("tr"); const td = el("td");
    for (const [o, v] of Object.entries(d.divergent_fields[f])) {
      const line = el("div", undefined, "divline");
      line.append(originPill(o), " ", el("span", v === null || v === undefined ? T("(not given)") : plain(v)));
      td.append(line);
    }
    tr.append(el("th", labelOf(f)), td); t.append(tr);
  }
  div.append(t);
}
async function openEntry(key) {
  const [state, kind] = String(key).split("/");
  let d;
  try { d = await api("/v1/entries/" + encodeURIComponent(state) + "/" + encodeURIComponent(kind || "")); } catch (e) {
    if (current) { show("directory"); $("count").textContent = safe(e.message); }
    return;
  }
  const e = d.entry;
  $("entry-kind").textContent = own(KIND_POC, e.kind) ? T(own(KIND_POC, e.kind)) : T("{kind} Point of Contact", { kind: plain(e.kind) });
  $("entry-title").textContent = stateName(e.state) + " (" + e.state + ")";
  $("entry-org").textContent = plain(e.organisation);
  const lb = $("entry-listed"); lb.replaceChildren(); for (const o of listedBy(d)) lb.append(originPill(o), " ");
  const tb = $("entry-fields").querySelector("tbody"); tb.replaceChildren();
  const fields = LABELS.map(([f]) => f).concat(Object.keys(e).filter((f) => !own(LABEL, f) && !HIDDEN_FIELDS.has(f)));
  for (const f of fields) {
    if (e[f] === undefined || e[f] === null || f === "organisation") continue;
    const tr = el("tr"); const td = el("td"); td.append(fieldValue(f, e[f]));
    tr.append(el("th", labelOf(f)), td); tb.append(tr);
  }
  $("entry-vcard").href = "/v1/export?format=vcard&key=" + encodeURIComponent(d.key);
  const p = d.provenance, n = listedBy(d).length;
  const prov = $("provenance"); prov.replaceChildren();
  prov.append(...Tn("The details above are the version of {origin}, entered by {author} on {when}.",
    { origin: originPill(p.origin), author: el("strong", p.author), when: timeEl(p.hlc, dateTime(p.hlc)) }));
  if (n > 1) prov.append(" " + T("When several directories list a Point of Contact, the most recent change is shown."));
  $("versions").querySelector("tbody").replaceChildren(...d.versions.map((v) => versionRow(v, p)));
  const zone = tryIntl(() => Intl.DateTimeFormat().resolvedOptions().timeZone, "");
  $("tz-note").textContent = zone ? T("Times are shown in this computer’s time zone ({zone}).", { zone })
    : T("Times are shown in this computer’s time zone.");
  divergences(d, n);
  const extra = $("entry-extensions"); extra.replaceChildren();
  for (const hook of HOOKS.entry) { try { hook(d, extra); } catch (err) { console.warn(err); } }
  show("entry");
  window.scrollTo(0, 0);
}

// --- navigation: #/entry/<key> shows one entry; anything else the directory ----------------------------------
async function route() {
  if (!current) return;
  const m = /^#\/entry\/(.+)$/.exec(location.hash);
  if (m) return openEntry(decodeURIComponent(m[1]));
  show("directory");
  await search();
}

// --- the page's language: data-i18n texts of the HTML, Intl names, <html lang>, the switch ---------------------
// An element with data-i18n shows T(its English text); data-i18n-attr="placeholder aria-label" translates those
// attributes. The English stays in a map, so that switching again translates from the English.
const ENGLISH = new WeakMap();
function translateStatic() {
  for (const e of document.querySelectorAll("[data-i18n]")) {
    if (!ENGLISH.has(e)) ENGLISH.set(e, { text: e.textContent.replace(/\s+/g, " ").trim(), attrs: {} });
    e.textContent = T(ENGLISH.get(e).text);
  }
  for (const e of document.querySelectorAll("[data-i18n-attr]")) {
    if (!ENGLISH.has(e)) ENGLISH.set(e, { text: null, attrs: {} });
    const kept = ENGLISH.get(e).attrs;
    for (const a of String(e.getAttribute("data-i18n-attr")).split(/\s+/).filter(Boolean)) {
      if (!own(kept, a)) kept[a] = e.getAttribute(a) || "";
      e.setAttribute(a, T(kept[a]));
    }
  }
}
function setLanguage(lang) {
  LANG = Object.prototype.hasOwnProperty.call(LANGUAGES, lang) ? lang : "en";
  document.documentElement.lang = LANG;
  regionNames = tryIntl(() => new Intl.DisplayNames([locale(), LANG], { type: "region" }), null);
  languageNames = tryIntl(() => new Intl.DisplayNames([locale(), LANG], { type: "language" }), null);
  translateStatic();
  const sw = $("lang"); if (sw) sw.value = LANG;
}
function languageSwitch() {
  const sw = $("lang");
  sw.replaceChildren(...Object.entries(LANGUAGES).map(([code, name]) => {
    const o = el("option", name); o.value = code; o.lang = code; return o;
  }));
  sw.value = LANG;
  sw.addEventListener("change", () => {
    try { window.localStorage.setItem(LANG_KEY, sw.value); } catch (e) { /* private mode: this page only */ }
    setLanguage(sw.value);
    if (!$("signin-error").classList.contains("hidden")) $("signin-error").classList.add("hidden");
    if (current) {
      $("who").textContent = safe(T("Signed in as {subject} · directory of {node}", { subject: current.subject, node: current.node }));
      route();
    }
  });
}

// --- for feature scripts: hooks called when an entry is shown, and the helpers they may use -------------------
const HOOKS = { entry: [] };  // entry: (the GET /v1/entries/{state}/{kind} body, an empty container element)
window.pocsync = { HOOKS, TRANSLATIONS, LANGUAGES, T, Tn, N, api, el, safe, own, plain, originPill, timeEl, dateTime,
  dateOnly, stateName, languageName, labelOf, alpha2: (code) => own(ALPHA3_TO_2, String(code)), locale: () => locale(),
  session: () => current, lang: () => LANG };

$("signin-btn").addEventListener("click", () => { signIn(); });
$("token").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) signIn(); });
$("filters").addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(typing); search(); });
$("q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { if (current) search(); }, 300); });
$("clear-btn").addEventListener("click", () => { for (const k of ["q", "state", "kind", "network"]) $(k).value = ""; search(); });
$("back").addEventListener("click", (e) => { e.preventDefault(); location.hash = ""; });
window.addEventListener("hashchange", () => { route(); });
$("signout").addEventListener("click", async () => {
  await fetch("/v1/session", { method: "DELETE", credentials: "same-origin" }).catch(() => {});
  location.replace(location.pathname);
});
languageSwitch();
setLanguage(LANG);
document.addEventListener("DOMContentLoaded", () => { translateStatic(); start(); });  // after the feature scripts
