"""A node's store file, composed of its concerns (each a module of ``pocsync.store``)."""

from __future__ import annotations

from pocsync.store.checks_reads import CheckReads
from pocsync.store.local import LocalRecords
from pocsync.store.log import LogOps


class Store(LogOps, CheckReads, LocalRecords):
    """A node's store file.  Open with :meth:`open` or :meth:`create`.

    * ``base``: the file, ``BEGIN IMMEDIATE`` transactions, meta, the installed manifest;
    * ``guard``: the facts of the signing guard (its rules: :mod:`pocsync.core.signing`);
    * ``log``: receiving, signing, publishing, ``log verify`` (rules: :mod:`pocsync.core.acceptance`);
    * ``reads`` and ``checks_reads``: the view, provenance, what was not applied, checks and freshness;
    * ``local``: held-change objection links, revoked tokens, the audit log.
    """
