"""The messages of communication checks (issue 15): the check mail and the other texts, in the entry's language.

Templates live in ``pocsync/messages`` (``<name>.<language>.txt``, a ``Subject:`` line, a blank line, the
body).  A check message names the entry's State and kind, the directory and the link — nothing else of the
entry and nothing of any other entry.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pocsync.core import model

LANGUAGES = ("en", "fr", "es")
MESSAGES = Path(__file__).parent.parent / "messages"  # pocsync/messages
_LANGUAGE_NAMES = {
    "english": "en",
    "anglais": "en",
    "inglés": "en",
    "ingles": "en",
    "french": "fr",
    "français": "fr",
    "francais": "fr",
    "francés": "fr",
    "frances": "fr",
    "spanish": "es",
    "espagnol": "es",
    "español": "es",
    "espanol": "es",
    "castellano": "es",
}


def language_of(entry: dict[str, Any]) -> str:
    """The entry's first language when a translation exists (en, fr, es), else English."""
    langs = entry.get("languages")
    if not isinstance(langs, list) or not langs or not isinstance(langs[0], str):
        return "en"
    first = langs[0].strip().casefold()
    code = first.replace("_", "-").split("-")[0]
    if code in LANGUAGES:
        return code
    return _LANGUAGE_NAMES.get(first, "en")


def emails_of(entry: dict[str, Any]) -> list[str]:
    emails = entry.get("emails")
    return [e for e in emails if isinstance(e, str)] if isinstance(emails, list) else []


@dataclass(frozen=True)
class Message:
    subject: str
    body: str
    language: str


def _template(name: str, language: str) -> tuple[str, str]:
    text = (MESSAGES / f"{name}.{language}.txt").read_text(encoding="utf-8")
    subject, _, body = text.partition("\n\n")
    return subject.removeprefix("Subject: ").strip(), body


KIND_WORDS = {
    "en": {"technical": "technical", "diplomatic": "diplomatic"},
    "fr": {"technical": "technique", "diplomatic": "diplomatique"},
    "es": {"technical": "técnico", "diplomatic": "diplomático"},
}


def check_message(*, language: str, directory: str, key: str, link: str, page: str, deadline_ms: int) -> Message:
    """The check message for one channel of one entry: its State and kind, the directory, the link — nothing else
    of the entry and nothing of any other entry."""
    language = language if language in LANGUAGES else "en"
    state, kind = model.parse_key(key)
    subject, body = _template("check", language)
    values = {
        "directory": directory,
        "state": state,
        "kind": KIND_WORDS[language][kind],
        "link": link,
        "page": page,
        "deadline": datetime.fromtimestamp(deadline_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return Message(string.Template(subject).substitute(values), string.Template(body).substitute(values), language)


def text_message(name: str, language: str = "en", **values: str) -> Message:
    subject, body = _template(name, language)
    return Message(string.Template(subject).substitute(values), string.Template(body).substitute(values), language)
