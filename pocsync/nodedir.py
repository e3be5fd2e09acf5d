"""A node's data folder: ``sync.toml``, ``store.sqlite`` and ``keys/`` (DESIGN §5, §6).

``keys/signing-<name>.key`` (Ed25519), ``keys/sealing.key`` (X25519) and
``keys/token.key`` (ES256), all mode 0600.  The signing key used for a seq is the
one the manifest names for it, so a rotation needs no config change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pocsync import config as cfgmod
from pocsync import keyfiles
from pocsync.core.keys import ed25519_public_b64, es256_public_jwk, x25519_public_b64
from pocsync.core.manifest import NODE_ID_RE
from pocsync.errors import ConfigError, KeyFileError, SigningRefused
from pocsync.store import Store

FIRST_KEY = "k1"


@dataclass
class NodeDir:
    config: cfgmod.Config

    @classmethod
    def init(cls, data: Path, *, node_id: str, organisation: str = "", listen: str = "127.0.0.1:8700",
             mqtt_url: str = "", mqtt_password_file: str = "", peers: tuple[str, ...] = ()) -> "NodeDir":
        if not NODE_ID_RE.match(node_id):
            raise ConfigError(f"node id {node_id!r} must be lower-case letters, digits, '-' or '_' (max 32)")
        keyfiles.private_dir(data)  # holds keys/: 0700 whatever the umask, parents created 0700 too
        toml = data / "sync.toml"
        if toml.exists():
            raise ConfigError(f"{toml} exists: this folder already holds a node")
        keys = data / "keys"
        keyfiles.private_dir(keys)
        keyfiles.write_private(keys / f"signing-{FIRST_KEY}.key", Ed25519PrivateKey.generate())
        keyfiles.write_private(keys / "sealing.key", X25519PrivateKey.generate())
        keyfiles.write_private(keys / "token.key", ec.generate_private_key(ec.SECP256R1()))
        toml.write_text(cfgmod.render(node_id, organisation or node_id, listen=listen, mqtt_url=mqtt_url,
                                      mqtt_password_file=mqtt_password_file, peers=peers))
        nd = cls(cfgmod.load(toml))
        Store.create(nd.config.store_path, node_id=node_id, limits=nd.config.limits.core()).close()
        return nd

    @classmethod
    def open(cls, data: Path | None = None, *, config: Path | None = None) -> "NodeDir":
        if config is None:
            if data is None:
                raise ConfigError("give --data DIR (or --config FILE)")
            config = data / "sync.toml"
        return cls(cfgmod.load(config))

    @property
    def node_id(self) -> str:
        return self.config.node.id

    def store(self) -> Store:
        return Store.open(self.config.store_path, limits=self.config.limits.core())

    # keys
    def signing_key(self, name: str) -> Ed25519PrivateKey:
        return keyfiles.read_private(self.config.keys_path / f"signing-{name}.key", Ed25519PrivateKey)

    def signing_key_names(self) -> list[str]:
        return sorted(p.name[len("signing-"):-len(".key")] for p in self.config.keys_path.glob("signing-*.key"))

    def new_signing_key(self, name: str) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        keyfiles.write_private(self.config.keys_path / f"signing-{name}.key", key)
        return key

    def sealing_key(self) -> X25519PrivateKey:
        return keyfiles.read_private(self.config.keys_path / "sealing.key", X25519PrivateKey)

    def token_key(self) -> ec.EllipticCurvePrivateKey:
        return keyfiles.read_private(self.config.keys_path / "token.key", ec.EllipticCurvePrivateKey)

    def key_for_next_edit(self, store: Store) -> Ed25519PrivateKey:
        """The private key the manifest designates for this node's next seq."""
        rep = store.replica()
        seq, _ = rep.next_position(self.node_id)
        k = rep.manifest.nodes[self.node_id].current_key(seq)
        if k is None:
            raise SigningRefused(f"manifest v{rep.manifest.version} allows no key of {self.node_id} for seq {seq}")
        try:
            return self.signing_key(k.name)
        except KeyFileError as exc:
            raise SigningRefused(f"the manifest wants key {k.name!r} for seq {seq}: {exc.message}") from None

    def node_info(self, *, key_name: str | None = None) -> dict[str, Any]:
        name = key_name or (self.signing_key_names() or [FIRST_KEY])[-1]
        return {
            "node": self.node_id,
            "organisation": self.config.node.organisation or self.node_id,
            "signing_key": {"name": name, "public": ed25519_public_b64(self.signing_key(name))},
            "sealing_key": x25519_public_b64(self.sealing_key()),
            "token_key": es256_public_jwk(self.token_key(), self.config.node.token_kid or f"{self.node_id}:t1"),
            "endpoints": {"http": self.config.api.public_url} if self.config.api.public_url else {},
        }
