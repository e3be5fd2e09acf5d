"""Private keys on disk: PEM PKCS#8 files with mode 0600 (encrypted when a passphrase is given).

This is the only module that reads or writes private keys.  It refuses key files
that others can read, so a key copied carelessly is noticed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pocsync.errors import KeyFileError

K = TypeVar("K")


def private_dir(path: Path) -> Path:
    """Make ``path`` (and any missing parent) a folder only its owner can enter: 0700, whatever the
    umask (issue 11, case 12).  An existing folder that others can write to or read is refused, so a
    key never lands where another local user could replace it or ``root.pub`` next to it."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass
        os.chmod(d, 0o700)  # mkdir's mode is masked by the umask, never widened; chmod is not
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise KeyFileError(f"{path} is not a folder", reason="key_permissions")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        if st.st_uid != os.getuid():
            raise KeyFileError(
                f"folder {path} is open to others (mode {oct(st.st_mode & 0o777)}) and not yours;"
                " keep keys in a folder of your own",
                reason="key_permissions",
            )
        os.chmod(path, 0o700)
    return path


def write_private(
    path: Path,
    key: Ed25519PrivateKey | X25519PrivateKey | ec.EllipticCurvePrivateKey,
    *,
    passphrase: bytes | None = None,
) -> None:
    if path.exists():
        raise KeyFileError(f"{path} exists; refusing to overwrite a key", reason="key_exists")
    enc = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def write_public(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    os.chmod(path, 0o644)


def read_private(path: Path, kind: type[K], *, passphrase: bytes | None = None) -> K:
    """The private key in ``path``, which must be a ``kind``; KeyFileError naming the problem otherwise."""
    key = _load(path, passphrase)
    if not isinstance(key, kind):
        raise _not_a(path, key, kind)
    return key


def read_signing_key(path: Path, *, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 signing key (for callers that cannot pass the abstract key class as a ``type[K]``)."""
    key = _load(path, passphrase)
    if not isinstance(key, Ed25519PrivateKey):
        raise _not_a(path, key, Ed25519PrivateKey)
    return key


def read_sealing_key(path: Path) -> X25519PrivateKey:
    key = _load(path, None)
    if not isinstance(key, X25519PrivateKey):
        raise _not_a(path, key, X25519PrivateKey)
    return key


def read_token_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = _load(path, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise _not_a(path, key, ec.EllipticCurvePrivateKey)
    return key


def _not_a(path: Path, key: object, kind: type) -> KeyFileError:
    return KeyFileError(f"{path} holds a {type(key).__name__}, expected {kind.__name__}")


def _load(path: Path, passphrase: bytes | None) -> PrivateKeyTypes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} not found") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} is readable by others (mode {oct(st.st_mode & 0o777)}); run `chmod 600 {path}`",
            reason="key_permissions",
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except TypeError:
        raise KeyFileError(
            f"{path} is encrypted: give its passphrase (--passphrase-file)", reason="passphrase_needed"
        ) from None
    except ValueError:
        raise KeyFileError(f"{path} is not a readable PEM private key (or the passphrase is wrong)") from None
    return key


def read_passphrase(path: Path | None) -> bytes | None:
    if path is None:
        return None
    data = path.read_bytes().rstrip(b"\r\n")
    if not data:
        raise KeyFileError(f"passphrase file {path} is empty")
    return data
