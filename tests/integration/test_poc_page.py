"""The PoC page (``/``) in real Chromium against real nodes (issue 9): what a Point of Contact sees.

The browser runs with the page's own Content-Security-Policy, a British English locale and the New York time
zone, so that "local dates" are checked against a zone that is neither the machine's nor UTC. Any console
error (a CSP violation, a failed request, a script error) fails the test.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.browser import browser, screenshot
from tests.support.cli import run
from tests.support.nodes import Federation, entry

pytestmark = pytest.mark.slow

ZONE = "America/New_York"
HLC = re.compile(r"[0-9]{13}-[0-9]{4}")
FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory):
    f = Federation(tmp_path_factory.mktemp("page"), ("un", "eu", "osce"), pull_interval=2)
    f.start()
    f["eu"].put(
        entry("AUT/diplomatic", person="A. Example", timezone="Europe/Vienna", languages=["de", "en"]),
        entry(
            "DEU/technical",
            timezone="Europe/Berlin",
            languages=["de", "en"],
            phones=["+493012345678"],
            secure_channels=[{"type": "openpgp", "fingerprint": FPR, "expires": "2030-01-31"}],
            notes=HOSTILE,
            **{"<i>duty</i>_desk": "Ring twice", "constructor": "Desk B"},
        ),
    )
    f["osce"].put(
        entry(
            "AUT/diplomatic",
            person="B. Example",
            position="Head of cyber diplomacy",
            timezone="Europe/Vienna",
            languages=["de", "en"],
        ),
        entry("UKR/technical", networks=["osce-cbm"]),
    )
    f.wait_converged()
    yield f
    f.stop()


def poc(fed: Federation, node: str, key: str) -> str:
    return run("token", "issue", "--data", fed[node].data, "--poc", key, "--days", "2").output.strip()


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def local(hlc: str, with_time: bool) -> str:
    """How Chromium's en-GB medium date (and short time) shows this hlc in New York."""
    d = datetime.fromtimestamp(int(hlc[:13]) / 1000, ZoneInfo(ZONE))
    day = f"{d.day} {d:%b} {d.year}"
    return f"{day}, {d:%H:%M}" if with_time else day


def test_api_lists_every_directory_that_lists_an_entry(fed: Federation) -> None:
    tok = poc(fed, "eu", "DEU/technical")
    status, body = get(fed["eu"].url + "/v1/entries", tok)
    rows = {r["key"]: r for r in body["entries"]}
    assert status == 200
    assert rows["AUT/diplomatic"]["listed_by"] == ["eu", "osce"]
    assert rows["AUT/diplomatic"]["provenance"]["origin"] == "osce"  # the winner alone, as before
    assert rows["UKR/technical"]["listed_by"] == ["osce"]
    status, one = get(fed["un"].url + "/v1/entries/AUT/diplomatic", tok)
    assert status == 200 and one["listed_by"] == ["eu", "osce"]


def test_session_probe_answers_200_with_the_reason(fed: Federation) -> None:
    url = fed["eu"].url + "/v1/session"
    assert get(url) == (200, {"signed_in": False, "reason": "missing", "detail": "no token or session"})
    status, body = get(url, "not-a-token")
    assert status == 200 and body["signed_in"] is False and body["reason"] == "malformed"
    tok = poc(fed, "eu", "DEU/technical")
    head, claims, sig = tok.split(".")
    status, body = get(url, ".".join([head, claims, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")]))
    assert status == 200 and body["signed_in"] is False and body["reason"] == "bad_signature"
    status, body = get(url, tok)
    assert status == 200 and body["signed_in"] is True and body["subject"] == "DEU/technical"
    assert body["scope"] == "directory" and body["node"] == "eu"


def test_poc_page_in_chromium(fed: Federation) -> None:
    import vobject
    from playwright.sync_api import expect

    tok = poc(fed, "eu", "DEU/technical")
    operator = run("token", "issue", "--data", fed["eu"].data, "--operator", "ops").output.strip()
    head, claims, sig = tok.split(".")
    forged = ".".join([head, claims, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")])
    api = get(fed["eu"].url + "/v1/entries/AUT/diplomatic", tok)[1]
    listing = get(fed["eu"].url + "/v1/entries", tok)[1]
    console: list[str] = []
    with browser() as b:
        ctx = b.new_context(
            accept_downloads=True, locale="en-GB", timezone_id=ZONE, viewport={"width": 1280, "height": 900}
        )
        page = ctx.new_page()
        page.set_default_timeout(30_000)  # the machine may be busy: wait on events, generously
        expect.set_options(timeout=30_000)
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
        page.goto(fed["eu"].url + "/")
        expect(page.locator("#signin")).to_be_visible()
        assert "Example" not in page.inner_text("body")  # no session: no entry data

        # bad tokens are explained in words, without a failed request
        for token, words in (
            ("", "Paste the access token"),
            ("this is not a token", "This is not a valid access token"),
            (forged, "not issued by a directory of this federation"),
            (operator, "This is an operator token"),
        ):
            page.fill("#token", token)
            page.click("#signin-btn")
            expect(page.locator("#signin-message")).to_contain_text(words)
            assert "JWS" not in page.inner_text("#signin-message")
        page.fill("#token", "this is not a token")
        page.click("#signin-btn")
        screenshot(page, "poc-signin-refused")

        # a PoC token (wrapped over lines, as from an e-mail) opens the directory
        page.fill("#token", "\n".join(tok[i : i + 60] for i in range(0, len(tok), 60)))
        page.click("#signin-btn")
        expect(page.locator("#results tbody tr")).to_have_count(listing["total"])
        expect(page.locator("#who")).to_contain_text("DEU/technical")
        aut = page.locator("#results tbody tr", has_text="Austria").filter(has_text="Diplomatic")
        expect(aut).to_have_count(1)
        assert [t.strip() for t in aut.locator(".pill.origin").all_inner_texts()] == ["eu", "osce"]
        hlc = next(r for r in listing["entries"] if r["key"] == "AUT/diplomatic")["provenance"]["hlc"]
        expect(aut.locator("time")).to_have_text(local(hlc, with_time=False))
        body = page.inner_text("body")
        assert not HLC.search(body), HLC.search(body)
        screenshot(page, "poc-directory")

        page.fill("#q", "UKR")
        page.click("#search-btn")
        expect(page.locator("#results tbody tr")).to_have_count(1)
        expect(page.locator("#results tbody tr")).to_contain_text("Ukraine")
        page.click("#clear-btn")
        expect(page.locator("#results tbody tr")).to_have_count(listing["total"])

        # one entry: every listing directory, local dates, the divergence in words
        aut.click()
        expect(page.locator("#entry-title")).to_have_text("Austria (AUT)")
        assert [t.strip() for t in page.locator("#entry-listed .pill").all_inner_texts()] == ["eu", "osce"]
        expect(page.locator("#versions tbody tr")).to_have_count(2)
        for v in api["versions"]:
            row = page.locator("#versions tbody tr", has_text=v["origin"])
            expect(row.locator("time")).to_have_text(local(v["hlc"], with_time=True))
        expect(page.locator("#provenance")).to_contain_text(local(api["provenance"]["hlc"], with_time=True))
        expect(page.locator("#provenance")).to_contain_text("osce")
        expect(page.locator("#divergences")).to_contain_text("Person")
        expect(page.locator("#divergences")).to_contain_text("A. Example")
        expect(page.locator("#divergences")).to_contain_text("B. Example")
        expect(page.locator("#entry-fields")).to_contain_text("Languages")
        expect(page.locator("#entry-fields")).to_contain_text("German, English")
        assert not HLC.search(page.inner_text("body"))
        screenshot(page, "poc-entry-divergent")
        page.click("#back")
        expect(page.locator("#directory")).to_be_visible()

        # the fields an entry carries, in words, and every value as text
        page.goto(fed["eu"].url + "/#/entry/DEU%2Ftechnical")
        expect(page.locator("#entry-title")).to_have_text("Germany (DEU)")
        fields = page.locator("#entry-fields")
        for label, value in (
            ("Available 24/7", "Yes, around the clock"),
            ("Time zone", "Europe/Berlin"),
            ("Languages", "German, English"),
            ("Secure channels", "OpenPGP"),
            ("Telephone", "+493012345678"),
            ("Notes", HOSTILE),
            ("<i>duty</i> desk", "Ring twice"),
            ("Constructor", "Desk B"),
        ):
            expect(fields.locator("tr", has=page.locator("th", has_text=label))).to_contain_text(value)
        expect(fields).to_contain_text(" ".join(FPR[i : i + 4] for i in range(0, 40, 4)))
        expect(fields).to_contain_text("key valid until 31 Jan 2030")
        assert "available 24 7" not in fields.inner_text().lower()
        assert page.locator("#entry-fields img, #entry-fields i").count() == 0
        assert page.title() != "pwned"
        screenshot(page, "poc-entry")
        page.set_viewport_size({"width": 420, "height": 900})  # a phone: the page still reads
        screenshot(page, "poc-entry-narrow")
        page.set_viewport_size({"width": 1280, "height": 900})

        with page.expect_download() as dl:
            page.click("#entry-vcard")
        card = vobject.readOne(Path(dl.value.path()).read_text())
        assert "DEU" in card.serialize()
        session = next(c for c in ctx.cookies() if c["name"] == "pocsync_session")
        assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"

        page.click("#signout")
        expect(page.locator("#signin")).to_be_visible()
        assert "Example" not in page.inner_text("body")
        ctx.close()
    assert console == [], console


def test_dashboard_sign_in_logs_no_console_error(fed: Federation) -> None:
    """The dashboard, like the PoC page, asks GET /v1/session (always 200) before it signs in: loading it
    signed out, a bad token and a PoC token are explained on the page, with no failed request in the
    console; an operator token opens it."""
    from playwright.sync_api import expect

    op = run("token", "issue", "--data", fed["un"].data, "--operator", "duty", "--days", "1").output.strip()
    errors: list[str] = []
    with browser() as b:
        page = b.new_page()
        page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        with page.expect_response(lambda r: "/v1/" in r.url):  # the page's own "am I signed in?" request
            page.goto(fed["un"].url + "/dashboard")
        expect(page.locator("#signin")).to_be_visible()
        page.fill("#token", "this is not a token")
        page.click("#signin-btn")
        expect(page.locator("#signin-error")).to_contain_text("this is not a token")
        page.fill("#token", "eyJhbGciOiJFZERTQSJ9.e30.c2ln")  # the shape of a token, but not one
        page.click("#signin-btn")
        expect(page.locator("#signin-error")).to_contain_text("Sign-in refused")
        expect(page.locator("#dash")).to_be_hidden()
        page.fill("#token", poc(fed, "eu", "DEU/technical"))
        page.click("#signin-btn")
        expect(page.locator("#signin-error")).to_contain_text("Point of Contact token")
        expect(page.locator("#dash")).to_be_hidden()
        page.fill("#token", op)
        page.click("#signin-btn")
        page.wait_for_selector(".node-card[data-node='osce']", timeout=15000)
        screenshot(page, "dashboard-signed-in")
    assert errors == [], errors
