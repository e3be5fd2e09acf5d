"""Writing to a PoC (static/compose.js) and the vendored OpenPGP.js: what can be checked without a browser.

The Chromium tests (tests/integration/test_compose_page.py) check the behaviour; these check the shape: nothing
composed is ever sent (no request with a body from the page's scripts), no HTML is built from strings, the
vendored library is the published one, byte for byte, and the CSP stays strict.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pocsync.api.web import CSP

STATIC = Path(__file__).parents[2] / "pocsync" / "api" / "static"
VENDOR = STATIC / "vendor" / "openpgp"
OPENPGP_VERSION = "6.3.2"
# SHA-256 of dist/lightweight/*.min.mjs in the npm registry's openpgp-6.3.2.tgz (see vendor/openpgp/README.md)
SUMS = {
    "argon2id.min.mjs": "0ff8ccf0eea8862029a13a6946d4eaa738023d6606030f7418a546a62dcbc16d",
    "legacy_ciphers.min.mjs": "e0e3708f6be7cd1a816ca8e1cf93e735d413aadbfd2794c42e0c59ba4e620a72",
    "nacl-fast.min.mjs": "623d27bcc2123af6d2e6ef75cf4548aaba0c9e9f3d84300f04ac44899bd30198",
    "noble_curves.min.mjs": "f975bec84d64d56a09d2861db13b004cbfb68f3fc525bca262235aa28f97f310",
    "noble_hashes.min.mjs": "0623d206f82204696ec6d735a080df77e79affc3094aa33db2167ac451d6e6eb",
    "openpgp.min.mjs": "53ece859cf31e7c832644bf9ccc3eba52152f8a22f0f18f427363cc28ef0bc38",
    "sha512.min.mjs": "0284d0f1632e5711b474f552011a85df8dc8df679d9738bc72331ed067db6a4d",
    "unbzip2-stream.min.mjs": "55aab84a92c07dfe09d87624754dc43041c07f8f8b4afedfe52ed3750022b01b",
}


def test_vendored_openpgp_is_the_published_build() -> None:
    present = {p.name for p in VENDOR.glob("*.mjs")}
    assert present == set(SUMS)
    for name, digest in SUMS.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert f"OpenPGP.js v{OPENPGP_VERSION}" in (VENDOR / "openpgp.min.mjs").read_text()[:200]
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (VENDOR / "LICENSE").read_text()
    assert OPENPGP_VERSION in (VENDOR / "README.md").read_text()


def test_openpgp_modules_import_only_each_other() -> None:
    """No outside asset: every import of the vendored modules is a relative one to a file shipped here."""
    for p in VENDOR.glob("*.mjs"):
        text = p.read_text()
        targets = re.findall(r'import\(\s*"([^"]+)"\s*\)', text) + re.findall(r'\bfrom\s*"([^"]+)"', text)
        for t in targets:
            assert t.startswith("./") and (VENDOR / t[2:]).is_file(), (p.name, t)


def test_the_csp_stays_strict() -> None:
    assert "script-src 'self';" in CSP and "unsafe" not in CSP and "connect-src 'self'" in CSP


def test_page_scripts_build_no_html_and_send_nothing_composed() -> None:
    for js in sorted(STATIC.glob("*.js")):
        text = js.read_text()
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "XMLHttpRequest",
            "sendBeacon",
            "WebSocket",
            "EventSource",
        ):
            assert sink not in text, (js.name, sink)
    compose = (STATIC / "compose.js").read_text()
    # compose.js reads through pocsync.api (GET only) and never calls fetch itself
    assert "fetch(" not in compose and "method:" not in compose
    assert "URL.createObjectURL(new Blob(" in compose
    page = (STATIC / "index.html").read_text()
    order = [page.index(f'src="/static/{n}"') for n in ("i18n.js", "app.js", "compose.js")]
    assert order == sorted(order)


def test_mjs_is_served_as_javascript() -> None:
    import mimetypes

    import pocsync.api.web  # noqa: F401  (registers .mjs)

    assert mimetypes.guess_type("x.mjs")[0] == "text/javascript"
