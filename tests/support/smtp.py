"""A real SMTP server for tests: aiosmtpd on a free port, STARTTLS and AUTH required, messages kept.

    with SmtpServer(tmp_path, reject={"gone@example.org"}) as srv:
        toml_text += srv.smtp_toml()
        ...
        msgs = srv.wait_for(2)

Rejected recipients get ``550 5.1.1``; every accepted message is parsed with the standard library's
parser (``policy.default``) into ``srv.messages`` (with ``srv.envelopes``: (mail_from, rcpt_tos)).
"""

from __future__ import annotations

import email
import email.policy
import secrets
import socket
import ssl
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.tls import make_ca_and_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, srv, session, envelope, address, rcpt_options):
        if address.lower() in self.server.reject:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, srv, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.server.lock:
            self.server.messages.append(msg)  # type: ignore[arg-type]
            self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.server.changed.notify_all()
        return "250 Message accepted"


class SmtpServer:
    def __init__(self, folder: Path, *, reject: set[str] | frozenset[str] = frozenset(), user: str = "pocsync") -> None:
        self.folder = folder / "smtp"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.reject = {a.lower() for a in reject}
        self.user = user
        self.password = secrets.token_urlsafe(18)
        self.password_file = self.folder / "smtp-password"
        self.password_file.write_text(self.password + "\n")
        self.password_file.chmod(0o600)
        self.ca_file, cert, key = make_ca_and_server(self.folder / "tls")
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(str(cert), str(key))
        self.host, self.port = "127.0.0.1", free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.logins: list[str] = []
        self._controller: Controller | None = None

    def _auth(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and secrets.compare_digest(auth_data.password.decode(), self.password)
        )
        if ok:
            self.logins.append(self.user)
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    def __enter__(self) -> SmtpServer:
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",
            tls_context=self.tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=self._auth,
            ready_timeout=10,
        )
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._controller is not None:
            self._controller.stop()

    def wait_for(self, n: int, timeout: float = 30.0) -> list[EmailMessage]:
        """The first ``n`` messages, waiting up to ``timeout`` seconds for them to arrive."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} mail(s) within {timeout} s, got {len(self.messages)}")
                self.changed.wait(left)
            return list(self.messages[:n])

    def smtp_toml(self, sender: str = "directory@example.org") -> str:
        """The ``[smtp]`` table of a sync.toml that sends through this server."""
        return (
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {self.port}\nsecurity = "starttls"\nsender = "{sender}"\n'
            f'user = "{self.user}"\npassword_file = "{self.password_file}"\nca_file = "{self.ca_file}"\n'
            "timeout_seconds = 10\n"
        )
