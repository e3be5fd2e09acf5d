"""A node's data folder: ``sync.toml``, ``store.sqlite`` and ``keys/`` (docs/ARCHITECTURE.md §4).

``keys/signing-<name>.key`` (Ed25519), ``keys/sealing.key`` (X25519) and
``keys/token.key`` (ES256), all mode 0600.  The signing key used for a seq is the
one the manifest names for it, so a rotation needs no config change.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pocsync.core.keys import ed25519_public_b64, es256_public_jwk, x25519_public_b64
from pocsync.core.manifest import NODE_ID_RE
from pocsync.errors import ConfigError, KeyFileError, SigningRefused
from pocsync.folder import config as cfgmod
from pocsync.folder import keyfiles
from pocsync.store import Store

FIRST_KEY = "k1"


@dataclass
class NodeDir:
    config: cfgmod.Config

    @classmethod
    def init(
        cls,
        data: Path,
        *,
        node_id: str,
        organisation: str = "",
        listen: str = "127.0.0.1:8700",
        mqtt_url: str = "",
        mqtt_password_file: str = "",
        peers: tuple[str, ...] = (),
        public_url: str = "",
        tls_cert: str = "",
        tls_key: str = "",
        behind_tls_proxy: bool = False,
        peer_ca_file: str = "",
    ) -> NodeDir:
        if not NODE_ID_RE.match(node_id):
            raise ConfigError(f"node id {node_id!r} must be lower-case letters, digits, '-' or '_' (max 32)")
        check_setup(
            listen=listen,
            public_url=public_url,
            tls_cert=tls_cert,
            tls_key=tls_key,
            behind_tls_proxy=behind_tls_proxy,
            peers=peers,
            peer_ca_file=peer_ca_file,
        )
        keyfiles.private_dir(data)  # holds keys/: 0700 whatever the umask, parents created 0700 too
        toml = data / "sync.toml"
        if toml.exists():
            raise ConfigError(f"{toml} exists: this folder already holds a node")
        keys = data / "keys"
        keyfiles.private_dir(keys)
        keyfiles.write_private(keys / f"signing-{FIRST_KEY}.key", Ed25519PrivateKey.generate())
        keyfiles.write_private(keys / "sealing.key", X25519PrivateKey.generate())
        keyfiles.write_private(keys / "token.key", ec.generate_private_key(ec.SECP256R1()))

        def absolute(p: str | Path | None) -> str:  # relative to where init ran
            return str(Path(p).resolve()) if p else ""

        toml.write_text(
            cfgmod.render(
                node_id,
                organisation or node_id,
                listen=listen,
                mqtt_url=mqtt_url,
                mqtt_password_file=absolute(mqtt_password_file),
                peers=peers,
                public_url=public_url,
                tls_cert=absolute(tls_cert),
                tls_key=absolute(tls_key),
                behind_tls_proxy=behind_tls_proxy,
                peer_ca_file=absolute(peer_ca_file),
            )
        )
        nd = cls(cfgmod.load(toml))
        Store.create(nd.config.store_path, node_id=node_id, limits=nd.config.limits.core()).close()
        return nd

    @classmethod
    def open(cls, data: Path | None = None, *, config: Path | None = None) -> NodeDir:
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
        return keyfiles.read_signing_key(self.config.keys_path / f"signing-{name}.key")

    def signing_key_names(self) -> list[str]:
        return sorted(p.name[len("signing-") : -len(".key")] for p in self.config.keys_path.glob("signing-*.key"))

    def new_signing_key(self, name: str) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        keyfiles.write_private(self.config.keys_path / f"signing-{name}.key", key)
        return key

    def sealing_key(self) -> X25519PrivateKey:
        return keyfiles.read_sealing_key(self.config.keys_path / "sealing.key")

    def token_key(self) -> ec.EllipticCurvePrivateKey:
        return keyfiles.read_token_key(self.config.keys_path / "token.key")

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

    def peer_ssl(self) -> ssl.SSLContext:
        """TLS settings for requests to peers: the system's trust store, or ``[sync] ca_file``."""
        ca = self.config.sync.ca_file
        try:
            return ssl.create_default_context(cafile=str(self.config.resolve(ca)) if ca else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"[sync] ca_file {ca!r}: {exc}") from None

    def node_info(self, *, key_name: str | None = None) -> dict[str, Any]:
        problem = cfgmod.public_url_problem(self.config.api.public_url)
        if problem:
            raise ConfigError(
                f"[api] public_url in {self.config.path}: {problem}. Set the URL other nodes reach "
                "this node at (e.g. https://eu.example.org:8443) before sending node-info",
                reason="unusable_public_url",
            )
        name = key_name or (self.signing_key_names() or [FIRST_KEY])[-1]
        if name not in self.signing_key_names():
            raise KeyFileError(
                f"this node has no signing key {name!r} (it has: {', '.join(self.signing_key_names())})",
                reason="no_such_key",
            )
        return {
            "node": self.node_id,
            "organisation": self.config.node.organisation or self.node_id,
            "signing_key": {"name": name, "public": ed25519_public_b64(self.signing_key(name))},
            "sealing_key": x25519_public_b64(self.sealing_key()),
            "token_key": es256_public_jwk(self.token_key(), self.config.node.token_kid or f"{self.node_id}:t1"),
            "endpoints": {"http": self.config.api.public_url},
        }


def check_setup(
    *,
    listen: str,
    public_url: str,
    tls_cert: str,
    tls_key: str,
    behind_tls_proxy: bool,
    peers: tuple[str, ...],
    peer_ca_file: str,
) -> None:
    """Refuse, before anything is written, a set-up whose node could not be reached or would not start."""
    host, _port = cfgmod.parse_listen(listen)
    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("give both --tls-cert and --tls-key, or neither", reason="bad_tls")
    for flag, f in (("--tls-cert", tls_cert), ("--tls-key", tls_key), ("--peer-ca", peer_ca_file)):
        if f and not Path(f).is_file():
            raise ConfigError(f"{flag} {f}: no such file", reason="bad_tls")
    if tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(tls_cert, tls_key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"--tls-cert {tls_cert} and --tls-key {tls_key} do not load as a certificate chain "
                f"and its private key: {exc}",
                reason="bad_tls",
            ) from None
    if host in cfgmod.WILDCARD_HOSTS and not public_url:
        raise ConfigError(
            f"--listen {listen} is a wildcard address: give --public-url, the URL other nodes reach "
            "this node at (e.g. https://eu.example.org:8443)",
            reason="public_url_needed",
        )
    if not cfgmod.is_loopback(host) and not tls_cert and not behind_tls_proxy:
        raise ConfigError(
            f"--listen {listen} is off loopback: give --tls-cert and --tls-key (plain HTTP is refused "
            "off loopback), or --behind-tls-proxy when a TLS proxy sits in front",
            reason="bad_tls",
        )
    if public_url:
        problem = cfgmod.public_url_problem(public_url)
        if problem:
            raise ConfigError(f"--public-url: {problem}", reason="unusable_public_url")
        if tls_cert and not public_url.startswith("https://"):
            raise ConfigError("--public-url must be https:// when the node serves TLS", reason="unusable_public_url")
    for p in peers:
        problem = cfgmod.public_url_problem(p)
        if problem:
            raise ConfigError(f"--peer: {problem}", reason="bad_peer_url")
