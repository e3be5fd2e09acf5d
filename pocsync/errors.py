"""The one exception tree of pocsync.

Every error carries a machine-readable ``reason`` (a short snake_case code that
scripts, metrics and the quarantine table use) and a human message that says
what happened and, where it can, what to do.  Third-party errors are wrapped at
the edge into one of these.
"""

from __future__ import annotations

from typing import Any


class PocsyncError(Exception):
    """Root of every error pocsync raises on purpose."""

    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.detail = detail

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.reason

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason, "message": self.message}
        out.update({k: v for k, v in self.detail.items() if v is not None})
        return out


# --- configuration, files, keys -------------------------------------------------
class ConfigError(PocsyncError):
    reason = "bad_config"


class KeyFileError(PocsyncError):
    reason = "bad_key_file"


# --- wire-level problems (quarantine material) ---------------------------------
class ProtocolError(PocsyncError):
    """Bytes from the wire that do not conform to PROTOCOL.md."""

    reason = "protocol_error"


class OversizeError(ProtocolError):
    reason = "oversize"


class MalformedJSON(ProtocolError):
    """Not UTF-8, not JSON, a duplicate key, a float, or an integer out of range."""

    reason = "malformed_json"


class EnvelopeError(ProtocolError):
    reason = "bad_envelope"


class SignatureError(ProtocolError):
    """No valid signature: bad signature, unknown key, key outside its seq range."""

    reason = "bad_signature"


class ChangeSetError(ProtocolError):
    reason = "bad_changeset"


class SealError(ProtocolError):
    """A sealed blob that cannot be opened (counted and dropped, never quarantined)."""

    reason = "cannot_open"


# --- content rules ----------------------------------------------------------------
class EntryError(PocsyncError):
    """An entry that breaks the rules of PROTOCOL.md §7.1. ``field`` names the culprit."""

    reason = "invalid_entry"


class ManifestError(PocsyncError):
    reason = "bad_manifest"


class ManifestThresholdError(ManifestError):
    reason = "threshold_not_met"


class ManifestRollbackError(ManifestError):
    reason = "manifest_rollback"


class ManifestExpiredError(ManifestError):
    reason = "manifest_expired"


class ManifestGapError(ManifestError):
    reason = "manifest_gap"


# --- local state ------------------------------------------------------------------
class StoreError(PocsyncError):
    reason = "store_error"


class NotInitialised(StoreError):
    reason = "not_initialised"


class SigningRefused(StoreError):
    """The node must not sign: its log may be behind what it has signed before."""

    reason = "signing_refused"


class NoManifest(StoreError):
    reason = "no_manifest"


class MailError(PocsyncError):
    """A mail that could not be built (bad address, header injection) or sent (relay, TLS, login, refusal)."""

    reason = "mail_failed"


class Parked(PocsyncError):
    """Not an error of the sender: the change-set waits (gap, unknown manifest, clock skew)."""

    reason = "parked"


# --- sources (adapters) -------------------------------------------------------------
class SourceError(PocsyncError):
    """A source an adapter cannot read at all (wrong shape, encoding, header), or a bad mapping file."""

    reason = "bad_source"


# --- the network (aiohttp, OSError, timeouts, aiomqtt wrapped where they enter) -----------------
class TransportError(PocsyncError):
    """A peer or broker that could not be reached, or broke off (refused, reset, timed out, TLS)."""

    reason = "transport_error"


class FetchError(TransportError):
    """An HTTP request to a peer that got no complete answer (``transport.http``)."""

    reason = "fetch_failed"


class BrokerError(TransportError):
    """The MQTT broker is not connected or refused a publish (``transport.mqtt``)."""

    reason = "mqtt_error"
