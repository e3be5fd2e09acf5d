"""One retained publish on the broker, seen back (``pocsync manifest publish``; PROTOCOL.md §13.1).

aiomqtt 2.x, MQTT v5, QoS 1, as the node's own link (mqtt.py), with its topics: a short-lived client
that subscribes to the topic, lets the caller judge what the broker retains, publishes retained, and
waits until the broker passes the message back (a broker acknowledges a publish its ACL dropped just the
same).  Every failure is a PocsyncError with a reason (``broker_refused``, ``broker_tls_error``,
``broker_unreachable``), never an aiomqtt or socket error.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiomqtt

from pocsync.errors import ConfigError, PocsyncError
from pocsync.transport.mqtt import MANIFEST as MANIFEST  # the retained manifest's topic, re-exported


@dataclass(frozen=True)
class Broker:
    """Where and how to connect: ``mqtt://host[:port]`` or ``mqtts://host[:port]``, as ``[mqtt] url``."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    username: str | None = None
    password: str | None = None

    @property
    def where(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def broker(
    url: str, *, username: str | None = None, password: str | None = None, ca_file: Path | None = None
) -> Broker:
    """The broker of ``url`` (ConfigError when it is not ``mqtt[s]://host[:port]``); the user name defaults
    to the URL's; ``mqtts`` verifies the broker's certificate against ``ca_file`` or the system's CAs."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError:
        u, port = None, None
    if u is None or u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise ConfigError("must be mqtt://host:port or mqtts://host:port", reason="bad_broker_url")
    tls = None
    if u.scheme == "mqtts":
        try:
            tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise PocsyncError(f"cannot use the CA file {ca_file}: {exc}", reason="broker_tls_error") from None
    return Broker(
        host=u.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=username or u.username or None,
        password=password,
    )


async def publish_retained(
    b: Broker,
    topic: str,
    payload: bytes,
    *,
    timeout: float = 15.0,
    check_retained: Callable[[bytes | None], None] | None = None,
) -> bool:
    """Publish ``payload`` retained at QoS 1 on ``topic``; True once the broker passed it back, False when it
    did not within ``timeout`` (the account may not publish or read the topic).

    ``check_retained`` gets what the broker retains on ``topic`` (None: nothing) before the publish, and
    raises to publish nothing.
    """
    try:
        return await asyncio.wait_for(_publish(b, topic, payload, timeout, check_retained), timeout * 3)
    except aiomqtt.MqttCodeError as exc:
        raise PocsyncError(f"{b.where} refused: {exc}", reason="broker_refused") from None
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        raise _unreachable(b, exc) from None


async def _publish(
    b: Broker, topic: str, payload: bytes, timeout: float, check_retained: Callable[[bytes | None], None] | None
) -> bool:
    async with aiomqtt.Client(
        b.host,
        b.port,
        username=b.username,
        password=b.password,
        tls_context=b.tls,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=timeout,
    ) as client:
        await client.subscribe(topic, qos=1, timeout=timeout)
        held = await _first(client, min(timeout, 2.0), lambda m: m.retain)  # sent at once on subscribing
        if check_retained is not None:
            check_retained(held)
        await client.publish(topic, payload, qos=1, retain=True, timeout=timeout)
        return await _first(client, timeout, lambda m: m.payload == payload) is not None


async def _first(client: aiomqtt.Client, timeout: float, match: Callable[[aiomqtt.Message], bool]) -> bytes | None:
    """The payload of the first message that ``match``es within ``timeout``; None when none came."""

    async def first() -> bytes | None:
        async for msg in client.messages:
            if match(msg) and isinstance(msg.payload, (bytes, bytearray)):
                return bytes(msg.payload)
        return None

    try:
        return await asyncio.wait_for(first(), timeout)
    except TimeoutError:
        return None


def _unreachable(b: Broker, exc: BaseException) -> PocsyncError:
    """A connection that failed: a TLS failure (wrong port, unknown CA) named as such, else unreachable."""
    causes = [exc]
    while (nxt := causes[-1].__cause__ or causes[-1].__context__) is not None and len(causes) < 20:
        causes.append(nxt)
    tls_failed = any(isinstance(c, ssl.SSLError) for c in causes) or (
        b.tls is not None and any(isinstance(c, (ConnectionResetError, ConnectionAbortedError)) for c in causes)
    )
    if tls_failed:
        return PocsyncError(
            f"TLS with {b.where} failed ({exc or type(exc).__name__}): is it a TLS port, and is its "
            "certificate signed by the CA given?",
            reason="broker_tls_error",
        )
    detail = str(exc) or ("no answer within the timeout" if isinstance(exc, TimeoutError) else type(exc).__name__)
    return PocsyncError(f"cannot publish to {b.where}: {detail}", reason="broker_unreachable")
