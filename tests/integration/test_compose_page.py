"""Writing to a PoC with a template, in real Chromium (issue 17): composed, validated and encrypted in the page.

A federation of real nodes; the UN node publishes the shipped templates; a PoC signs in, opens an entry and
writes with every template. The .eml the page builds is parsed with the standard library's email parser; the
OpenPGP-encrypted one is decrypted with GnuPG (keys made in a throwaway GNUPGHOME). Afterwards nothing of any
composed message (reference numbers, unique field values) is in the node's log (access log included), store
file or audit log. The page also speaks French and Spanish. Any console error (a CSP violation included) fails.
"""

from __future__ import annotations

import email
import json
import re
import secrets
import shutil
import subprocess
import time
import urllib.parse
from email import policy
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import browser, screenshot
from tests.support.cli import run
from tests.support.nodes import Federation, entry

pytestmark = pytest.mark.slow

TEMPLATES = Path(__file__).parents[2] / "pocsync" / "templates"
REF = re.compile(r"^PS-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$")
GPG = shutil.which("gpg")
# addresses no header may carry: each would add a recipient or a header if copied as it is
HOSTILE_EMAILS = [
    "dipl-ita@example.org",
    "spy@example.org, other@example.org",
    "Desk <x@example.org>",
    "desk-ita@example.org",
    "x@example.org>\r\nBcc: spy@example.org",
    "x@example.org\nBcc:spy@example.org",
]


def gpg(home: Path, *args: str, input: bytes | None = None) -> bytes:
    r = subprocess.run(
        [
            GPG or "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            *args,
        ],
        input=input,
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout


def make_key(home: Path, uid: str) -> tuple[str, str]:
    """A throwaway OpenPGP key (ed25519 + cv25519) in its own GNUPGHOME: (armored public key, fingerprint)."""
    home.mkdir(mode=0o700)
    gpg(home, "--quick-gen-key", uid, "future-default", "default", "never")
    fpr = next(
        line.split(":")[9]
        for line in gpg(home, "--with-colons", "--fingerprint", uid).decode().splitlines()
        if line.startswith("fpr:")
    )
    return gpg(home, "--armor", "--export", uid).decode(), fpr


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory):
    if GPG is None:
        pytest.fail("gpg is not installed: scripts/test installs it (the gnupg package)")
    base = tmp_path_factory.mktemp("compose")
    keys = {
        "recipient": make_key(base / "gpg-recipient", "FRA technical PoC <tech-fra@example.org>"),
        "sender": make_key(base / "gpg-sender", "DEU technical PoC <tech-deu@example.org>"),
    }
    f = Federation(base, ("un", "eu", "osce"), pull_interval=2)
    f.start()
    f["eu"].put(
        entry(
            "DEU/technical",
            position="Head of the national CERT (fictional)",
            phones=["+493012345678"],
            public_key=keys["sender"][0],
            public_key_fingerprint=keys["sender"][1],
        ),
        entry(
            "FRA/technical",
            languages=["fr", "en"],
            public_key=keys["recipient"][0],
            public_key_fingerprint=keys["recipient"][1],
        ),
        entry("ITA/diplomatic"),
    )
    run("template", "publish", "--data", f["un"].data, "--shipped", "--no-peer-check")
    f.wait_converged()
    f.base = base  # type: ignore[attr-defined]
    f.keys = keys  # type: ignore[attr-defined]
    yield f
    f.stop()


def poc(fed: Federation, node: str, key: str) -> str:
    return run("token", "issue", "--data", fed[node].data, "--poc", key, "--days", "2").output.strip()


def shipped() -> list[dict[str, Any]]:
    return sorted((json.loads(p.read_text()) for p in TEMPLATES.glob("*.json")), key=lambda d: d["id"])


def fill(page: Any, doc: dict[str, Any], mark: str) -> dict[str, str]:
    """Fills every field of the template's form; returns what the message must show for each (by English label)."""
    en = doc["languages"]["en"]["fields"]
    want: dict[str, str] = {}
    for name, prop in doc["schema"]["properties"].items():
        box = page.locator(f'[data-field="{name}"]')
        label = en.get(name, {}).get("label", name)
        if "enum" in prop:
            value = prop["enum"][-1]
            box.select_option(str(value))
            shown = en.get(name, {}).get("options", {}).get(value, str(value))
            want[label] = shown if shown.lower() == str(value).lower() else f"{shown} ({value})"
        elif prop["type"] == "boolean":
            box.check()
            want[label] = "Yes"
        elif prop["type"] == "integer":
            box.fill("42")
            want[label] = "42"
        elif prop.get("format") == "date-time":
            box.fill("2026-11-30T14:05")
            want[label] = "2026-11-30T19:05:00Z"  # typed in the page's zone (New York), given in UTC
        elif prop.get("format") == "email":
            box.fill("desk-test@example.org")
            want[label] = "desk-test@example.org"
        elif "pattern" in prop:
            box.fill(f"PS-{mark[:4]}")
            want[label] = f"PS-{mark[:4]}"
        else:
            value = f"{name} {mark}"[: prop.get("maxLength", 10_000)]
            box.fill(value)
            want[label] = value
    return want


def download(page: Any) -> email.message.EmailMessage:
    with page.expect_download() as dl:
        page.click("#compose-eml")
    raw = Path(dl.value.path()).read_bytes()
    assert dl.value.suggested_filename == page.inner_text("#compose-ref-value").strip() + ".eml"
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def text_of(msg: email.message.EmailMessage) -> str:
    return msg.get_content().replace("\r\n", "\n")


def new_page(b: Any, console: list[str], locale: str = "en-GB") -> tuple[Any, Any]:
    from playwright.sync_api import expect

    ctx = b.new_context(
        accept_downloads=True, locale=locale, timezone_id="America/New_York", viewport={"width": 1280, "height": 900}
    )
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    return ctx, page


def sign_in(page: Any, url: str, token: str) -> None:
    from playwright.sync_api import expect

    page.goto(url + "/")
    expect(page.locator("#signin")).to_be_visible()
    page.fill("#token", token)
    page.click("#signin-btn")
    expect(page.locator("#directory")).to_be_visible()


def open_compose(page: Any, url: str, key: str, n_templates: int) -> None:
    from playwright.sync_api import expect

    page.goto(url + "/#/entry/" + urllib.parse.quote(key, safe=""))
    expect(page.locator("#entry-title")).to_contain_text(key.split("/")[0])
    page.click("#compose-open")
    expect(page.locator("#compose-template option")).to_have_count(n_templates)


def test_write_with_every_template_and_nothing_reaches_the_node(fed: Federation) -> None:
    from playwright.sync_api import expect

    docs = shipped()
    assert len(docs) >= 3
    url = fed["eu"].url
    marks: list[str] = []
    refs: list[str] = []
    console: list[str] = []
    mailtos = 0
    with browser() as b:
        ctx, page = new_page(b, console)
        sign_in(page, url, poc(fed, "eu", "DEU/technical"))
        open_compose(page, url, "FRA/technical", len(docs))
        # the form's order: the required fields as the template lists them, then the others by name
        doc = next(d for d in docs if d["id"] == "request-for-assistance")
        page.select_option("#compose-template", str(docs.index(doc)))
        shown = page.locator("[data-field]").evaluate_all("(xs) => xs.map((x) => x.dataset.field)")
        required = doc["schema"]["required"]
        assert shown == required + sorted(set(doc["schema"]["properties"]) - set(required))
        options = page.locator("#compose-template option").all_inner_texts()
        assert [o.rsplit(" — ", 1)[1] for o in options] == [f"{d['id']} v{d['version']}" for d in docs]

        for i, doc in enumerate(docs):
            page.select_option("#compose-template", str(i))
            expect(page.locator("#compose-form h3")).to_have_text(doc["languages"]["en"]["title"])
            mark = "Zq" + secrets.token_hex(6)
            marks.append(mark)
            want = fill(page, doc, mark)
            page.select_option("#compose-language", "en")
            if page.locator("#compose-encrypt").count():
                page.uncheck("#compose-encrypt")
            page.click("#compose-go")
            expect(page.locator("#compose-result")).to_be_visible()
            ref = page.inner_text("#compose-ref-value").strip()
            assert REF.match(ref), ref
            refs.append(ref)
            msg = download(page)
            body = text_of(msg)
            assert msg["To"] == "tech-fra@example.org"
            assert msg["From"] == "tech-deu@example.org"
            assert msg["Subject"] == f"[{ref}] {doc['languages']['en']['title']}"
            assert msg["X-Pocsync-Reference"] == ref
            assert msg["X-Pocsync-Template"] == f"{doc['id']}; version={doc['version']}"
            assert msg["Bcc"] is None and msg["Cc"] is None
            assert msg.get_content_type() == "text/plain"
            assert f"Reference: {ref}" in body
            assert f"Template: {doc['id']}, version {doc['version']}" in body
            assert "To: France (FRA) — Technical Point of Contact" in body
            for label, value in want.items():
                assert f"{label}: {value}" in body, (label, value, body)
            signature = body.split("\n-- \n", 1)[1]  # the sender's own entry
            assert "Germany (DEU) — Technical Point of Contact" in signature
            assert "Example technical PoC of DEU (fictional)" in signature
            assert "Head of the national CERT (fictional)" in signature
            assert "tech-deu@example.org" in signature and "+493012345678" in signature
            assert fed.keys["sender"][1] in signature  # type: ignore[attr-defined]
            assert page.inner_text("#compose-preview").replace("\r\n", "\n").strip() == body.strip()
            mailto = page.locator("#compose-mailto")
            mailtos += mailto.count()
            if mailto.count():
                href = mailto.get_attribute("href")
                assert len(href) <= 1800
                parsed = urllib.parse.urlsplit(href)
                q = urllib.parse.parse_qs(parsed.query)
                assert parsed.scheme == "mailto" and parsed.path == "tech-fra@example.org"
                assert q["subject"] == [msg["Subject"]] and q["body"][0].replace("\r\n", "\n") == body
            else:
                expect(page.locator("#compose-result")).to_contain_text("Too long for a mail link")
            screenshot(page, f"compose-{doc['id']}")
        assert mailtos >= 1  # the shorter messages get a mailto: link too (the encrypted one below cannot)

        # invalid input is refused in the page: nothing is made
        doc = next(d for d in docs if any("pattern" in p for p in d["schema"]["properties"].values()))
        page.select_option("#compose-template", str(docs.index(doc)))
        fill(page, doc, "Zq" + secrets.token_hex(6))
        if page.locator("#compose-encrypt").count():
            page.uncheck("#compose-encrypt")
        props = doc["schema"]["properties"]
        pattern_field = next(n for n, p in props.items() if "pattern" in p)
        required = next(n for n in doc["schema"]["required"] if n != pattern_field)
        email_field = next(n for n, p in props.items() if p.get("format") == "email")
        free = next(n for n, p in props.items() if p["type"] == "string" and not {"enum", "pattern", "format"} & set(p))
        page.fill(f'[data-field="{pattern_field}"]', "not a reference!")
        if "enum" in props[required]:
            page.select_option(f'[data-field="{required}"]', "")
        else:
            page.fill(f'[data-field="{required}"]', "")
        page.fill(f'[data-field="{email_field}"]', "desk at example.org")
        page.fill(f'[data-field="{free}"]', "ok\u0007bell")
        page.click("#compose-go")
        expect(page.locator("#compose-errors")).to_be_visible()
        expect(page.locator(f"#cerr-{pattern_field}")).to_have_text(
            "This value does not have the form this template asks for."
        )
        expect(page.locator(f"#cerr-{required}")).to_have_text("This field is required.")
        expect(page.locator(f"#cerr-{email_field}")).to_have_text("Enter an e-mail address (name@example.org).")
        expect(page.locator(f"#cerr-{free}")).to_contain_text("control characters")
        expect(page.locator("#compose-result")).to_be_hidden()
        assert page.locator("#compose-eml").count() == 0 and page.locator("#compose-mailto").count() == 0
        screenshot(page, "compose-refused")
        # corrected, it is made
        fill(page, doc, "Zq" + secrets.token_hex(6))
        page.click("#compose-go")
        expect(page.locator("#compose-result")).to_be_visible()
        expect(page.locator("#compose-errors")).to_be_hidden()
        refs.append(page.inner_text("#compose-ref-value").strip())

        # a field's text cannot reach a header; addresses that would add a recipient or a header are left out.
        # Nodes check addresses before signing, but the page does not rely on every origin doing so: here the
        # entry as a careless or hostile origin could have signed it.
        def hostile(route: Any) -> None:
            body = route.fetch().json()
            body["entry"]["emails"] = HOSTILE_EMAILS
            route.fulfill(json=body)

        page.route("**/v1/entries/ITA/diplomatic", hostile)
        open_compose(page, url, "ITA/diplomatic", len(docs))
        doc = docs[0]
        page.select_option("#compose-template", "0")
        mark = "Zq" + secrets.token_hex(6)
        marks.append(mark)
        fill(page, doc, mark)
        free = next(
            n
            for n, p in doc["schema"]["properties"].items()
            if p["type"] == "string" and not {"enum", "pattern", "format"} & set(p)
        )
        page.fill(f'[data-field="{free}"]', f"{mark}\r\nBcc: spy@example.org\r\nSubject: forged")
        expect(page.locator("#compose-encrypt")).to_have_count(0)  # no key in this entry
        expect(page.locator("#compose-form")).to_contain_text("Left out (not a usable e-mail address)")
        page.click("#compose-go")
        refs.append(page.inner_text("#compose-ref-value").strip())
        msg = download(page)
        assert [a.addr_spec for a in msg["To"].addresses] == ["dipl-ita@example.org", "desk-ita@example.org"]
        assert msg["Bcc"] is None and len(msg.get_all("Subject")) == 1 and "forged" not in msg["Subject"]
        assert "Bcc: spy@example.org" in text_of(msg)  # in the body, as text

        # OpenPGP: encrypted in the page to the recipient's key and the sender's own
        open_compose(page, url, "FRA/technical", len(docs))
        doc = docs[0]
        page.select_option("#compose-template", "0")
        mark = "Zq" + secrets.token_hex(6)
        marks.append(mark)
        want = fill(page, doc, mark)
        expect(page.locator("#compose-encrypt")).to_be_checked()
        page.select_option("#compose-language", "fr")
        page.click("#compose-go")
        expect(page.locator("#compose-result")).to_contain_text("to the recipient's key and to yours")
        expect(page.locator("#compose-result")).to_contain_text("Too long for a mail link")
        assert page.locator("#compose-mailto").count() == 0
        ref = page.inner_text("#compose-ref-value").strip()
        refs.append(ref)
        msg = download(page)
        armored = msg.get_content()
        assert armored.startswith("-----BEGIN PGP MESSAGE-----") and mark not in armored
        assert msg["Subject"] == f"[{ref}] Message chiffré" and doc["languages"]["fr"]["title"] not in msg["Subject"]
        assert msg["X-Pocsync-Template"] is None and msg["X-Pocsync-Reference"] == ref
        assert mark not in msg.as_string()
        plain = page.locator("#compose-plain").text_content().replace("\r\n", "\n")
        for who in ("recipient", "sender"):
            out = gpg(fed.base / f"gpg-{who}", "--decrypt", input=armored.encode()).decode()  # type: ignore[attr-defined]
            assert out.replace("\r\n", "\n") == plain
        assert f"Référence : {ref}" in plain or f"Référence: {ref}" in plain
        assert f"{mark}" in plain and doc["languages"]["fr"]["title"] in plain
        assert fed.keys["sender"][1] in plain  # type: ignore[attr-defined]
        screenshot(page, "compose-encrypted")
        ctx.close()
    assert console == []

    # nothing composed reached the node: its log (aiohttp's access log included), store files and audit log
    node = fed["eu"]
    log = node.log.read_text()
    assert "/v1/templates" in log  # the access log is there: the page's requests are in it
    deadline = time.monotonic() + 30  # audit rows are group-committed within 1 s (ADR 21)
    while True:
        audit = run("audit", "--data", node.data, "--limit", "1000", "--json").output
        if "templates.list" in audit and "entries.get" in audit:
            break
        assert time.monotonic() < deadline, "the page's reads were never audited"
        time.sleep(0.2)
    store = b"".join(p.read_bytes() for p in node.data.iterdir() if p.name.startswith("store.sqlite"))
    assert b"Example technical PoC of FRA (fictional)" in store  # the search finds what the store does hold
    for secret in refs + marks:
        assert secret not in log, secret
        assert secret not in audit, secret
        assert secret.encode() not in store, secret


def test_the_page_speaks_french_and_spanish(fed: Federation) -> None:
    from playwright.sync_api import expect

    docs = shipped()
    url = fed["eu"].url
    console: list[str] = []
    with browser() as b:
        ctx, page = new_page(b, console, locale="fr-FR")
        page.goto(url + "/")
        expect(page.locator("#signin-btn")).to_have_text("Se connecter")
        assert page.evaluate("document.documentElement.lang") == "fr"
        expect(page.locator("#lang")).to_have_value("fr")
        page.click("#signin-btn")
        expect(page.locator("#signin-message")).to_contain_text("Collez le jeton d’accès")
        page.fill("#token", poc(fed, "eu", "DEU/technical"))
        page.click("#signin-btn")
        expect(page.locator("#search-btn")).to_have_text("Rechercher")
        expect(page.locator("#q")).to_have_attribute(
            "placeholder", "Rechercher par État, organisme, fonction, personne ou réseau…"
        )
        expect(page.locator("#results tbody")).to_contain_text("Allemagne")  # Intl names in French
        page.goto(url + "/#/entry/FRA%2Ftechnical")
        expect(page.locator("#entry-title")).to_have_text("France (FRA)")
        expect(page.locator("#entry-kind")).to_have_text("Point de contact technique")
        expect(page.locator("#entry-fields")).to_contain_text("français, anglais")
        page.click("#compose-open")
        expect(page.locator("#compose-open")).to_be_hidden()
        expect(page.locator("#compose h2")).to_have_text("Écrire à ce point de contact")
        first = docs[0]
        expect(page.locator("#compose-form h3")).to_have_text(first["languages"]["fr"]["title"])
        name, f = next(iter(first["languages"]["fr"]["fields"].items()))
        expect(page.locator(f'label[for="cf-{name}"]')).to_contain_text(f["label"])
        screenshot(page, "compose-fr")

        # the switch: Spanish, remembered over a reload
        page.select_option("#lang", "es")
        expect(page.locator("#entry-kind")).to_have_text("Punto de contacto técnico")
        assert page.evaluate("document.documentElement.lang") == "es"
        page.reload()
        expect(page.locator("#compose h2")).to_have_text("Escribir a este punto de contacto")
        expect(page.locator("#signout")).to_have_text("Cerrar sesión")
        expect(page.locator("#entry-fields")).to_contain_text("francés, inglés")
        page.click("#compose-open")
        expect(page.locator("#compose-form h3")).to_have_text(first["languages"]["es"]["title"])
        page.click("#compose-go")  # nothing filled: refused, in Spanish
        expect(page.locator("#compose-errors")).to_contain_text("No se creó el mensaje")
        page.select_option("#lang", "en")
        expect(page.locator("#entry-kind")).to_have_text("Technical Point of Contact")
        ctx.close()
    assert console == []


def test_templates_are_untrusted_in_the_page(fed: Federation) -> None:
    """Templates as a careless or hostile publisher could sign them: refused with words, or shown as text only."""
    from playwright.sync_api import expect

    evil = "<img src=x onerror=\"document.title='pwned'\">"
    good = shipped()[0]

    def variant(tid: str, **schema_change: Any) -> dict[str, Any]:
        d = json.loads(json.dumps(good))
        d["id"] = tid
        d["schema"]["properties"].update(schema_change)
        return d

    ref = variant("with-ref", extra={"$ref": "https://evil.example/schema.json"})
    nested = variant("nested-quantifier", extra={"type": "string", "pattern": "^(a+)+$"})
    long_pattern = variant("long-pattern", extra={"type": "string", "pattern": "a" * 201})
    unknown_type = variant("unknown-type", extra={"type": "object"})
    html = variant("html-words")
    html["languages"]["en"]["title"] = evil
    html["languages"]["en"]["text"] = evil + "\nsecond line"
    first = next(iter(html["schema"]["properties"]))
    html["languages"]["en"]["fields"][first]["label"] = evil
    docs = [ref, nested, long_pattern, unknown_type, html]
    requests: list[str] = []
    console: list[str] = []
    with browser() as b:
        ctx, page = new_page(b, console)
        page.on("request", lambda r: requests.append(r.url))
        page.route("**/v1/templates", lambda route: route.fulfill(json={"templates": docs}))
        sign_in(page, fed["eu"].url, poc(fed, "eu", "DEU/technical"))
        open_compose(page, fed["eu"].url, "FRA/technical", 1)
        body = page.locator("#compose-body")
        for tid, words in (
            ("with-ref", "its schema refers to other documents ($ref)"),
            ("nested-quantifier", "a pattern could take too long to check"),
            ("long-pattern", "a pattern is longer than 200 characters"),
            ("unknown-type", "a field has a type this page does not know"),
        ):
            expect(body).to_contain_text(f"Template {tid} cannot be used: {words}")
        expect(page.locator("#compose-form h3")).to_have_text(evil)
        expect(page.locator(f'label[for="cf-{first}"]')).to_contain_text(evil)
        assert page.locator("#compose img").count() == 0 and page.title() != "pwned"
        screenshot(page, "compose-untrusted")
        ctx.close()
    assert not [u for u in requests if "evil.example" in u or not u.startswith(fed["eu"].url)]
    assert console == []


# --- found by a hostile review of issue 17 (atk17) ------------------------------------------------------------------
def _probe_template(pattern: str) -> dict[str, Any]:
    d = json.loads(json.dumps(shipped()[0]))
    d["id"] = "probe"
    d["schema"]["properties"]["probe"] = {"type": "string", "maxLength": 100, "pattern": pattern}
    for lang in d["languages"].values():
        lang["fields"]["probe"] = {"label": "Probe"}
    return d


def test_a_pattern_that_backtracks_without_bound_does_not_hang_the_page(fed: Federation) -> None:
    """ "(a|)" x 30 then "b": no nested quantifier, so in the safe subset of §18.3 and past the page's own check,
    yet on "a" x 40 a backtracking engine tries 2^30 paths: the page froze on "Compose". Now the pattern runs in
    a worker that is ended, and the field says so."""
    from playwright.sync_api import expect

    from pocsync.core import templates as tpl

    pattern = "^" + "(a|)" * 30 + "b$"
    assert tpl.pattern_problem(pattern) is None
    doc = _probe_template(pattern)
    console: list[str] = []
    with browser() as b:
        ctx, page = new_page(b, console)
        page.route("**/v1/templates", lambda route: route.fulfill(json={"templates": [doc]}))
        sign_in(page, fed["eu"].url, poc(fed, "eu", "DEU/technical"))
        open_compose(page, fed["eu"].url, "FRA/technical", 1)
        fill(page, shipped()[0], secrets.token_hex(4))
        page.fill('[data-field="probe"]', "a" * 40)
        page.click("#compose-go")
        expect(page.locator("#cerr-probe")).to_contain_text("takes too long to check this value")
        expect(page.locator("#compose-result")).to_be_hidden()
        page.fill('[data-field="probe"]', "aab")  # a value the pattern matches quickly is still accepted
        page.click("#compose-go")
        expect(page.locator("#compose-result")).to_be_visible()
        ctx.close()
    assert console == []


def test_an_option_label_cannot_bring_bidi_or_control_characters_into_the_message(fed: Federation) -> None:
    """§18.2 lets a label hold any character; the form showed option labels through safe(), but the composed
    message copied them raw (U+202E reverses what follows in the recipient's mail program; BEL, ESC reach a
    terminal; a line feed starts a line of the publisher's choosing after the field)."""
    from playwright.sync_api import expect

    doc = json.loads(json.dumps(shipped()[0]))
    doc["id"] = "hostile-options"
    hostile = "Crit\u202eical\u0007\x1b[31m\nSignature: the Minister"
    for lang in doc["languages"].values():
        lang["fields"]["severity"].setdefault("options", {})["critical"] = hostile
    console: list[str] = []
    with browser() as b:
        ctx, page = new_page(b, console)
        page.route("**/v1/templates", lambda route: route.fulfill(json={"templates": [doc]}))
        sign_in(page, fed["eu"].url, poc(fed, "eu", "DEU/technical"))
        open_compose(page, fed["eu"].url, "FRA/technical", 1)
        fill(page, doc, secrets.token_hex(4))
        page.uncheck("#compose-encrypt")
        page.click("#compose-go")
        expect(page.locator("#compose-result")).to_be_visible()
        text = text_of(download(page))
        ctx.close()
    assert not re.search("[\u202a-\u202e\u2066-\u2069\x00-\x08\x0b-\x1f\x7f]", text), text
    assert not any(ln.startswith("Signature: the Minister") for ln in text.splitlines()), text
    assert console == []


def test_the_page_encrypts_only_to_a_key_the_entry_vouches_for_with_its_fingerprint(fed: Federation) -> None:
    """An entry as it arrives (a hostile or broken node, a proxy): a public_key and no public_key_fingerprint.
    The page checked the key against the fingerprint only when one was listed, so it encrypted to any key."""
    from playwright.sync_api import expect

    attacker_key = fed.keys["sender"][0]  # type: ignore[attr-defined]  # any key that is not the recipient's

    def swap(route: Any) -> None:
        body = route.fetch().json()
        body["entry"]["public_key"] = attacker_key
        body["entry"].pop("public_key_fingerprint", None)
        route.fulfill(json=body)

    console: list[str] = []
    with browser() as b:
        ctx, page = new_page(b, console)
        page.route("**/v1/entries/FRA/technical", swap)
        sign_in(page, fed["eu"].url, poc(fed, "eu", "DEU/technical"))
        open_compose(page, fed["eu"].url, "FRA/technical", len(shipped()))
        fill(page, shipped()[0], secrets.token_hex(4))
        expect(page.locator("#compose-encrypt")).to_be_checked()
        page.click("#compose-go")
        expect(page.locator("#compose-errors")).to_contain_text("lists an OpenPGP key but no fingerprint")
        expect(page.locator("#compose-result")).to_be_hidden()
        ctx.close()
    assert console == []


def test_a_boolean_enum_which_the_protocol_allows_leaves_the_template_usable(fed: Federation) -> None:
    """§18.3 allows an enum on a boolean property ([true]: "I confirm…"); the page refused the whole template."""
    from playwright.sync_api import expect

    from pocsync.core import templates as tpl

    doc = json.loads(json.dumps(shipped()[0]))
    doc["id"] = "confirm"
    doc["schema"]["properties"]["confirm"] = {"type": "boolean", "enum": [True]}
    for lang in doc["languages"].values():
        lang["fields"]["confirm"] = {"label": "I confirm"}
    assert tpl.check_document(doc)
    console: list[str] = []
    with browser() as b:
        ctx, page = new_page(b, console)
        page.route("**/v1/templates", lambda route: route.fulfill(json={"templates": [doc]}))
        sign_in(page, fed["eu"].url, poc(fed, "eu", "DEU/technical"))
        open_compose(page, fed["eu"].url, "FRA/technical", 1)
        fill(page, shipped()[0], secrets.token_hex(4))
        page.uncheck("#compose-encrypt")
        page.click("#compose-go")
        expect(page.locator("#cerr-confirm")).to_contain_text("Choose one of the values offered.")
        page.check('[data-field="confirm"]')
        page.click("#compose-go")
        expect(page.locator("#compose-result")).to_be_visible()
        expect(page.locator("#compose-preview")).to_contain_text("I confirm: Oui")
        ctx.close()
    assert console == []


def test_a_date_before_the_year_100_is_not_moved_by_1900_years(fed: Federation) -> None:
    """new Date(y, …) reads the years 0 to 99 as 1900 to 1999: "0050-06-01T10:00" went out as 1950-06-01.
    (A mistyped year; the page must not change it silently.)"""
    from playwright.sync_api import expect

    doc = shipped()[0]
    console: list[str] = []
    with browser() as b:
        ctx, page = new_page(b, console)
        page.route("**/v1/templates", lambda route: route.fulfill(json={"templates": [doc]}))
        sign_in(page, fed["eu"].url, poc(fed, "eu", "DEU/technical"))
        open_compose(page, fed["eu"].url, "FRA/technical", 1)
        fill(page, doc, secrets.token_hex(4))
        page.fill('[data-field="first_observed"]', "0050-06-01T10:00")
        page.uncheck("#compose-encrypt")
        page.click("#compose-go")
        expect(page.locator("#compose-result")).to_be_visible()
        text = page.inner_text("#compose-preview")
        ctx.close()
    assert "0050-06-01T" in text and "1950-06-01T" not in text, text
    assert console == []


def test_an_entry_state_the_page_cannot_name_reaches_the_message_as_safe_text(fed: Federation) -> None:
    """regionIn() gave an unknown state code back raw: a U+202E in an entry's state reached the message."""
    from playwright.sync_api import expect

    def odd(route: Any) -> None:
        body = route.fetch().json()
        body["entry"]["state"] = "FRA\u202e\u0007"
        route.fulfill(json=body)

    doc = shipped()[0]
    console: list[str] = []
    with browser() as b:
        ctx, page = new_page(b, console)
        page.route("**/v1/templates", lambda route: route.fulfill(json={"templates": [doc]}))
        page.route("**/v1/entries/FRA/technical", odd)
        sign_in(page, fed["eu"].url, poc(fed, "eu", "DEU/technical"))
        open_compose(page, fed["eu"].url, "FRA/technical", 1)
        fill(page, doc, secrets.token_hex(4))
        page.uncheck("#compose-encrypt")
        page.click("#compose-go")
        expect(page.locator("#compose-result")).to_be_visible()
        text = text_of(download(page))
        ctx.close()
    assert "FRA" in text and not re.search("[\u202a-\u202e\u2066-\u2069\x00-\x08\x0b-\x1f\x7f]", text), text
    assert console == []


def test_a_template_with_as_many_fields_as_the_protocol_allows_is_usable(fed: Federation) -> None:
    """§18.3 allows 64 properties (templates.MAX_PROPERTIES); the page refused more than 60."""
    from playwright.sync_api import expect

    from pocsync.core import templates as tpl

    doc = json.loads(json.dumps(shipped()[0]))
    doc["id"] = "many-fields"
    doc["schema"] = {
        "type": "object",
        "required": ["f00"],
        "properties": {f"f{i:02d}": {"type": "string", "maxLength": 20} for i in range(tpl.MAX_PROPERTIES)},
    }
    for lang in doc["languages"].values():
        lang["fields"] = {f"f{i:02d}": {"label": f"Field {i}"} for i in range(tpl.MAX_PROPERTIES)}
    assert tpl.check_document(doc)
    console: list[str] = []
    with browser() as b:
        ctx, page = new_page(b, console)
        page.route("**/v1/templates", lambda route: route.fulfill(json={"templates": [doc]}))
        sign_in(page, fed["eu"].url, poc(fed, "eu", "DEU/technical"))
        open_compose(page, fed["eu"].url, "FRA/technical", 1)
        expect(page.locator("#compose-form [data-field]")).to_have_count(tpl.MAX_PROPERTIES)
        ctx.close()
    assert console == []
