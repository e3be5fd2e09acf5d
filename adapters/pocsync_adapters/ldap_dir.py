"""A live LDAP directory, read with ldap3 (pure Python, RFC 4510): search base, filter, simple bind.

The source is a URL, ``ldap://host:port`` or ``ldaps://host:port``.  Options (mapping file,
``[options]`` table, or the daemon's ``[[sources]]``): ``base`` (required), ``filter`` (default
``(objectClass=inetOrgPerson)``), ``bind_dn`` and ``password_file`` (the password is read from a
file, never from the command line or sync.toml), ``starttls`` (upgrade ``ldap://``), ``ca_file``
(verify the server's certificate against it; TLS always verifies), ``timeout_seconds``.
Referrals are never followed (they would carry the bind password to a host the server names): a
base that is a referral is an error naming it.
Attributes map as in LDIF (:mod:`pocsync_adapters._ldapattrs`).  :meth:`LdapAdapter.watch` follows
changes with RFC 4533 (syncrepl refreshAndPersist) where the server offers it (OpenLDAP with the
syncprov overlay), so the daemon re-imports on change instead of waiting for its interval.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pocsync.directory.adapters import Mapping, Record
from pocsync.errors import SourceError
from pocsync_adapters._ldapattrs import DEFAULT_MAPPING, raw_record

PAGE = 500
SYNC_REQUEST = "1.3.6.1.4.1.4203.1.9.1.1"  # RFC 4533 Sync Request Control
REFRESH_AND_PERSIST = b"\x30\x03\x0a\x01\x03"  # SEQUENCE { mode ENUMERATED refreshAndPersist(3) }
MAX_ENTRIES = 100_000


class LdapAdapter:
    name = "ldap"
    option_keys = ("base", "filter", "bind_dn", "password_file", "starttls", "ca_file", "timeout_seconds")
    description = "a live LDAP directory (ldap3): base, filter, bind with a password file, StartTLS/LDAPS"
    reads = "ldap:// or ldaps:// URL (base and filter: the mapping's options table)"
    writes = None
    default_mapping = DEFAULT_MAPPING
    live = True

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]:
        raise SourceError("the ldap adapter reads a server: give its URL (ldap://host:port) as the source")

    def _connect(self, url: str, mapping: Mapping, base_dir: Path | None, *, stream: bool = False) -> tuple[Any, Any]:
        import ldap3

        o = mapping.options
        parts = urlsplit(url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise SourceError(f"{url!r} is not an ldap:// or ldaps:// URL")
        timeout = int(o.get("timeout_seconds", 15))
        password = None
        if o.get("password_file"):
            pf = Path(str(o["password_file"]))
            if base_dir is not None and not pf.is_absolute():
                pf = base_dir / pf
            try:
                password = pf.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise SourceError(f"ldap password file {pf}: {exc.strerror}") from None
        tls = None
        if parts.scheme == "ldaps" or o.get("starttls"):
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=o.get("ca_file") or None)
        server = ldap3.Server(
            parts.hostname,
            port=parts.port,
            use_ssl=parts.scheme == "ldaps",
            tls=tls,
            connect_timeout=timeout,
            get_info=ldap3.DSA if stream else ldap3.NONE,
            allowed_referral_hosts=[],
        )
        # Referrals are never followed: ldap3 would open a connection to whatever host the server
        # names (plain ldap:// too) and bind there with this source's DN and password.
        conn = ldap3.Connection(
            server,
            user=o.get("bind_dn") or None,
            password=password,
            receive_timeout=timeout,
            raise_exceptions=True,
            read_only=True,
            auto_referrals=False,
            client_strategy=ldap3.ASYNC_STREAM if stream else ldap3.SYNC,
        )
        conn.open()
        if o.get("starttls") and parts.scheme == "ldap":
            conn.start_tls()
        conn.bind()
        return server, conn

    def _base(self, mapping: Mapping) -> tuple[str, str]:
        base = mapping.options.get("base")
        if not isinstance(base, str) or not base:
            raise SourceError('the ldap adapter needs [options] base = "ou=...,dc=..." in the mapping')
        return base, str(mapping.options.get("filter", "(objectClass=inetOrgPerson)"))

    def read_source(self, url: str, *, mapping: Mapping, base_dir: Path | None = None) -> Iterator[Record]:
        import ldap3
        from ldap3.core.exceptions import LDAPException

        base, flt = self._base(mapping)
        try:
            _, conn = self._connect(url, mapping, base_dir)
            try:
                n = 0
                for item in conn.extend.standard.paged_search(
                    base, flt, attributes=[ldap3.ALL_ATTRIBUTES], paged_size=PAGE, generator=True
                ):
                    if item.get("type") != "searchResEntry":
                        continue
                    n += 1
                    if n > MAX_ENTRIES:
                        raise SourceError(f"{url}: more than {MAX_ENTRIES} entries under {base}; narrow the filter")
                    dn = item["dn"]
                    attrs: dict[str, Any] = item.get("raw_attributes") or {}
                    yield Record(ref=dn, raw=raw_record(dn, attrs), id=dn)
                done = conn.result if isinstance(conn.result, dict) else {}
                if done.get("result") == 10:  # referral: the server says the base lives elsewhere
                    where = ", ".join(str(r) for r in done.get("referrals") or [])[:200]
                    raise SourceError(
                        f"{url}: the server refers {base} to {where or 'another server'}; referrals "
                        "are not followed (they would carry the bind password): name that server as "
                        "the source"
                    )
            finally:
                conn.unbind()
        except LDAPException as exc:
            raise SourceError(f"{url}: LDAP: {type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise SourceError(f"{url}: {exc}") from None

    def watch(
        self, url: str, *, mapping: Mapping, base_dir: Path | None, on_change: Callable[[], None]
    ) -> Watch | None:
        """Be told of changes (RFC 4533 refreshAndPersist), if the server offers it; else None.

        ``on_change`` is called from ldap3's listener thread for every change after the initial
        refresh; the caller re-imports (idempotently). Blocking: call it from a thread.
        """
        from ldap3.core.exceptions import LDAPException

        base, flt = self._base(mapping)
        try:
            server, conn = self._connect(url, mapping, base_dir, stream=True)
            supported = {c[0] for c in (server.info.supported_controls if server.info else [])}
            if SYNC_REQUEST not in supported:
                conn.unbind()
                return None
            state = {"refreshed": False}

            def callback(msg: dict[str, Any]) -> None:
                if msg.get("type") == "intermediateResponse":
                    state["refreshed"] = True  # syncInfo: the initial content is through
                elif msg.get("type") == "searchResEntry" and state["refreshed"]:
                    on_change()

            ps = conn.extend.standard.persistent_search(
                base,
                flt,
                attributes=["1.1"],
                controls=[(SYNC_REQUEST, True, REFRESH_AND_PERSIST)],
                notifications=False,
                streaming=False,
                callback=callback,
            )
            return Watch(conn, ps)
        except LDAPException as exc:
            raise SourceError(f"{url}: LDAP: {type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise SourceError(f"{url}: {exc}") from None


class Watch:
    """A running syncrepl search; ``alive`` turns false when the connection drops."""

    def __init__(self, conn: Any, ps: Any) -> None:
        self.conn, self.ps = conn, ps

    def alive(self) -> bool:
        return not self.conn.closed and bool(self.conn.listening)

    def stop(self) -> None:
        try:
            self.ps.stop()
        except Exception:
            pass
