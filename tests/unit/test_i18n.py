"""The PoC page in English, French and Spanish (issue 17): every shown English text has both translations.

The texts are the literals of ``T("...")``, ``Tn("...")`` and ``N("...")`` calls (also as ``pocsync.T(...)``) in
every ``pocsync/api/static/*.js`` (feature scripts included), and every ``data-i18n`` text and ``data-i18n-attr``
attribute of the PoC page.  The French and Spanish tables are the JSON object in ``static/i18n.js``.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

STATIC = Path(__file__).parents[2] / "pocsync" / "api" / "static"
PAGES = ("index.html",)
# a call's first argument: one string literal, or literals joined with + over lines
_LIT = r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\''
_CALL = re.compile(r"(?<![A-Za-z0-9_$])(?:T|Tn|N)\(\s*((?:" + _LIT + r")(?:\s*\+\s*(?:" + _LIT + r"))*)\s*[,)]")
_PLACE = re.compile(r"\{[a-z_]+\}")


def _js_string(literal: str) -> str:
    return "".join(
        json.loads(part)
        if part[0] == '"'
        else json.loads('"' + part[1:-1].replace("\\'", "'").replace('"', '\\"') + '"')
        for part in re.findall(_LIT, literal)
    )


def js_texts(text: str) -> set[str]:
    return {_js_string(m.group(1)) for m in _CALL.finditer(text)}


class _Marked(HTMLParser):
    """Texts of elements marked data-i18n (whitespace folded, as the page reads them) and data-i18n-attr values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: set[str] = set()
        self._open: list[list[str]] = []
        self._stack: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in (a.get("data-i18n-attr") or "").split():
            if a.get(name):
                self.texts.add(a[name] or "")
        marked = "data-i18n" in a
        if tag not in ("input", "meta", "link", "br", "img"):
            self._stack.append(marked)
            if marked:
                self._open.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("input", "meta", "link", "br", "img") or not self._stack:
            return
        if self._stack.pop():
            self.texts.add(" ".join("".join(self._open.pop()).split()))

    def handle_data(self, data: str) -> None:
        for buf in self._open:
            buf.append(data)


def page_texts(html: str) -> set[str]:
    p = _Marked()
    p.feed(html)
    return p.texts


def tables() -> dict[str, dict[str, str]]:
    js = (STATIC / "i18n.js").read_text()
    m = re.search(r"window\.POCSYNC_I18N = (\{.*\});\s*$", js, re.S)
    assert m, "static/i18n.js must hold `window.POCSYNC_I18N = {...JSON...};` as its last statement"
    return json.loads(m.group(1))


def all_texts() -> dict[str, set[str]]:
    """Each text → the files it is shown from."""
    out: dict[str, set[str]] = {}
    for f in sorted(STATIC.glob("*.js")):
        if f.name == "i18n.js":
            continue
        for t in js_texts(f.read_text()):
            out.setdefault(t, set()).add(f.name)
    for name in PAGES:
        for t in page_texts((STATIC / name).read_text()):
            out.setdefault(t, set()).add(name)
    return out


def test_the_extractor_finds_what_the_page_shows() -> None:
    found = js_texts(
        'x(T("a \\"b\\""), pocsync.T("c {n}", {n}), N("d " +\n  "e"), Tn("f", {}), NaT("g"), T(v), T(\'it\\\'s "q"\'))'
    )
    assert found == {'a "b"', "c {n}", "d e", "f", 'it\'s "q"'}
    assert page_texts(
        '<p data-i18n>Sign\n  in</p><input data-i18n-attr="placeholder" placeholder="Search">'
        "<p><span data-i18n>x</span> y</p>"
    ) == {"Sign in", "Search", "x"}
    texts = all_texts()
    assert "Sign in" in texts and "Write to this Point of Contact" in texts and "Yes" in texts


def test_every_shown_text_is_in_french_and_spanish() -> None:
    t = tables()
    texts = all_texts()
    missing = {
        lang: sorted(
            f"{s!r} (in {', '.join(sorted(files))})"
            for s, files in texts.items()
            if not isinstance(t.get(lang, {}).get(s), str) or not t[lang][s].strip()
        )
        for lang in ("fr", "es")
    }
    lines = [f"  {lang}: {s}" for lang, items in missing.items() for s in items]
    assert not lines, (
        "texts shown on the PoC page without a translation; add them to pocsync/api/static/i18n.js:\n"
        + "\n".join(lines)
    )


def test_translations_keep_the_placeholders_and_the_tables_hold_nothing_stale() -> None:
    t = tables()
    texts = all_texts()
    for lang in ("fr", "es"):
        for en, tr in t[lang].items():
            assert sorted(_PLACE.findall(en)) == sorted(_PLACE.findall(tr)), (lang, en, tr)
        stale = sorted(set(t[lang]) - set(texts))
        assert not stale, f"{lang}: translations of texts no page shows any more: {stale}"


class _Untagged(HTMLParser):
    """Text of the page's body outside any data-i18n element (words a French reader would see in English)."""

    VOID = ("input", "meta", "link", "br", "img", "path", "circle")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append((tag, "data-i18n" in dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        tags = [t for t, _ in self.stack]
        if data.strip() and "script" not in tags and "head" not in tags[:1] and not any(m for _, m in self.stack):
            self.found.append(data.strip())


def test_every_word_of_the_page_is_marked_for_translation() -> None:
    p = _Untagged()
    p.feed((STATIC / "index.html").read_text())
    # names the same in every language: formats, and the 24/7 column
    assert [t for t in p.found if t not in {"24/7", "CSV", "vCard", "JSON"}] == []
    attrs = re.findall(r'\b(placeholder|aria-label|title)="([^"]*)"', (STATIC / "index.html").read_text())
    texts = page_texts((STATIC / "index.html").read_text())
    assert [(a, v) for a, v in attrs if v not in texts and v != "eyJ…"] == []


def test_history_columns_statuses_and_op_names_are_translated() -> None:
    """Found by trying the page in French: the history table's column titles, statuses and op names were passed
    to T through variables, out of the literal check above, and showed in English ("WHEN", "Applied")."""
    js = (STATIC / "history.js").read_text()
    texts = set()
    for name in ("STATUS", "OPS", "FIELDS", "COLUMNS"):
        m = re.search(r"const " + name + r" = [\[{](.*?)[\]}];", js, re.S)
        assert m, f"history.js defines {name}"
        texts |= {_js_string(lit) for lit in re.findall(_LIT, m.group(1))}
    assert {"When", "Applied", "Listed or changed"} <= texts
    t = tables()
    for lang in ("fr", "es"):
        assert sorted(x for x in texts if x not in t[lang]) == [], lang
