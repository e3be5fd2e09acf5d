"""A live LDAP directory, read with ldap3 (pure Python, RFC 4510): search base, filter, simple bind.

The source is a URL, ``ldap://host:port`` or ``ldaps://host:port``.  Options (mapping file,
``[options]`` table, or the daemon's ``[[sources]]``): ``base`` (required), ``filter`` (default
``(objectClass=inetOrgPerson)``), ``bind_dn`` and ``password_file`` (the password is read from a
file, never from the command line or sync.toml), ``starttls`` (upgrade ``ldap://``), ``ca_file``
(verify the server's certificate against it; TLS always verifies), ``timeout_seconds``.
Attributes map as in LDIF (:mod:`pocsync_adapters._ldapattrs`).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from pocsync.adapters import Mapping, Record
from pocsync.errors import SourceError
from pocsync_adapters._ldapattrs import DEFAULT_MAPPING, raw_record

PAGE = 500
MAX_ENTRIES = 100_000


class LdapAdapter:
    name = "ldap"
    description = "a live LDAP directory (ldap3): base, filter, bind with a password file, StartTLS/LDAPS"
    reads = "ldap:// or ldaps:// URL (base and filter: the mapping's options table)"
    writes = None
    default_mapping = DEFAULT_MAPPING
    live = True

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]:
        raise SourceError("the ldap adapter reads a server: give its URL (ldap://host:port) as the source")

    def read_source(self, url: str, *, mapping: Mapping, base_dir: Path | None = None) -> Iterator[Record]:
        import ldap3
        from ldap3.core.exceptions import LDAPException

        o = mapping.options
        parts = urlsplit(url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise SourceError(f"{url!r} is not an ldap:// or ldaps:// URL")
        base = o.get("base")
        if not isinstance(base, str) or not base:
            raise SourceError("the ldap adapter needs [options] base = \"ou=...,dc=...\" in the mapping")
        flt = str(o.get("filter", "(objectClass=inetOrgPerson)"))
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
        try:
            server = ldap3.Server(parts.hostname, port=parts.port, use_ssl=parts.scheme == "ldaps", tls=tls,
                                  connect_timeout=timeout, get_info=ldap3.NONE)
            conn = ldap3.Connection(server, user=o.get("bind_dn") or None, password=password,
                                    receive_timeout=timeout, raise_exceptions=True, read_only=True)
            conn.open()
            if o.get("starttls") and parts.scheme == "ldap":
                conn.start_tls()
            conn.bind()
            try:
                n = 0
                for item in conn.extend.standard.paged_search(base, flt, attributes=[ldap3.ALL_ATTRIBUTES],
                                                              paged_size=PAGE, generator=True):
                    if item.get("type") != "searchResEntry":
                        continue
                    n += 1
                    if n > MAX_ENTRIES:
                        raise SourceError(f"{url}: more than {MAX_ENTRIES} entries under {base}; narrow the filter")
                    dn = item["dn"]
                    attrs: dict[str, Any] = item.get("raw_attributes") or {}
                    yield Record(ref=dn, raw=raw_record(dn, attrs), id=dn)
            finally:
                conn.unbind()
        except LDAPException as exc:
            raise SourceError(f"{url}: LDAP: {type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise SourceError(f"{url}: {exc}") from None
