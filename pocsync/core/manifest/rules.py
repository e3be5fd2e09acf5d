"""The trust rules of a manifest: root signatures, threshold and the install transition (PROTOCOL.md §6)."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pocsync.core import envelope as dsse
from pocsync.core import opkinds
from pocsync.core.manifest.model import Manifest, format_time
from pocsync.errors import (
    ManifestError,
    ManifestExpiredError,
    ManifestGapError,
    ManifestRollbackError,
    ManifestThresholdError,
)


def signed_by(m: Manifest, roots: dict[str, Ed25519PublicKey]) -> set[str]:
    return dsse.verified_keyids(m.envelope, roots)


def check_self_signed(m: Manifest) -> None:
    good = signed_by(m, m.roots)
    if len(good) < m.threshold:
        raise ManifestThresholdError(
            f"manifest v{m.version} carries {len(good)} valid root signature(s); its threshold is {m.threshold}"
        )


def check_install(
    current: Manifest | None, new: Manifest, *, now_s: int, supported: Iterable[str] | None = None
) -> None:
    """Raise unless ``new`` may replace ``current`` (PROTOCOL.md §6 Installing).

    ``supported`` are the features of this software (default :data:`opkinds.FEATURES`): a
    manifest naming any other feature is refused (``unsupported_feature``), so that no node
    runs a federation whose rules it does not implement.
    """
    lacking = sorted(new.features - set(opkinds.FEATURES if supported is None else supported))
    if lacking:
        raise ManifestError(
            f"manifest v{new.version} enables feature(s) {', '.join(lacking)} that this pocsync "
            f"does not implement; upgrade pocsync before installing it",
            reason="unsupported_feature",
            features=lacking,
        )
    if new.is_expired(now_s):
        raise ManifestExpiredError(f"manifest v{new.version} expired at {format_time(new.expires)}")
    if current is not None:
        if new.version <= current.version:
            if new.version == current.version and new.envelope.payload == current.envelope.payload:
                raise ManifestRollbackError(f"manifest v{new.version} is already installed", reason="already_installed")
            raise ManifestRollbackError(
                f"manifest v{new.version} is not newer than the installed v{current.version}; versions never go back"
            )
        if new.version != current.version + 1:
            raise ManifestGapError(
                f"manifest v{new.version} skips versions: install v{current.version + 1} … v{new.version - 1} first",
                missing=list(range(current.version + 1, new.version)),
            )
        good_old = signed_by(new, current.roots)
        if len(good_old) < current.threshold:
            raise ManifestThresholdError(
                f"manifest v{new.version} has {len(good_old)} valid signature(s) by the roots of v{current.version};"
                f" {current.threshold} needed"
            )
    check_self_signed(new)
