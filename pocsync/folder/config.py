"""``sync.toml``: a node's configuration, read with tomllib into frozen dataclasses.

Every limit has a name here.  Relative paths are relative to the file's folder.
Unknown keys are an error (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pocsync.core.replica import Limits
from pocsync.errors import ConfigError, MailError
from pocsync.mail import SmtpSettings, check_address
from pocsync.mail import parse_settings as parse_smtp


@dataclass(frozen=True)
class NodeConfig:
    id: str
    organisation: str = ""
    store: str = "store.sqlite"
    keys_dir: str = "keys"
    token_kid: str = ""
    contact_email: str = ""  # the secretariat's own address: reports and reminders go there


_CORE_LIMITS = Limits()  # the one owner of the limits' defaults is the core (pocsync.core.replica.Limits)


@dataclass(frozen=True)
class LimitsConfig:
    """sync.toml ``[limits]``: the core's :class:`Limits`, with the clock skew in seconds; defaults from the core."""

    max_envelope_bytes: int = _CORE_LIMITS.max_envelope_bytes
    max_clock_skew_seconds: int = _CORE_LIMITS.max_clock_skew_ms // 1000
    max_parked_per_origin: int = _CORE_LIMITS.max_parked_per_origin
    max_parked: int = _CORE_LIMITS.max_parked
    max_parked_bytes: int = _CORE_LIMITS.max_parked_bytes

    def core(self) -> Limits:
        return Limits(
            max_envelope_bytes=self.max_envelope_bytes,
            max_clock_skew_ms=self.max_clock_skew_seconds * 1000,
            max_parked_per_origin=self.max_parked_per_origin,
            max_parked=self.max_parked,
            max_parked_bytes=self.max_parked_bytes,
        )


@dataclass(frozen=True)
class ApiConfig:
    listen: str = "127.0.0.1:8700"
    public_url: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    behind_tls_proxy: bool = False
    token_requests_per_second: int = 10
    max_pending_requests: int = 64

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        try:
            return host.strip("[]") or "127.0.0.1", int(port)
        except ValueError:
            raise ConfigError(f"[api] listen {self.listen!r} must be HOST:PORT") from None


@dataclass(frozen=True)
class MqttConfig:
    url: str = ""
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    session_expiry_seconds: int = 86_400
    keepalive_seconds: int = 30
    reconnect_max_seconds: int = 30
    max_inflight_messages: int = 20
    max_queued_incoming_messages: int = 1000


@dataclass(frozen=True)
class SyncConfig:
    peers: tuple[str, ...] = ()
    discover_peers: bool = True
    pull_interval_seconds: int = 30
    publish_poll_ms: int = 250
    max_batch: int = 500
    max_batch_bytes: int = 8 * 1024 * 1024
    peer_requests_per_second: int = 20
    request_max_age_seconds: int = 60
    http_timeout_seconds: int = 15
    ca_file: str = ""
    own_head_max_age_seconds: int = 600


@dataclass(frozen=True)
class HeldConfig:
    """``[held]``: this node's part in held contact changes (PROTOCOL.md §16, ADR 29)."""

    notify: str = "auto"  # auto: a node of role "un" mails notices and signs notice/release; yes; no
    interval_seconds: int = 10  # how often the notifier looks for held changes to notify or release
    object_requests_per_minute: int = 30  # objection-link requests per client address


@dataclass(frozen=True)
class LogConfig:
    format: str = "text"
    level: str = "INFO"


@dataclass(frozen=True)
class SourceConfig:
    """One ``[[sources]]`` table: a directory the daemon re-imports on its interval (docs/adapters/)."""

    name: str
    adapter: str
    source: str
    mapping: str = ""
    interval_seconds: int = 300
    sync_deletes: bool = False
    strict: bool = False


@dataclass(frozen=True)
class ChecksConfig:
    """``[checks]``: mail campaigns of communication checks run by the daemon (issue 15, ADR 26)."""

    every_days: int = 0  # a campaign when none ran for this many days (0: only `check start`)
    deadline_hours: int = 48  # the scheduled campaign's deadline
    kinds: tuple[str, ...] = ()  # the scheduled campaign's kinds (empty: both)
    window_days: int = 30  # a channel checked by any node within this window is not mailed again
    send_batch: int = 20  # messages per change-set of `sent` results
    reminder_days: int = 7  # the overdue reminder to contact_email, at most this often
    ack_requests_per_second: int = 2  # acknowledgement and report requests per client address


@dataclass(frozen=True)
class Config:
    path: Path
    node: NodeConfig
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    log: LogConfig = field(default_factory=LogConfig)
    sources: tuple[SourceConfig, ...] = ()
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    smtp: SmtpSettings | None = None  # [smtp]: the relay outgoing mail goes through (pocsync/mail.py)
    held: HeldConfig = field(default_factory=HeldConfig)

    @property
    def contact_email(self) -> str | None:
        return self.node.contact_email or None

    @property
    def base(self) -> Path:
        return self.path.parent

    def resolve(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else self.base / q

    @property
    def store_path(self) -> Path:
        return self.resolve(self.node.store)

    @property
    def keys_path(self) -> Path:
        return self.resolve(self.node.keys_dir)


def _section(cls: type, raw: Any, name: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(sorted(unknown))}")
    for k, v in raw.items():
        want = str(known[k].type)
        if (
            (want == "int" and (not isinstance(v, int) or isinstance(v, bool)))
            or (want == "str" and not isinstance(v, str))
            or (want == "bool" and not isinstance(v, bool))
            or (want.startswith("tuple") and not (isinstance(v, list) and all(isinstance(x, str) for x in v)))
        ):
            raise ConfigError(f"[{name}] {k} must be of type {want}")
        if want.startswith("tuple"):
            raw = {**raw, k: tuple(v)}
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ConfigError(f"[{name}]: {exc}") from None


def load(path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; create one with `pocsync init`") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = set(raw) - {"node", "limits", "api", "mqtt", "sync", "log", "sources", "checks", "smtp", "held"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s): {', '.join(sorted(unknown))}")
    if "node" not in raw:
        raise ConfigError(f"{path}: missing [node] section")
    cfg = Config(
        path=path.resolve(),
        node=_section(NodeConfig, raw["node"], "node"),
        limits=_section(LimitsConfig, raw.get("limits"), "limits"),
        api=_section(ApiConfig, raw.get("api"), "api"),
        mqtt=_section(MqttConfig, raw.get("mqtt"), "mqtt"),
        sync=_section(SyncConfig, raw.get("sync"), "sync"),
        log=_section(LogConfig, raw.get("log"), "log"),
        sources=_sources(raw.get("sources")),
        checks=_section(ChecksConfig, raw.get("checks"), "checks"),
        smtp=parse_smtp(raw.get("smtp"), path.resolve().parent),
        held=_section(HeldConfig, raw.get("held"), "held"),
    )
    if cfg.held.notify not in ("auto", "yes", "no"):
        raise ConfigError(f'[held] notify must be "auto", "yes" or "no", not {cfg.held.notify!r}')
    if cfg.node.contact_email:
        try:
            check_address(cfg.node.contact_email)
        except MailError as exc:
            raise ConfigError(f"[node] contact_email: {exc.message}") from None
    bad_kinds = [k for k in cfg.checks.kinds if k not in ("diplomatic", "technical")]
    if bad_kinds:
        raise ConfigError(f"[checks] kinds: {', '.join(map(repr, bad_kinds))} not diplomatic or technical")
    for section, names in POSITIVE_LIMITS.items():
        for name in names:
            if getattr(getattr(cfg, section), name) < 1:
                raise ConfigError(f"[{section}] {name} must be at least 1")
    return cfg


# Limits that must be ≥ 1 (0 would mean "refuse everything" or, for aiomqtt, "unbounded").
POSITIVE_LIMITS = {
    "limits": ("max_envelope_bytes", "max_parked_per_origin", "max_parked", "max_parked_bytes"),
    "api": ("token_requests_per_second", "max_pending_requests"),
    "mqtt": ("max_inflight_messages", "max_queued_incoming_messages"),
    "held": ("interval_seconds", "object_requests_per_minute"),
    "sync": ("max_batch", "max_batch_bytes", "peer_requests_per_second"),
    "checks": ("deadline_hours", "window_days", "send_batch", "reminder_days", "ack_requests_per_second"),
}


def _sources(raw: Any) -> tuple[SourceConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("sources must be [[sources]] tables")
    out = tuple(_section(SourceConfig, s, f"sources {i + 1}") for i, s in enumerate(raw))
    names = [s.name for s in out]
    for s in out:
        if not s.name or names.count(s.name) > 1:
            raise ConfigError(f"[[sources]] name {s.name!r} must be non-empty and unique")
        if s.interval_seconds < 5:
            raise ConfigError(f"[[sources]] {s.name}: interval_seconds must be at least 5")
    return out


def _q(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "0:0:0:0:0:0:0:0", "*"})


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) → (host, port); ConfigError naming the problem."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(
            f"listen address {listen!r} must be HOST:PORT with a port from 1 to 65535", reason="bad_listen"
        )
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_url_problem(url: str) -> str | None:
    """Why other nodes could not use ``url`` to reach this node, or None when it is usable."""
    if not url:
        return "no public URL is set"
    try:
        u = urlsplit(url)
        u.port  # noqa: B018 — raises on a bad port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if u.scheme not in ("http", "https") or not u.hostname:
        return f"{url!r} must be https://HOST[:PORT] (http:// only on loopback)"
    if u.hostname in WILDCARD_HOSTS:
        return f"{url!r} names a wildcard address ({u.hostname}), which no other node can connect to"
    if u.scheme == "http" and not is_loopback(u.hostname):
        return f"{url!r} is plain HTTP off loopback: use https:// (TLS on the node or on a proxy in front)"
    if u.query or u.fragment or u.username:
        return f"{url!r} must not hold a query, a fragment or a user name"
    return None


def render(
    node_id: str,
    organisation: str,
    *,
    listen: str = "127.0.0.1:8700",
    mqtt_url: str = "",
    mqtt_password_file: str = "",
    peers: tuple[str, ...] = (),
    public_url: str = "",
    tls_cert: str = "",
    tls_key: str = "",
    behind_tls_proxy: bool = False,
    peer_ca_file: str = "",
) -> str:
    """The sync.toml that ``pocsync init`` writes."""
    host, port = parse_listen(listen)
    if not public_url:
        shown = f"[{host}]" if ":" in host else (host or "127.0.0.1")
        public_url = f"{'https' if tls_cert else 'http'}://{shown}:{port}"
    peer_list = ", ".join(_q(p) for p in peers)
    return f'''# pocsync node configuration (see sync.toml.example for every key).
[node]
id = "{node_id}"
organisation = {_q(organisation)}
store = "store.sqlite"
keys_dir = "keys"
token_kid = "{node_id}:t1"

[limits]
max_envelope_bytes = 262144
max_clock_skew_seconds = 300

[api]
listen = {_q(listen)}
public_url = {_q(public_url)}
tls_cert = {_q(tls_cert)}
tls_key = {_q(tls_key)}
behind_tls_proxy = {"true" if behind_tls_proxy else "false"}

[mqtt]
url = {_q(mqtt_url)}
password_file = {_q(mqtt_password_file)}

[sync]
peers = [{peer_list}]
pull_interval_seconds = 30
ca_file = {_q(peer_ca_file)}
'''
