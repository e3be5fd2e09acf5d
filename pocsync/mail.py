"""Outgoing mail: building messages that no field can inject into, and sending them through the node's relay.

Every address comes from an entry some secretariat signed, so each is validated again here
(email-validator, no deliverability lookup), headers are built with the standard library's strict
``SMTP`` policy (a CR or LF in a header value is refused, not folded), and the recipients of one
message are capped.  Sending goes through aiosmtplib with TLS only: implicit TLS (``security =
"tls"``) or mandatory STARTTLS (``"starttls"``); certificates are always verified (``ca_file`` adds
a private CA); the password is read from a file that must be mode 0600 and never logged.
Third-party errors become :class:`pocsync.errors.MailError` here, at the edge.
"""

from __future__ import annotations

import email.policy
import email.utils
import os
import ssl
import stat
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from pocsync.errors import ConfigError, MailError

SECURITY = ("starttls", "tls")
# Strict: refuse (not repair) defects; lines folded at 78; CRLF on the wire.
POLICY = email.policy.SMTP.clone(raise_on_defect=True)
MAX_SUBJECT = 200
MAX_BODY = 100_000


@dataclass(frozen=True)
class SmtpSettings:
    """``[smtp]`` in sync.toml."""

    host: str
    sender: str
    port: int = 587
    security: str = "starttls"
    user: str = ""
    password_file: str = ""
    ca_file: str = ""
    timeout_seconds: int = 30
    max_recipients: int = 5
    base: Path = field(default=Path("."), compare=False, repr=False)

    def resolve(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else self.base / q


def parse_settings(raw: Any, base: Path) -> SmtpSettings | None:
    """The ``[smtp]`` table, checked; ``None`` when there is none."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError("[smtp] must be a table")
    known = {
        "host",
        "sender",
        "port",
        "security",
        "user",
        "password_file",
        "ca_file",
        "timeout_seconds",
        "max_recipients",
    }
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"unknown key(s) in [smtp]: {', '.join(sorted(unknown))}")
    for k in ("host", "sender"):
        if not isinstance(raw.get(k), str) or not raw[k].strip():
            raise ConfigError(f"[smtp] {k} is required (a non-empty string)")
    for k in ("security", "user", "password_file", "ca_file"):
        if k in raw and not isinstance(raw[k], str):
            raise ConfigError(f"[smtp] {k} must be a string")
    for k in ("port", "timeout_seconds", "max_recipients"):
        if k in raw and (not isinstance(raw[k], int) or isinstance(raw[k], bool) or raw[k] < 1):
            raise ConfigError(f"[smtp] {k} must be a positive integer")
    security = raw.get("security", "starttls")
    if security not in SECURITY:
        raise ConfigError(
            f"[smtp] security must be one of {', '.join(SECURITY)} (plaintext is not offered), not {security!r}"
        )
    if bool(raw.get("user")) != bool(raw.get("password_file")):
        raise ConfigError("[smtp] user and password_file go together")
    try:
        check_address(raw["sender"])
    except MailError as exc:
        raise ConfigError(f"[smtp] sender: {exc.message}") from None
    port = raw.get("port", 465 if security == "tls" else 587)
    return SmtpSettings(**{**raw, "port": port, "security": security}, base=base)


def check_address(addr: object) -> str:
    """One address as it may be written into a header, or MailError(bad_address)."""
    from email_validator import EmailNotValidError, validate_email

    if not isinstance(addr, str) or len(addr) > 254 or any(c in addr for c in '\r\n\t ,;<>"()\\'):
        raise MailError(f"not a usable e-mail address: {addr!r}"[:300], reason="bad_address")
    try:
        v = validate_email(addr, check_deliverability=False, allow_smtputf8=False)
        return v.ascii_email or v.normalized  # an internationalised domain as IDNA: a clean header, plain RCPT
    except EmailNotValidError as exc:
        raise MailError(f"not a usable e-mail address {addr!r}: {exc}"[:300], reason="bad_address") from None


def _header_text(name: str, value: object, limit: int = 1000) -> str:
    if not isinstance(value, str) or "\r" in value or "\n" in value or len(value) > limit:
        raise MailError(f"mail header {name} must be one line of at most {limit} characters", reason="bad_header")
    return value


def build_message(
    settings: SmtpSettings,
    *,
    to: list[str],
    subject: str,
    body: str,
    headers: dict[str, str] | None = None,
    language: str = "en",
) -> EmailMessage:
    """A plain-text message from the node's sender to ``to`` (each address checked; at most max_recipients)."""
    if not to:
        raise MailError("a mail needs at least one recipient", reason="bad_address")
    if len(to) > settings.max_recipients:
        raise MailError(
            f"{len(to)} recipients: at most {settings.max_recipients} per mail ([smtp] max_recipients)",
            reason="too_many_recipients",
        )
    rcpts = [check_address(a) for a in to]
    if not isinstance(body, str) or len(body) > MAX_BODY:
        raise MailError(f"a mail body must be text of at most {MAX_BODY} characters", reason="bad_body")
    msg = EmailMessage(policy=POLICY)
    try:
        msg["From"] = check_address(settings.sender)
        msg["To"] = ", ".join(rcpts)
        msg["Subject"] = _header_text("Subject", subject, MAX_SUBJECT)
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = email.utils.make_msgid(domain=settings.sender.rpartition("@")[2])
        msg["Auto-Submitted"] = "auto-generated"
        for name, value in (headers or {}).items():
            if (
                not isinstance(name, str)
                or not name.replace("-", "").isalnum()
                or name.lower() in {"bcc", "cc", "to", "from", "sender", "reply-to", "subject"}
            ):
                raise MailError(f"mail header {name!r} may not be set here", reason="bad_header")
            del msg[name]  # replaces a default (e.g. Auto-Submitted) instead of adding a second header
            msg[name] = _header_text(name, value)
        msg.set_content(body, subtype="plain", charset="utf-8", cte="quoted-printable")
        msg["Content-Language"] = _header_text("Content-Language", language, 35)  # after: set_content clears Content-*
    except (ValueError, TypeError) as exc:  # the strict policy refuses a header it would have to repair
        raise MailError(f"mail could not be built: {exc}", reason="bad_header") from None
    return msg


@dataclass(frozen=True)
class SendResult:
    accepted: list[str]
    refused: dict[str, tuple[int, str]]  # recipient -> (SMTP reply code, reply text)


def read_password(settings: SmtpSettings) -> str:
    if not settings.password_file:
        return ""
    path = settings.resolve(settings.password_file)
    try:
        st = path.stat()
        if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
            raise MailError(f"{path} must not be readable by group or others (chmod 600)", reason="smtp_auth")
        text = path.read_text().strip()
    except OSError as exc:
        raise MailError(f"cannot read the SMTP password file {path}: {exc.strerror}", reason="smtp_auth") from None
    if not text:
        raise MailError(f"SMTP password file {path} is empty", reason="smtp_auth")
    return text


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if settings.ca_file:
        try:
            ctx.load_verify_locations(cafile=str(settings.resolve(settings.ca_file)))
        except (OSError, ssl.SSLError) as exc:
            raise MailError(f"cannot read [smtp] ca_file: {exc}", reason="smtp_tls") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def send(settings: SmtpSettings, msg: EmailMessage) -> SendResult:
    """Send ``msg`` through the relay. Per-recipient refusals are returned; MailError when nothing was sent."""
    import aiosmtplib

    password = read_password(settings)
    rcpts = [a.strip() for a in str(msg["To"]).split(",") if a.strip()]
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        timeout=settings.timeout_seconds,
        use_tls=settings.security == "tls",
        start_tls=True if settings.security == "starttls" else False,
        validate_certs=True,
        tls_context=tls_context(settings),
    )
    try:
        await client.connect()
        if settings.user:
            await client.login(settings.user, password)
        refused_raw, _ = await client.send_message(msg, recipients=rcpts)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = {r.recipient: (r.code, r.message) for r in exc.recipients}
        return SendResult(accepted=[], refused=refused)
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise MailError(f"the SMTP relay refused the login: {exc.code}", reason="smtp_auth") from None
    except (
        aiosmtplib.SMTPConnectError,
        aiosmtplib.SMTPServerDisconnected,
        aiosmtplib.SMTPTimeoutError,
        aiosmtplib.SMTPConnectTimeoutError,
        OSError,
    ) as exc:
        if isinstance(exc, ssl.SSLError) or "certificate" in str(exc).lower() or "ssl" in str(exc).lower():
            raise MailError(
                f"TLS with the SMTP relay {settings.host}:{settings.port} failed: {exc}", reason="smtp_tls"
            ) from None
        raise MailError(
            f"cannot reach the SMTP relay {settings.host}:{settings.port}: {exc}", reason="smtp_unavailable"
        ) from None
    except aiosmtplib.SMTPException as exc:
        text = str(exc)
        reason = "smtp_tls" if "tls" in text.lower() else "smtp_refused"
        raise MailError(f"the SMTP relay refused the mail: {text}"[:300], reason=reason) from None
    finally:
        try:
            await client.quit()
        except Exception:
            client.close()
    refused = {r: (resp.code, resp.message) for r, resp in refused_raw.items()}
    return SendResult(accepted=[r for r in rcpts if r not in refused], refused=refused)
