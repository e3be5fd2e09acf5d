"""Writes docs/openapi.json (OpenAPI 3.1) — the PoC directory and operator API of a pocsync node.

Run: .venv/bin/python docs/make_openapi.py.  tests/integration/test_api.py validates the document and runs
schemathesis against a live node with it.
"""

import json
from pathlib import Path

PROBLEM = {"$ref": "#/components/responses/Problem"}
ERR = {"400": PROBLEM, "401": PROBLEM, "403": PROBLEM, "429": PROBLEM}
STR = {"type": "string"}
STRS = {"type": "array", "items": STR}


def op(summary, responses, *, params=(), security=True, body=None, tag="directory"):
    o = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        o["parameters"] = list(params)
    if security:
        o["security"] = [{"bearer": []}, {"session": []}]
    if body:
        o["requestBody"] = body
    return o


def q(name, schema, desc):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": desc}


def ok(schema, ctype="application/json", desc="OK", headers=None):
    r = {"description": desc, "content": {ctype: {"schema": schema}}}
    if headers:
        r["headers"] = headers
    return r


entry = {
    "type": "object",
    "required": ["state", "kind", "organisation"],
    "additionalProperties": True,
    "properties": {
        "state": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "kind": {"enum": ["diplomatic", "technical"]},
        "organisation": STR,
        "position": STR,
        "person": STR,
        "emails": STRS,
        "phones": STRS,
        "available_24_7": {"type": "boolean"},
        "timezone": STR,
        "languages": STRS,
        "networks": STRS,
        "secure_channels": {"type": "array", "items": {"type": "object"}},
        "notes": STR,
        "holder_epoch": STR,
        "public_key": {
            "type": "string",
            "maxLength": 16384,
            "description": "armored OpenPGP public key (checked at the origin)",
        },
        "public_key_fingerprint": {"type": "string", "pattern": "^([0-9A-F]{40}|[0-9A-F]{64})$"},
    },
}
provenance = {
    "type": "object",
    "required": ["origin", "cs_id", "index", "hlc", "author"],
    "properties": {"origin": STR, "cs_id": STR, "index": {"type": "integer"}, "hlc": STR, "author": STR},
}
TIME = {"type": ["string", "null"], "format": "date-time"}
freshness = {  # PROTOCOL.md §15.4: derived from check and confirm ops; overdue judged on the node's clock
    "last_modified": {**TIME, "description": "when the winning listing was signed (its hlc)"},
    "last_verified": {
        **TIME,
        "description": "the latest acknowledged or answered check of a current channel; null: never",
    },
    "last_confirmed": {**TIME, "description": "the latest confirmation by a secretariat (confirm op); null: never"},
    "verification": {
        "type": "array",
        "description": "per current channel, named by position (email 1, phone 1)",
        "items": {
            "type": "object",
            "properties": {
                "channel": STR,
                "last_verified": TIME,
                "last_checked": TIME,
                "last_result": {
                    "type": ["string", "null"],
                    "enum": [
                        "sent",
                        "acknowledged",
                        "no_response",
                        "bounced",
                        "answered",
                        "no_answer",
                        "wrong_number",
                        None,
                    ],
                },
            },
        },
    },
    "overdue": {
        "type": ["object", "null"],
        "description": "null, or why the entry is overdue under policy.freshness",
        "properties": {
            "reasons": {"type": "array", "items": {"enum": ["confirm", "verify"]}},
            "confirm_days": {"type": "integer"},
            "verify_days": {"type": "integer"},
            "confirm_due": TIME,
            "verify_due": TIME,
        },
    },
}
listed = {
    "type": "object",
    "required": ["key", "entry", "listed_by", "provenance", "last_modified", "last_verified", "last_confirmed"],
    "properties": {
        "key": STR,
        "entry": {"$ref": "#/components/schemas/Entry"},
        "listed_by": {**STRS, "description": "every directory (origin) that lists this entry"},
        "provenance": {"$ref": "#/components/schemas/Provenance"},
        **freshness,
    },
}
session = {
    "type": "object",
    "required": ["signed_in"],
    "properties": {
        "signed_in": {"type": "boolean"},
        "reason": STR,
        "detail": STR,
        "subject": STR,
        "scope": STR,
        "issuer": STR,
        "expires": {"type": "integer"},
        "node": STR,
    },
}
version = {
    "type": "object",
    "properties": {
        "origin": STR,
        "op": {"enum": ["put", "delete", "withdraw"]},
        "hlc": STR,
        "cs_id": STR,
        "index": {"type": "integer"},
        "seq": {"type": "integer"},
        "author": STR,
        "entry": {"type": ["object", "null"]},
    },
}
history_op = {
    "type": "object",
    "required": ["key", "op", "origin", "seq", "cs_id", "index", "hlc", "author", "status"],
    "properties": {
        "key": STR,
        "namespace": STR,
        "op": STR,
        "origin": STR,
        "seq": {"type": "integer"},
        "cs_id": STR,
        "index": {"type": "integer"},
        "hlc": STR,
        "time": {"type": ["string", "null"]},
        "author": STR,
        "manifest": {"type": "integer"},
        "status": {"enum": ["applied", "refused"]},
        "reason": {"type": ["string", "null"]},
        "message": {"type": ["string", "null"]},
        "entry": {},
        "fields": {"type": "object"},
        "diff": {
            "type": ["object", "null"],
            "properties": {
                "against": {"type": ["object", "null"]},
                "changes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": STR,
                            "change": {"enum": ["added", "changed", "removed"]},
                            "before": {},
                            "after": {},
                        },
                    },
                },
            },
        },
    },
}
history_schema = {
    "type": "object",
    "required": ["format", "state", "node", "digest", "keys", "ops", "current", "records"],
    "properties": {
        "format": {"const": "pocsync.history/v1"},
        "state": STR,
        "node": STR,
        "digest": STR,
        "manifest": {"type": ["integer", "null"]},
        "keys": STRS,
        "ops": {"type": "array", "items": history_op},
        "refused": {"type": "integer"},
        "current": {"type": "array", "items": {"type": "object"}},
        "records": {"type": "array", "items": {"type": "object"}},
    },
}
held = {
    "type": "object",
    "required": ["key", "status", "origin", "fields"],
    "properties": {
        "key": STR,
        "status": {"enum": ["pending", "objected"]},
        "origin": STR,
        "proposed": STR,
        "fields": STRS,
        "takes_effect_ms": {"type": ["integer", "null"]},
        "takes_effect": {"type": ["string", "null"]},
        "notice": {"type": ["string", "null"]},
        "objected": {"type": ["string", "null"]},
    },
}
health = {
    "type": "object",
    "required": ["node", "digest", "converged", "origins", "manifest"],
    "properties": {
        "node": STR,
        "digest": STR,
        "converged": {"type": "boolean"},
        "origins": {"type": "object"},
        "peers": {"type": "object"},
        "manifest": {"type": "object"},
        "entries": {"type": "integer"},
        "announced_digests": {"type": "object"},
        "nodes_behind": {"type": "object"},
        "announcements": {"type": "object"},
        "quarantined": {"type": "object"},
        "refused": {"type": "object"},
        "parked": {"type": "object"},
        "equivocations": {"type": "array"},
        "clock_warnings": {"type": "array"},
        "mqtt": {"type": "object"},
        "signing_blocked": {"type": ["string", "null"]},
        "time": {"type": "number"},
        "software": {"type": "object"},
        "uptime_s": {"type": "number"},
        "sources": {
            "type": "object",
            "description": "[[sources]] kept in step: last run, result, "
            "counts and reasons per source (never contact data)",
        },
    },
}

field_text = {
    "type": "object",
    "required": ["label"],
    "additionalProperties": False,
    "properties": {"label": STR, "help": STR, "options": {"type": "object", "additionalProperties": STR}},
}
template = {
    "type": "object",
    "required": ["id", "version", "purpose", "languages", "schema", "origin", "hlc"],
    "description": "a communication template (PROTOCOL.md §18): untrusted federation data, render as text",
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
        "version": {"type": "integer", "minimum": 1},
        "purpose": {
            "enum": ["request_for_assistance", "notice_of_malicious_activity", "request_for_information", "reply"]
        },
        "languages": {
            "type": "object",
            "description": "language code (en, fr, es, ...) -> text",
            "additionalProperties": {
                "type": "object",
                "required": ["title", "text", "fields"],
                "properties": {
                    "title": STR,
                    "text": STR,
                    "fields": {"type": "object", "additionalProperties": field_text},
                },
            },
        },
        "schema": {"type": "object", "description": "the JSON Schema subset of PROTOCOL.md §18.3"},
        "origin": {**STR, "description": "the node that published the effective version"},
        "hlc": STR,
        "cs_id": STR,
        "index": {"type": "integer"},
    },
}

doc = {
    "openapi": "3.1.0",
    "info": {
        "title": "pocsync node API",
        "version": "1",
        "description": "The merged directory of cyber/ICT-security Points of Contact, readable by PoCs only "
        "(tokens with scope `directory`), and sync health for operators (scope `health`). "
        "Errors are RFC 9457 problem details. Every read is audited.",
    },
    "paths": {
        "/v1/entries": {
            "get": op(
                "List and search entries",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "required": ["entries", "total", "page", "per_page", "digest"],
                            "properties": {
                                "entries": {"type": "array", "items": {"$ref": "#/components/schemas/Listed"}},
                                "total": {"type": "integer"},
                                "page": {"type": "integer"},
                                "per_page": {"type": "integer"},
                                "digest": STR,
                            },
                        },
                        headers={"ETag": {"schema": STR}},
                    ),
                    "304": {"description": "Not modified (If-None-Match matched the ETag)"},
                    **ERR,
                },
                params=[
                    q("state", STR, "ISO 3166-1 alpha-3"),
                    q("kind", {"enum": ["diplomatic", "technical"]}, "kind"),
                    q("network", STR, "regional network"),
                    q(
                        "q",
                        {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "[^\\s\\x1c-\\x1f\\x85]"},
                        "full-text search of the State (code and English names), kind, organisation, position, "
                        "person, networks and notes (not the e-mail addresses or phone numbers): every word must "
                        "occur, as a word or the start of one; search syntax is not interpreted. Matches come best "
                        "first. Empty (after trimming) or over 200 characters: 400",
                    ),
                    q("page", {"type": "integer", "minimum": 1}, "page, from 1"),
                    q("per_page", {"type": "integer", "minimum": 1, "maximum": 500}, "page size"),
                    {"name": "If-None-Match", "in": "header", "required": False, "schema": STR},
                ],
            )
        },
        "/v1/entries/{state}/{kind}": {
            "get": op(
                "One entry with provenance and divergences",
                {
                    "200": ok(
                        {
                            "allOf": [
                                {"$ref": "#/components/schemas/Listed"},
                                {
                                    "type": "object",
                                    "properties": {
                                        "versions": {"type": "array", "items": version},
                                        "divergent_fields": {"type": "object"},
                                    },
                                },
                            ]
                        },
                        headers={"ETag": {"schema": STR}},
                    ),
                    "304": {"description": "Not modified (If-None-Match matched the ETag)"},
                    "404": PROBLEM,
                    **ERR,
                },
                params=[
                    {"name": "state", "in": "path", "required": True, "schema": STR},
                    {"name": "kind", "in": "path", "required": True, "schema": STR},
                    {"name": "If-None-Match", "in": "header", "required": False, "schema": STR},
                ],
            )
        },
        "/v1/divergences": {
            "get": op(
                "Keys whose directories disagree, field by field",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "required": ["divergences"],
                            "properties": {"divergences": {"type": "array", "items": {"type": "object"}}},
                        }
                    ),
                    **ERR,
                },
            )
        },
        "/v1/networks": {
            "get": op(
                "Which regional directories list each State's PoCs",
                {
                    "200": ok(
                        {"type": "object", "required": ["networks"], "properties": {"networks": {"type": "object"}}}
                    ),
                    **ERR,
                },
            )
        },
        "/v1/export": {
            "get": op(
                "The directory as JSON, CSV or vCard 4.0",
                {
                    "200": {
                        "description": "the export",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "text/csv": {"schema": STR},
                            "text/vcard": {"schema": STR},
                        },
                    },
                    **ERR,
                },
                params=[q("format", {"enum": ["json", "csv", "vcard"]}, "format"), q("key", STR, "one entry only")],
            )
        },
        "/v1/templates": {
            "get": op(
                "Communication templates: the effective version of each, sorted by id",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "required": ["templates"],
                            "properties": {
                                "templates": {"type": "array", "items": {"$ref": "#/components/schemas/Template"}}
                            },
                        }
                    ),
                    **ERR,
                },
                tag="templates",
            )
        },
        "/v1/templates/{id}": {
            "get": op(
                "One communication template",
                {"200": ok({"$ref": "#/components/schemas/Template"}), "404": PROBLEM, **ERR},
                params=[{"name": "id", "in": "path", "required": True, "schema": STR}],
                tag="templates",
            )
        },
        "/v1/history/{state}": {
            "get": op(
                "A State's own audit trail: every op on its keys from any origin, applied or refused, with a "
                "field-by-field diff (PoC tokens of that State only; another State's token gets 403)",
                {"200": ok(history_schema), **ERR},
                params=[{"name": "state", "in": "path", "required": True, "schema": STR}],
                tag="history",
            )
        },
        "/v1/history/{state}/bundle": {
            "get": op(
                "The same history with the signed change-sets that hold those ops and every manifest version "
                "(verifiable without this node, PROTOCOL.md §17.2)",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "required": ["format", "state", "history", "changesets", "manifests"],
                            "properties": {
                                "format": {"const": "pocsync.history-bundle/v1"},
                                "state": STR,
                                "node": STR,
                                "created_at": STR,
                                "history": history_schema,
                                "changesets": STRS,
                                "manifests": STRS,
                                "other_states": STRS,
                            },
                        }
                    ),
                    **ERR,
                },
                params=[{"name": "state", "in": "path", "required": True, "schema": STR}],
                tag="history",
            )
        },
        "/v1/snapshot": {
            "post": op(
                "A signed snapshot of the merged view, encrypted with age to a passphrase (at least 20 characters) "
                "or to age recipients (PROTOCOL.md §17.3); one a minute per PoC",
                {
                    "200": {
                        "description": "the age-encrypted snapshot file",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **ERR,
                },
                tag="history",
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {
                                        "type": "object",
                                        "required": ["passphrase"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "passphrase": {"type": "string", "minLength": 20, "maxLength": 1024}
                                        },
                                    },
                                    {
                                        "type": "object",
                                        "required": ["recipients"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "recipients": {
                                                "type": "array",
                                                "minItems": 1,
                                                "maxItems": 20,
                                                "items": {"type": "string", "maxLength": 200},
                                            }
                                        },
                                    },
                                ]
                            }
                        }
                    },
                },
            )
        },
        "/v1/token/renew": {
            "post": op(
                "A fresh token for the holder of a valid one",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "required": ["token", "expires_in"],
                            "properties": {"token": STR, "expires_in": {"type": "integer"}},
                        }
                    ),
                    **ERR,
                },
                tag="tokens",
            )
        },
        "/v1/session": {
            "post": op(
                "Sign in to the web pages: sets an HttpOnly, Secure, SameSite=Strict cookie",
                {"200": ok({"type": "object"}), **ERR},
                security=False,
                tag="tokens",
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "required": ["token"], "properties": {"token": STR}}
                        }
                    },
                },
            ),
            "get": op(
                "Whether the session cookie (or a Bearer token to try) would be let in; never 401",
                {"200": ok(session)},
                security=False,
                tag="tokens",
            ),
            "delete": op("Sign out", {"200": ok({"type": "object"})}, security=False, tag="tokens"),
        },
        "/v1/whoami": {"get": op("The signed-in subject", {"200": ok({"type": "object"}), **ERR}, tag="tokens")},
        "/v1/health": {"get": op("Sync health (no entry content)", {"200": ok(health), **ERR}, tag="operations")},
        "/v1/held": {
            "get": op(
                "Held contact changes (PROTOCOL.md §16): status, the names of the fields that change "
                "and when each takes effect; never the new values",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "required": ["held"],
                            "properties": {"held": {"type": "array", "items": held}},
                        }
                    ),
                    **ERR,
                },
                params=[q("key", {"type": "string", "pattern": "^[A-Z]{3}/(diplomatic|technical)$"}, "one entry")],
            )
        },
        "/held/object": {
            "get": op(
                "The page a notice's objection link opens (changes nothing; one POST button)",
                {
                    "200": ok(STR, "text/html"),
                    "404": ok(STR, "text/html", "unknown, used or stale link"),
                    "429": ok(STR, "text/html", "rate-limited"),
                },
                params=[q("token", STR, "the link's single-use token")],
                security=False,
                tag="held",
            ),
            "post": op(
                "Object to a held change: this node signs an object op; the link is single-use",
                {
                    "200": ok(STR, "text/html"),
                    "404": ok(STR, "text/html", "unknown, used or stale link"),
                    "413": ok(STR, "text/html"),
                    "429": ok(STR, "text/html", "rate-limited"),
                    "503": ok(STR, "text/html", "not recorded"),
                },
                security=False,
                tag="held",
                body={
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object", "required": ["token"], "properties": {"token": STR}}
                        }
                    },
                },
            ),
        },
        "/v1/health/history": {
            "get": op(
                "Lag per origin over the last hour; quarantine and refusal feed",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "required": ["lag", "feed"],
                            "properties": {"lag": {"type": "object"}, "feed": {"type": "array"}},
                        }
                    ),
                    **ERR,
                },
                tag="operations",
            )
        },
        "/metrics": {
            "get": op(
                "Prometheus metrics (health-scope token)", {"200": ok(STR, "text/plain"), **ERR}, tag="operations"
            )
        },
        "/check/ack": {
            "get": op(
                "The page a check message links to: one button, no script; records nothing",
                {
                    "200": ok(STR, "text/html", headers={"Referrer-Policy": {"schema": {"const": "no-referrer"}}}),
                    "400": ok(STR, "text/html", "no usable token in the link (nothing to acknowledge)"),
                },
                params=[q("token", STR, "the single-use acknowledgement token")],
                security=False,
                tag="checks",
            ),
            "post": op(
                "Use the token once: records the acknowledgement (signed check op). An unknown, used or "
                "expired token gets one answer (400), whichever it was; rate-limited per client",
                {
                    "200": ok(STR, "text/html"),
                    "400": ok(STR, "text/html", "refused"),
                    "429": ok(STR, "text/html", "rate-limited"),
                    "503": ok(STR, "text/html", "not recorded now"),
                },
                security=False,
                tag="checks",
                body={
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object", "properties": {"token": STR}}
                        }
                    },
                },
            ),
        },
        "/v1/checks/waiting": {
            "get": op(
                "Checks of the signed-in PoC's own entry waiting for an acknowledgement",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "required": ["key", "waiting"],
                            "properties": {
                                "key": STR,
                                "waiting": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "channel": STR,
                                            "label": STR,
                                            "campaign": {"type": ["string", "null"]},
                                            "deadline_ms": {"type": "integer"},
                                            "by": STR,
                                        },
                                    },
                                },
                            },
                        }
                    ),
                    **ERR,
                },
                tag="checks",
            )
        },
        "/v1/checks/acknowledge": {
            "post": op(
                "Acknowledge a waiting check of one's own entry from the PoC page",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "properties": {
                                "acknowledged": {"type": "boolean"},
                                "key": STR,
                                "response_seconds": {"type": "integer"},
                            },
                        }
                    ),
                    "409": PROBLEM,
                    "503": PROBLEM,
                    **ERR,
                },
                tag="checks",
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "required": ["channel"], "properties": {"channel": STR}}
                        }
                    },
                },
            )
        },
        "/v1/checks/report": {
            "post": op(
                "Report that an entry is wrong: mailed to the secretariat of its origin",
                {
                    "202": ok(
                        {"type": "object", "properties": {"reported": {"type": "boolean"}, "key": STR, "to": STR}}
                    ),
                    "404": PROBLEM,
                    **ERR,
                },
                tag="checks",
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["key", "text"],
                                "properties": {
                                    "key": STR,
                                    "text": {"type": "string", "description": "capped at 2000 characters"},
                                },
                            }
                        }
                    },
                },
            )
        },
        "/v1/checks": {
            "get": op(
                "Communication-check campaigns, overdue entries and reports per origin (operator; no contact data)",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "required": [
                                "node",
                                "campaigns",
                                "checked_by",
                                "overdue_by_origin",
                                "reports_by_origin",
                                "mail",
                            ],
                            "properties": {
                                "node": STR,
                                "campaigns": {"type": "array", "items": {"type": "object"}},
                                "checked_by": {"type": "object"},
                                "overdue_by_origin": {"type": "object"},
                                "reports_by_origin": {"type": "object"},
                                "federation_campaigns": {"type": "object"},
                                "mail": {"type": "object"},
                            },
                        }
                    ),
                    **ERR,
                },
                tag="operations",
            )
        },
        "/v1/node": {
            "get": op(
                "This node's id and manifest version",
                {
                    "200": ok(
                        {
                            "type": "object",
                            "required": ["node", "manifest"],
                            "properties": {"node": STR, "manifest": {"type": "integer"}, "protocol": STR},
                        }
                    )
                },
                security=False,
                tag="federation",
            )
        },
        "/v1/manifest": {
            "get": op(
                "The newest manifest envelope (public keys only)",
                {"200": ok({"type": "object"})},
                security=False,
                tag="federation",
            )
        },
        "/v1/manifest/{n}": {
            "get": op(
                "Manifest version n",
                {"200": ok({"type": "object"}), "400": PROBLEM, "404": PROBLEM},
                params=[{"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}}],
                security=False,
                tag="federation",
            )
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (ES256)"},
            "session": {"type": "apiKey", "in": "cookie", "name": "pocsync_session"},
        },
        "schemas": {
            "Entry": entry,
            "Provenance": provenance,
            "Listed": listed,
            "Template": template,
            "Problem": {
                "type": "object",
                "required": ["title", "status"],
                "properties": {"type": STR, "title": STR, "status": {"type": "integer"}, "detail": STR, "reason": STR},
            },
        },
        "responses": {
            "Problem": {
                "description": "problem details (RFC 9457)",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
        },
    },
}

if __name__ == "__main__":
    (Path(__file__).parent / "openapi.json").write_text(json.dumps(doc, indent=2) + "\n")
