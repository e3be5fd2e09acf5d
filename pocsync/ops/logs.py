"""Daemon logging: text or JSON lines ([log] format), never PoC contact data, never credentials.

Log records carry node ids, URLs, seqs, reasons and counts — never entry fields; messages from the
store and transports are written with that rule, and the no-content tests read the logs.

Credentials are redacted from every line, the framework's included (aiohttp's access log records
the request line with its query string; its parser errors quote header values): the handler's
formatter runs :func:`redact` over the whole formatted line, exception text included, so no logger
can bypass it (issue 11, case 9).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # header values, however quoted: Authorization: Bearer …, Cookie: …, Set-Cookie: …
    (
        re.compile(
            r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie)(['\"]?\s*[:=,]\s*['\"]?)"
            r"[^'\"\r\n]*"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer|basic|pocsync)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + REDACTED),
    # credentials in query strings and form bodies
    (
        re.compile(
            r"(?i)\b(access_token|id_token|refresh_token|token|session|pocsync_session|password|passwd|"
            r"secret|api_key|apikey)=[^&\s'\"]+"
        ),
        r"\1=" + REDACTED,
    ),
    # anything shaped like a JWT/JWS wherever it appears
    (re.compile(r"[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), REDACTED),
)


def redact(text: str) -> str:
    """``text`` with every credential we know the shape of replaced by ``[redacted]``."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value


#: What a message may not carry raw: C0 and C1 controls, DEL, line and paragraph separators and the bidi
#: controls.  Values from signed change-sets (op names and keys of refused ops, unverified origins) reach
#: log messages; raw, a "\n" in one would forge a log line and U+2028 would split a JSON line for readers
#: that use str.splitlines.
_UNSAFE = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
}


_JSON_UNSAFE = {c: f"\\u{c:04x}" for c in _UNSAFE if c >= 0x7F}


def one_line(text: str) -> str:
    """``text`` with every character of :data:`_UNSAFE` written as a visible escape (``\\x0a``)."""
    return text.translate(_UNSAFE)


class RedactingFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # the message only: tracebacks keep their lines
        record.message = one_line(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(one_line(record.getMessage())),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):  # structured sync events (pocsync.live.runtime.event): redacted too
            out.update({k: _redact_value(v) for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        # C1 controls, U+2028, U+2029 and bidi controls may stand raw in JSON strings, but end a line for some
        # readers or reorder a terminal line: written as \u escapes (they occur only inside strings)
        return json.dumps(out, ensure_ascii=False).translate(_JSON_UNSAFE)


class BadRequestLines(logging.Filter):
    """aiohttp logs a request it cannot even parse (e.g. raw non-ASCII in the URL, sent by any client without a
    token) as an ERROR with a full traceback.  That is the client's fault, not the node's: one WARNING line,
    without the traceback, so that nobody can fill a node's log with stack traces or page its operator."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError  # every parse error of a request is one

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) or type(exc).__name__ == "DecompressSizeError":
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "bad request from a client (%s): %s: %s"
            record.args = (peer, type(exc).__name__, one_line(str(exc)))
            record.exc_info, record.exc_text = None, None
        return True


def setup(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonLines() if fmt == "json" else RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequestLines) for f in server.filters):
        server.addFilter(BadRequestLines())
