"""The PoC page's static files: nothing the CSP would block, no HTML built from data, a current country table."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pycountry

from pocsync.api.web import CSP

STATIC = Path(__file__).parents[2] / "pocsync" / "api" / "static"


class _Inline(HTMLParser):
    """Collects what a CSP of ``script-src 'self'; style-src 'self'`` refuses: inline styles and scripts, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k for k, _ in attrs}
        if tag == "style":
            self.found.append("<style>")
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        self.found += [f"{tag} {k}=" for k in names if k == "style" or k.startswith("on")]


def test_csp_forbids_inline_code_and_styles() -> None:
    assert "script-src 'self';" in CSP and "style-src 'self';" in CSP and "unsafe" not in CSP


def test_the_poc_page_has_nothing_its_csp_blocks() -> None:
    parser = _Inline()
    parser.feed((STATIC / "index.html").read_text())
    assert parser.found == []


def test_the_poc_page_never_builds_html_from_strings() -> None:
    for path in sorted(STATIC.glob("*.js")):  # app.js and every feature script
        js = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in js, (path.name, sink)


def test_country_table_matches_iso_3166() -> None:
    js = (STATIC / "app.js").read_text()
    table = re.search(r'const ALPHA3_TO_2 = Object\.fromEntries\("([A-Z ]+)"', js)
    assert table is not None
    pairs = dict((p[:3], p[3:]) for p in table.group(1).split(" "))
    assert pairs == {c.alpha_3: c.alpha_2 for c in pycountry.countries}
