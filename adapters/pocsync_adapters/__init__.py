"""Source formats for pocsync (installed as ``pocsync_adapters``): csv, json, vcard, ldif, ldap,
ti-teams, first-teams, misp-orgs.

Each module is one adapter, found through the entry-point group ``pocsync.adapters``; the interface
(records, mappings, errors) lives in :mod:`pocsync.directory.adapters` and docs/adapters/README.md.
"""
