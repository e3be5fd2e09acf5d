"""LDIF (RFC 2849) files, parsed by the ``ldif`` library; written with its LDIFWriter.

Each record (block between blank lines) is handed to ``ldif.LDIFParser`` on its own, so one
broken record is reported by number and DN and the others are still read.  Change records
(``changetype:``) are refused; URL values (``attr:< file://…``) are never fetched.  Attribute use:
see :mod:`pocsync_adapters._ldapattrs`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import ldif

from pocsync.directory.adapters import Mapping, Record
from pocsync.errors import SourceError
from pocsync_adapters._ldapattrs import DEFAULT_MAPPING, entry_attrs, raw_record, rdn_value

_BLANK = re.compile(rb"\r?\n[ \t]*\r?\n")
_VERSION = re.compile(rb"^version:[ \t]*1[ \t]*\r?\n", re.I)
DEFAULT_BASE = "ou=pocs,dc=pocsync,dc=example"


class LdifAdapter:
    name = "ldif"
    option_keys = ()
    description = "LDIF (RFC 2849) export of an LDAP directory"
    reads = "LDIF content records (inetOrgPerson; other schemas through a mapping)"
    writes = "LDIF of inetOrgPerson entries under a base DN"
    default_mapping = DEFAULT_MAPPING

    def read(self, data: bytes, *, mapping: Mapping, source: str) -> Iterator[Record]:
        if b"\x00" in data:
            raise SourceError(f"{source}: holds NUL bytes: not an LDIF text file")
        if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark, as Windows tools write
            data = data[3:]
        body = _VERSION.sub(b"", data.lstrip(b"\r\n"), count=1)
        blocks = [b for b in _BLANK.split(body) if b.strip() and not _only_comments(b)]
        if not blocks:
            raise SourceError(f"{source}: no LDIF record")
        for n, block in enumerate(blocks, start=1):
            ref = f"{source}:record {n}"
            try:
                parsed = list(ldif.LDIFParser(io.BytesIO(block.strip(b"\r\n") + b"\n"), strict=True).parse())
                if len(parsed) != 1:
                    raise ValueError(f"{len(parsed)} records in one block")
                dn, attrs = parsed[0]
                if not dn:
                    raise ValueError("no dn")
                if any(k.lower() == "changetype" for k in attrs):
                    raise ValueError("change records (changetype) are not read; export content records")
            except Exception as exc:  # the parser raises ValueError, binascii errors, UnicodeDecodeError …
                yield Record(ref=ref, raw={}, error=f"invalid LDIF: {str(exc)[:200]}")
                continue
            yield Record(ref=f"{source}:{dn}", raw=raw_record(dn, attrs), id=dn)

    def write(self, rows: list[dict[str, Any]], *, base_dn: str = DEFAULT_BASE) -> bytes:
        out = io.BytesIO()
        out.write(b"version: 1\n\n")
        writer = ldif.LDIFWriter(out)
        for r in rows:
            writer.unparse(f"cn={rdn_value(r['key'])},{base_dn}", entry_attrs(r))
        return out.getvalue()


def _only_comments(block: bytes) -> bool:
    return all(ln.startswith(b"#") or not ln.strip() for ln in block.splitlines())
