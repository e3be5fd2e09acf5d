"use strict";
// "Write to this Point of Contact" (issue 17, ADR 0035): on any entry, a form generated from a template of the
// federation (GET /v1/templates), validated here, composes a plain-text message with a reference number, the
// sender's own entry as a signature block and the template's id and version; it is offered as a mailto: link
// (when short enough) and as a .eml file built in this browser, optionally encrypted with OpenPGP (ADR 0036).
//
// NOTHING COMPOSED EVER LEAVES THIS PAGE FOR THE NODE: this script only GETs templates and entries; the message
// is a Blob behind an object URL. Templates come from the federation and are untrusted: every text is rendered
// with textContent, schemas are checked against the subset PROTOCOL.md §18 allows (no $ref, patterns capped and
// refused when they could backtrack without bound), and no field can reach a header of the .eml.
(function () {
  const P = window.pocsync;
  if (!P) return;
  const { T, N, el, own } = P;

  const MAX_PATTERN = 200;       // characters of a schema pattern (PROTOCOL.md §18)
  const MAX_TEXT = 20000;        // characters of one field when the schema gives no maxLength
  const MAX_FIELDS = 64;         // properties of a schema (PROTOCOL.md §18.3, templates.MAX_PROPERTIES)
  const MAX_ENUM = 200;
  const MAILTO_MAX = 1800;       // characters of a mailto: URL that mail clients reliably take
  const MAX_KEY = 65536;         // characters of an armored public key read here
  const MAX_TO = 10;
  const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
  const NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
  // An address as a mail header may carry it: no space, comma, quote, angle bracket, CR or LF can pass, so an
  // entry's address can add no recipient and no header (no "Bcc:" through an address).
  const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
  // What a field may not hold (line feeds and tabs are allowed in multi-line fields): controls, separators, bidi.
  const BAD_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]|[\u{D800}-\u{DFFF}]/u;
  const REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";  // 32 letters: no 0/O, 1/I
  const OPENPGP = "/static/vendor/openpgp/openpgp.min.mjs";
  // A pattern of the safe subset still backtracks without bound on some inputs ("(a|)(a|)…(a|)b" exponentially,
  // "\\d*\\d*…\\d*" polynomially): it is tried in a worker that is ended after PATTERN_MS.
  const PATTERN_WORKER = "/static/pattern-worker.js";
  const PATTERN_MS = 1500;

  // --- words in the message's language (not necessarily the page's) -------------------------------------------
  function inLang(lang, text, vars) {
    const table = own(P.TRANSLATIONS, lang);
    const t = (lang !== "en" && table && own(table, text)) || text;
    return vars ? t.replace(/\{([a-z_]+)\}/g, (m, k) => (own(vars, k) !== undefined ? String(own(vars, k)) : m)) : t;
  }
  const W = {
    reference: N("Reference"), template: N("Template"), version: N("version {n}"), to: N("To"), date: N("Date"),
    email: N("Email"), telephone: N("Telephone"), fingerprint: N("OpenPGP key fingerprint"),
    yes: N("Yes"), no: N("No"), encrypted: N("Encrypted message"),
    technical: N("Technical Point of Contact"), diplomatic: N("Diplomatic Point of Contact"),
    footer: N("Composed with the Points of Contact directory; this message did not pass through the directory."),
  };
  function regionIn(lang, code) {
    const a2 = P.alpha2(code);
    let name = "";
    try { name = a2 ? new Intl.DisplayNames([lang], { type: "region" }).of(a2) : ""; } catch (e) { name = ""; }
    return name && name !== a2 ? name : line(code);  // an entry's field: never raw
  }
  const line = (v) => P.safe(String(v === undefined || v === null ? "" : v)).replace(/\s*\n\s*/g, " ").trim();

  // --- templates: the subset of JSON Schema the page understands, checked before anything is shown --------------
  function hasDollarKey(x, depth) {  // $ref, $defs, $id…: refused anywhere (no remote or local reference is followed)
    if (depth > 20) return true;
    if (Array.isArray(x)) return x.some((v) => hasDollarKey(v, depth + 1));
    if (x && typeof x === "object") {
      return Object.keys(x).some((k) => (k.startsWith("$") && k !== "$schema" && k !== "$comment") ||
        hasDollarKey(x[k], depth + 1));
    }
    return false;
  }
  // A pattern is compiled only when short, valid in Unicode mode, without back-references and without a
  // quantified group that holds a quantifier ((a+)+, (a|aa)*…): those are what makes a regular expression
  // backtrack without bound. The values it is tried on are capped too.
  const NESTED = /\((?:[^()\\]|\\.)*(?:[*+?]|\{\d)(?:[^()\\]|\\.)*\)\s*(?:[*+]|\{\d+,)/;
  const ALTERNATION_REPEATED = /\((?:[^()\\]|\\.)*\|(?:[^()\\]|\\.)*\)\s*(?:[*+]|\{\d+,)/;
  function compilePattern(p) {
    if (typeof p !== "string" || p.length > MAX_PATTERN) throw new Error(T("a pattern is longer than 200 characters"));
    if (/\\[1-9]|\\k</.test(p) || NESTED.test(p) || ALTERNATION_REPEATED.test(p)) {
      throw new Error(T("a pattern could take too long to check"));
    }
    try { return new RegExp(p, "u"); } catch (e) { /* "\\-" outside a class: valid without the u flag */ }
    try { return new RegExp(p); } catch (e) { throw new Error(T("a pattern is not a valid regular expression")); }
  }
  function checkTemplate(doc) {  // → { fields: [...], required: Set } or throws Error(words)
    const bad = (why) => { throw new Error(why); };
    if (!doc || typeof doc !== "object") bad(T("not a template"));
    if (typeof doc.id !== "string" || !ID.test(doc.id)) bad(T("its id is not valid"));
    if (!Number.isInteger(doc.version) || doc.version < 1) bad(T("its version is not valid"));
    const langs = doc.languages;
    if (!langs || typeof langs !== "object" || !own(langs, "en") || typeof own(langs, "en") !== "object") {
      bad(T("it has no English text"));
    }
    for (const [code, l] of Object.entries(langs)) {
      if (!/^[a-z]{2,3}$/.test(code) || !l || typeof l !== "object" || typeof l.title !== "string" ||
          typeof l.text !== "string") bad(T("a language of it has no title or text"));
    }
    const s = doc.schema;
    if (!s || typeof s !== "object" || s.type !== "object" || !s.properties || typeof s.properties !== "object" ||
        Array.isArray(s.properties)) bad(T("its schema is not an object with properties"));
    if (hasDollarKey(s, 0)) bad(T("its schema refers to other documents ($ref), which this page does not follow"));
    // The API gives documents as canonical JSON (members sorted by name), so the form's order is the schema's
    // "required" list (an array keeps its order), then the other fields by name.
    const req = Array.isArray(s.required) ? s.required.filter((r) => typeof r === "string" && own(s.properties, r)) : [];
    const names = [...new Set(req)].concat(Object.keys(s.properties).filter((n) => !req.includes(n)).sort());
    if (!names.length || names.length > MAX_FIELDS) bad(T("it has no field, or too many"));
    const required = new Set();
    if (s.required !== undefined) {
      if (!Array.isArray(s.required)) bad(T("its list of required fields is not valid"));
      for (const r of s.required) {
        if (typeof r !== "string" || !own(s.properties, r)) bad(T("it requires a field it does not define"));
        required.add(r);
      }
    }
    const fields = names.map((name) => {
      const d = own(s.properties, name);
      if (!NAME.test(name) || !d || typeof d !== "object") bad(T("a field name is not valid"));
      if (!["string", "integer", "boolean"].includes(d.type)) bad(T("a field has a type this page does not know"));
      const f = { name, type: d.type, required: required.has(name) };
      if (d.enum !== undefined) {
        const ok = Array.isArray(d.enum) && d.enum.length > 0 && d.enum.length <= MAX_ENUM &&
          d.enum.every((v) => (d.type === "integer" ? Number.isInteger(v) : d.type === "boolean" ? typeof v === "boolean"
            : typeof v === "string" && v.length <= 200));
        if (!ok) bad(T("a field's list of choices is not valid"));
        if (d.type === "boolean") f.allowed = d.enum; else f.enum = d.enum;  // §18.3 allows [true]: a checkbox that must be ticked
      }
      for (const k of ["maxLength", "minLength", "minimum", "maximum"]) {
        if (d[k] === undefined) continue;
        if (!Number.isInteger(d[k]) || (k.endsWith("Length") && (d[k] < 0 || d[k] > MAX_TEXT))) {
          bad(T("a field's limits are not valid"));
        }
        f[k] = d[k];
      }
      if (d.pattern !== undefined) {
        if (d.type !== "string") bad(T("a field's limits are not valid"));
        f.pattern = compilePattern(d.pattern);
      }
      if (d.format !== undefined) {
        if (d.type !== "string" || !["date-time", "email"].includes(d.format)) bad(T("a field has a format this page does not know"));
        f.format = d.format;
      }
      return f;
    });
    return { fields, required };
  }
  function langText(doc, lang) {  // the template's words in this language, else in English
    const l = own(doc.languages, lang);
    return l && typeof l === "object" ? l : own(doc.languages, "en");
  }
  function fieldWords(doc, lang, name) {  // { label, help, options } in this language, else English, else the name
    const pick = (l) => {
      const fs = l && typeof l.fields === "object" && l.fields ? own(l.fields, name) : undefined;
      return fs && typeof fs === "object" ? fs : {};
    };
    const mine = pick(own(doc.languages, lang)), en = pick(own(doc.languages, "en"));
    const str = (a, b) => (typeof a === "string" && a.trim() ? a : (typeof b === "string" && b.trim() ? b : undefined));
    const options = (o) => (o && typeof o === "object" && !Array.isArray(o) ? o : {});
    return {
      label: str(mine.label, en.label) || name.replace(/_/g, " "),
      help: str(mine.help, en.help),
      option: (v) => str(own(options(mine.options), String(v)), own(options(en.options), String(v))) || String(v),
    };
  }

  // --- the form ---------------------------------------------------------------------------------------------------
  function input(f, id) {
    let e;
    if (f.enum) {
      e = el("select");
      const blank = el("option", f.required ? T("Choose…") : T("(none)")); blank.value = ""; e.append(blank);
      for (const v of f.enum) { const o = el("option", String(v)); o.value = String(v); e.append(o); }
    } else if (f.type === "boolean") {
      e = el("input"); e.type = "checkbox";
    } else if (f.type === "string" && f.format === "date-time") {
      e = el("input"); e.type = "datetime-local"; e.step = "60";
    } else if (f.type === "string" && (f.maxLength === undefined || f.maxLength > 200)) {
      e = el("textarea"); e.rows = 5; e.className = "prose";
    } else {
      e = el("input"); e.type = "text";
      if (f.type === "integer") e.inputMode = "numeric";
      if (f.format === "email") { e.inputMode = "email"; e.autocomplete = "off"; }
    }
    e.id = id; e.dataset.field = f.name;
    if (f.maxLength !== undefined && e.tagName !== "SELECT" && e.type !== "checkbox") e.maxLength = f.maxLength;
    return e;
  }
  function patternTest(re, value) {  // → true, false, or null when the pattern took too long (worker ended)
    return new Promise((resolve) => {
      let w;
      try { w = new Worker(PATTERN_WORKER); } catch (e) { resolve(null); return; }
      let timer = null, load = null;
      const done = (r) => { clearTimeout(load); clearTimeout(timer); w.terminate(); resolve(r); };
      load = setTimeout(() => done(null), 30000);  // the worker script never came: refused, with words
      w.onmessage = (m) => {
        if (m.data === "started") { clearTimeout(load); timer = setTimeout(() => done(null), PATTERN_MS); return; }
        done(m.data === true);
      };
      w.onerror = () => done(null);
      w.postMessage({ source: re.source, flags: re.flags, value });
    });
  }
  async function validate(f, e) {  // → { value } or { error }
    if (f.type === "boolean") {
      if (f.allowed && !f.allowed.includes(e.checked)) return { error: T("Choose one of the values offered.") };
      return { value: e.checked };
    }
    const raw = String(e.value);
    const v = e.tagName === "TEXTAREA" ? raw.replace(/\r\n?/g, "\n").replace(/^\s*\n|\s+$/g, "") : raw.trim();
    if (!v) return f.required ? { error: T("This field is required.") } : { value: undefined };
    if (BAD_CHARS.test(v)) return { error: T("This field holds characters that cannot be sent (control characters).") };
    if (f.type === "integer") {
      if (!/^[+-]?[0-9]{1,15}$/.test(v)) return { error: T("Enter a whole number.") };
      const n = Number(v);
      if (f.minimum !== undefined && n < f.minimum) return { error: T("At least {n}.", { n: f.minimum }) };
      if (f.maximum !== undefined && n > f.maximum) return { error: T("At most {n}.", { n: f.maximum }) };
      if (f.enum && !f.enum.includes(n)) return { error: T("Choose one of the values offered.") };
      return { value: n };
    }
    const len = [...v].length;
    if (len > (f.maxLength !== undefined ? f.maxLength : MAX_TEXT)) {
      return { error: T("At most {n} characters.", { n: f.maxLength !== undefined ? f.maxLength : MAX_TEXT }) };
    }
    if (f.minLength !== undefined && len < f.minLength) return { error: T("At least {n} characters.", { n: f.minLength }) };
    if (f.enum && !f.enum.includes(v)) return { error: T("Choose one of the values offered.") };
    if (f.format === "email" && (!EMAIL.test(v) || v.length > 254)) return { error: T("Enter an e-mail address (name@example.org).") };
    let value = v;
    if (f.format === "date-time") {
      const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?$/.exec(v);
      const d = m ? new Date(2000, +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0)) : null;
      if (d) d.setFullYear(+m[1], +m[2] - 1, +m[3]);  // new Date(y, …) reads the years 0 to 99 as 1900 to 1999
      if (!d || isNaN(d) || d.getMonth() !== +m[2] - 1) return { error: T("Enter a date and time.") };
      value = d.toISOString().replace(/\.000Z$/, "Z");  // in UTC, as templates label their times
    }
    if (f.pattern) {
      const ok = await patternTest(f.pattern, v);
      if (ok === null) return { error: T("This template's pattern takes too long to check this value: the template cannot be used for it.") };
      if (!ok) return { error: T("This value does not have the form this template asks for.") };
    }
    return { value };
  }

  // --- the message ------------------------------------------------------------------------------------------------
  function reference() {  // PS-XXXX-XXXX-XXXX: 60 random bits, easy to read aloud over a telephone
    const b = new Uint8Array(12); crypto.getRandomValues(b);
    const c = Array.from(b, (x) => REF_ALPHABET[x & 31]).join("");
    return "PS-" + c.slice(0, 4) + "-" + c.slice(4, 8) + "-" + c.slice(8, 12);
  }
  function valueText(f, v, doc, lang) {
    if (f.type === "boolean") return inLang(lang, v ? W.yes : W.no);
    if (f.enum) {  // the label in the message's language, and the value itself when it says something else
      const o = line(fieldWords(doc, lang, f.name).option(v));  // the publisher's words: one line, no controls, no bidi
      return o.toLowerCase() === String(v).toLowerCase() ? o : o + " (" + v + ")";
    }
    return String(v);
  }
  function entryLines(e, lang) {  // a PoC entry as lines of text (the recipient's header, the sender's signature)
    const out = [];
    const kind = own(W, e.kind) ? inLang(lang, own(W, e.kind)) : line(e.kind);
    out.push(regionIn(lang, e.state) + " (" + line(e.state) + ") — " + kind);
    for (const k of ["organisation", "position", "person"]) if (e[k]) out.push(line(e[k]));
    const list = (x) => (Array.isArray(x) ? x.map(line).filter(Boolean).join(", ") : "");
    if (list(e.emails)) out.push(inLang(lang, W.email) + ": " + list(e.emails));
    if (list(e.phones)) out.push(inLang(lang, W.telephone) + ": " + list(e.phones));
    if (typeof e.public_key_fingerprint === "string") out.push(inLang(lang, W.fingerprint) + ": " + line(e.public_key_fingerprint));
    return out;
  }
  function composeText(ctx, values, ref, lang) {
    const { doc, checked, recipient, sender } = ctx;
    const words = langText(doc, lang);
    const out = [P.safe(words.title), ""];
    if (words.text.trim()) out.push(P.safe(words.text).trim(), "");
    out.push(inLang(lang, W.reference) + ": " + ref);
    out.push(inLang(lang, W.template) + ": " + doc.id + ", " + inLang(lang, W.version, { n: doc.version }));
    out.push(inLang(lang, W.date) + ": " + new Date().toISOString().replace(/\.[0-9]{3}Z$/, "Z"));
    out.push(inLang(lang, W.to) + ": " + entryLines(recipient, lang).slice(0, 2).join(" — "));
    out.push("");
    for (const f of checked.fields) {
      const v = own(values, f.name);
      if (v === undefined) continue;
      const label = P.safe(fieldWords(doc, lang, f.name).label).replace(/\s+/g, " ").trim();
      const text = valueText(f, v, doc, lang);
      if (text.includes("\n")) out.push(label + ":", ...text.split("\n").map((l) => "  " + l), "");
      else out.push(label + ": " + text);
    }
    out.push("", "-- ");  // the signature separator: the sender's own entry
    out.push(...(sender ? entryLines(sender, lang) : [line(P.session().subject)]));
    out.push("", inLang(lang, W.footer));
    return out.join("\n").replace(/\n{3,}/g, "\n\n") + "\n";
  }

  // --- the .eml: every header from a fixed name and a checked value ------------------------------------------------
  function utf8(s) { return new TextEncoder().encode(s); }
  function b64(bytes) { let s = ""; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); }
  function headerValue(v) {  // ASCII stays; anything else becomes RFC 2047 encoded words. CR, LF and controls: refused.
    v = String(v);
    if (/[\u0000-\u001f\u007f]/.test(v)) throw new Error(T("A header would hold a line break; the message was not made."));
    if (/^[\u0020-\u007e]*$/.test(v)) return v;
    const words = []; let chunk = "";
    for (const ch of v) {
      if (utf8(chunk + ch).length > 45) { words.push(chunk); chunk = ""; }
      chunk += ch;
    }
    if (chunk) words.push(chunk);
    return words.map((w) => "=?UTF-8?B?" + b64(utf8(w)) + "?=").join("\r\n ");
  }
  function rfc5322Date(d) {
    const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const p = (n) => String(n).padStart(2, "0");
    return days[d.getUTCDay()] + ", " + p(d.getUTCDate()) + " " + months[d.getUTCMonth()] + " " + d.getUTCFullYear() +
      " " + p(d.getUTCHours()) + ":" + p(d.getUTCMinutes()) + ":" + p(d.getUTCSeconds()) + " +0000";
  }
  function addresses(list) {  // the entry's addresses a header can carry; the others are left out (and said so)
    const ok = [], left = [];
    for (const a of Array.isArray(list) ? list : []) {
      const s = String(a).trim();
      if (EMAIL.test(s) && s.length <= 254 && ok.length < MAX_TO) { if (!ok.includes(s)) ok.push(s); } else left.push(s);
    }
    return { ok, left };
  }
  function buildEml({ to, from, subject, body, ref, doc, armored }) {
    const h = [];
    const add = (name, value) => h.push(name + ": " + headerValue(value));
    if (from) add("From", from);
    h.push("To: " + to.map(headerValue).join(",\r\n "));  // folded: up to MAX_TO addresses of 254 characters
    add("Subject", subject);
    add("Date", rfc5322Date(new Date()));
    add("Message-ID", "<" + ref.toLowerCase() + "." + Date.now().toString(36) + "@pocsync.invalid>");
    add("X-Unsent", "1");  // mail clients open it as a draft to send
    add("X-Pocsync-Reference", ref);
    if (!armored) add("X-Pocsync-Template", doc.id + "; version=" + doc.version);  // encrypted: inside only
    add("MIME-Version", "1.0");
    if (armored) {  // inline OpenPGP: the armored message is the whole text/plain body (ASCII only)
      add("Content-Type", "text/plain; charset=us-ascii");
      add("Content-Transfer-Encoding", "7bit");
      return h.join("\r\n") + "\r\n\r\n" + body.replace(/\r?\n/g, "\r\n");
    }
    add("Content-Type", "text/plain; charset=utf-8");
    add("Content-Transfer-Encoding", "base64");
    const enc = b64(utf8(body.replace(/\r?\n/g, "\r\n"))).match(/.{1,76}/g) || [];
    return h.join("\r\n") + "\r\n\r\n" + enc.join("\r\n") + "\r\n";
  }
  function mailtoUrl(to, subject, body) {
    const enc = (s) => encodeURIComponent(s);
    return "mailto:" + to.map((a) => enc(a).replace(/%40/g, "@")).join(",") + "?subject=" + enc(subject) +
      "&body=" + enc(body.replace(/\r?\n/g, "\r\n"));
  }

  // --- OpenPGP, in this page ------------------------------------------------------------------------------------
  let openpgpModule = null;
  async function openpgp() {
    if (!openpgpModule) openpgpModule = import(OPENPGP);
    try { return await openpgpModule; } catch (e) { openpgpModule = null; throw new Error(T("The OpenPGP library could not be loaded.")); }
  }
  async function readKey(pgp, armored, expectedFpr, whose) {
    if (typeof armored !== "string" || armored.length > MAX_KEY || !armored.includes("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
      throw new Error(T("{whose}: the OpenPGP key is not an armored public key.", { whose }));
    }
    let key;
    try { key = await pgp.readKey({ armoredKey: armored }); } catch (e) {
      throw new Error(T("{whose}: the OpenPGP key cannot be read.", { whose }));
    }
    const fpr = key.getFingerprint().toUpperCase();
    if (typeof expectedFpr !== "string" || !expectedFpr.trim()) {  // a key no fingerprint vouches for: not used
      throw new Error(T("{whose}: the entry lists an OpenPGP key but no fingerprint; the message was not encrypted.", { whose }));
    }
    if (expectedFpr.replace(/\s+/g, "").toUpperCase() !== fpr) {
      throw new Error(T("{whose}: the OpenPGP key does not match the fingerprint the entry lists.", { whose }));
    }
    try { await key.getEncryptionKey(); } catch (e) {
      throw new Error(T("{whose}: the OpenPGP key cannot encrypt (expired, revoked or without an encryption subkey).", { whose }));
    }
    return key;
  }
  async function encrypt(text, recipient, sender) {
    const pgp = await openpgp();
    const keys = [await readKey(pgp, recipient.public_key, recipient.public_key_fingerprint, T("The recipient's entry"))];
    if (sender && typeof sender.public_key === "string") {
      keys.push(await readKey(pgp, sender.public_key, sender.public_key_fingerprint, T("Your own entry")));
    }
    const message = await pgp.createMessage({ text });
    return { armored: await pgp.encrypt({ message, encryptionKeys: keys, format: "armored" }), toSelf: keys.length > 1 };
  }

  // --- the card on each entry -----------------------------------------------------------------------------------
  let senderCache = null;  // { subject, entry|null }
  async function senderEntry() {
    const s = P.session();
    if (!s) return null;
    if (senderCache && senderCache.subject === s.subject) return senderCache.entry;
    const [state, kind] = String(s.subject).split("/");
    let entry = null;
    try { entry = (await P.api("/v1/entries/" + encodeURIComponent(state) + "/" + encodeURIComponent(kind || ""))).entry; }
    catch (e) { entry = null; }
    senderCache = { subject: s.subject, entry };
    return entry;
  }

  function card(d, container) {
    const box = el("div", undefined, "card compose"); box.id = "compose";
    const h = el("h2", T("Write to this Point of Contact"));
    const intro = el("p", T("Write a message with a template of the federation. The message is composed in this " +
      "browser and never sent to the directory: you send it with your own mail program."), "muted small");
    const open = el("button", T("Write to this Point of Contact"), "primary"); open.type = "button"; open.id = "compose-open";
    const body = el("div"); body.id = "compose-body";
    box.append(h, intro, open, body);
    container.append(box);
    open.addEventListener("click", () => { open.disabled = true; start(d, body).finally(() => { open.classList.add("hidden"); }); });
  }

  async function start(d, body) {
    body.replaceChildren(el("p", T("Loading the templates…"), "muted"));
    let list, sender;
    try { [list, sender] = await Promise.all([P.api("/v1/templates"), senderEntry()]); } catch (e) {
      body.replaceChildren(el("p", T("The templates could not be loaded: {why}", { why: e.message }), "bad")); return;
    }
    const usable = [], refused = [];
    for (const doc of Array.isArray(list && list.templates) ? list.templates : []) {
      try { usable.push({ doc, checked: checkTemplate(doc) }); }
      catch (e) { refused.push(T("Template {id} cannot be used: {why}", { id: line(doc && doc.id), why: e.message })); }
    }
    body.replaceChildren();
    for (const r of refused) body.append(el("p", r, "warn small"));
    if (!usable.length) { body.append(el("p", T("This directory holds no template yet."), "muted")); return; }
    const lab = el("label", T("Template"), "field-label"); lab.htmlFor = "compose-template";
    const pick = el("select"); pick.id = "compose-template";
    for (const [i, t] of usable.entries()) {
      const o = el("option", langText(t.doc, P.lang()).title + " — " + t.doc.id + " v" + t.doc.version); o.value = String(i);
      pick.append(o);
    }
    const form = el("div"); form.id = "compose-form";
    body.append(lab, pick, form);
    const show = () => renderForm({ ...usable[Number(pick.value)], recipient: d.entry, sender }, form);
    pick.addEventListener("change", show);
    show();
  }

  function renderForm(ctx, form) {
    const { doc, checked, recipient } = ctx;
    const lang = P.lang();
    const words = langText(doc, lang);
    form.replaceChildren();
    const head = el("div", undefined, "template-text");
    head.append(el("h3", words.title), el("p", words.text, "prose-text"));
    form.append(head);
    const inputs = new Map();
    for (const f of checked.fields) {
      const id = "cf-" + f.name, fw = fieldWords(doc, lang, f.name);
      const wrap = el("div", undefined, "cfield");
      const label = el("label", fw.label, "field-label"); label.htmlFor = id;
      if (f.required) label.append(" ", el("span", T("(required)"), "muted small"));
      const e = input(f, id);
      if (f.enum) for (const o of e.options) if (o.value) o.textContent = P.safe(fw.option(o.value));
      wrap.append(label);
      if (fw.help) wrap.append(el("p", fw.help, "muted small"));
      if (f.format === "date-time") {
        const zone = (() => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (x) { return ""; } })();
        wrap.append(el("p", T("Enter the time in this computer’s time zone ({zone}); the message gives it in UTC.",
          { zone: zone || "?" }), "muted small"));
      }
      const err = el("p", undefined, "bad small cerror hidden"); err.id = "cerr-" + f.name;
      wrap.append(e, err);
      form.append(wrap);
      inputs.set(f.name, { f, e, err });
    }
    // the message's language: the template's languages; first the recipient's, then the page's
    const langs = Object.keys(doc.languages);
    const wanted = (Array.isArray(recipient.languages) ? recipient.languages.map((x) => String(x).toLowerCase()) : [])
      .concat([lang, "en"]);
    const ml = el("select"); ml.id = "compose-language";
    for (const code of langs) { const o = el("option", P.languageName(code) + " (" + code + ")"); o.value = code; ml.append(o); }
    ml.value = wanted.find((c) => langs.includes(c)) || "en";
    const mlLab = el("label", T("Language of the message"), "field-label"); mlLab.htmlFor = "compose-language";
    form.append(mlLab, ml);

    const to = addresses(recipient.emails);
    const hasKey = typeof recipient.public_key === "string" && recipient.public_key.includes("BEGIN PGP PUBLIC KEY BLOCK");
    let enc = null;
    if (hasKey) {
      const row = el("label", undefined, "check");
      enc = el("input"); enc.type = "checkbox"; enc.id = "compose-encrypt"; enc.checked = true;
      row.append(enc, " ", T("Encrypt with OpenPGP to the key in this entry (and to the key in your own entry)"));
      form.append(row);
    } else {
      form.append(el("p", T("This entry lists no OpenPGP key: the message can only be sent unencrypted."), "muted small"));
    }
    if (to.left.length) form.append(el("p", T("Left out (not a usable e-mail address): {list}", { list: to.left.map(line).join(", ") }), "warn small"));
    const go = el("button", T("Compose the message"), "primary"); go.type = "button"; go.id = "compose-go";
    const errors = el("div", undefined, "notice bad hidden"); errors.id = "compose-errors"; errors.setAttribute("role", "alert");
    const result = el("div", undefined, "compose-result hidden"); result.id = "compose-result";
    form.append(el("div", undefined, "actions"), errors, result);
    form.querySelector(".actions").append(go);
    let url = null;
    go.addEventListener("click", async () => {
      errors.classList.add("hidden"); errors.replaceChildren();
      result.classList.add("hidden"); result.replaceChildren();
      if (url) { URL.revokeObjectURL(url); url = null; }
      const values = {}, problems = [];
      for (const [name, { f, e, err }] of inputs) {
        const r = await validate(f, e);
        err.classList.toggle("hidden", !r.error); err.textContent = r.error ? r.error : "";
        e.setAttribute("aria-invalid", r.error ? "true" : "false");
        if (r.error) problems.push(fieldWords(doc, lang, name).label + ": " + r.error); else if (r.value !== undefined) values[name] = r.value;
      }
      if (!to.ok.length) problems.push(T("This entry lists no usable e-mail address."));
      if (problems.length) {
        errors.append(el("p", T("The message was not made. Correct these fields:")));
        for (const p of problems) errors.append(el("p", p, "small"));
        errors.classList.remove("hidden");
        return;
      }
      go.disabled = true;
      try {
        const ref = reference(), mlang = ml.value;
        const text = composeText(ctx, values, ref, mlang);
        let body = text, armored = false, toSelf = false;
        if (enc && enc.checked) { const r = await encrypt(text, recipient, ctx.sender); body = r.armored; armored = true; toSelf = r.toSelf; }
        const subject = "[" + ref + "] " + (armored ? inLang(mlang, W.encrypted) : line(langText(doc, mlang).title));
        const from = ctx.sender ? addresses(ctx.sender.emails).ok[0] : undefined;
        const eml = buildEml({ to: to.ok, from, subject, body, ref, doc, armored });
        url = URL.createObjectURL(new Blob([eml], { type: "message/rfc822" }));
        showResult(result, { ref, text, body, armored, toSelf, url, mailto: mailtoUrl(to.ok, subject, body), to: to.ok });
      } catch (e) {
        errors.append(el("p", e.message)); errors.classList.remove("hidden");
      } finally { go.disabled = false; }
    });
  }

  function showResult(result, r) {
    const ref = el("p"); ref.append(T("Reference number") + ": ", el("strong", r.ref)); ref.id = "compose-ref";
    ref.querySelector("strong").id = "compose-ref-value";
    result.append(ref, el("p", T("Keep this reference: the recipient quotes it in the reply."), "muted small"));
    result.append(el("p", T("To: {list}", { list: r.to.join(", ") }), "small"));
    if (r.armored) {
      result.append(el("p", r.toSelf ? T("Encrypted with OpenPGP to the recipient's key and to yours.")
        : T("Encrypted with OpenPGP to the recipient's key only: your own entry lists no key, so you cannot read it again."), "ok small"));
    }
    const links = el("div", undefined, "actions");
    const dl = el("a", T("Download the message (.eml)"), "button"); dl.id = "compose-eml";
    dl.href = r.url; dl.download = r.ref + ".eml";
    links.append(dl);
    if (r.mailto.length <= MAILTO_MAX) {
      const m = el("a", T("Open in your mail program")); m.id = "compose-mailto"; m.href = r.mailto;
      links.append(" ", m);
    } else {
      links.append(" ", el("span", T("Too long for a mail link: download the message and open it in your mail program."), "muted small"));
    }
    result.append(links);
    const pre = el("pre", undefined, "message"); pre.id = "compose-preview";
    pre.textContent = r.body;  // the whole message, as text; the preview shows what will be sent
    result.append(pre);
    if (r.armored) {  // what was encrypted, for the sender's eyes only
      const det = el("details"); det.append(el("summary", T("Show the text before encryption")));
      const plainText = el("pre", undefined, "message"); plainText.id = "compose-plain"; plainText.textContent = r.text;
      det.append(plainText); result.append(det);
    }
    result.classList.remove("hidden");
  }

  P.HOOKS.entry.push(card);
})();
