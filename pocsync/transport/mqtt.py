"""MQTT push (PROTOCOL.md §13.1): aiomqtt 2.x, MQTT v5, QoS 1, persistent session.

Topics: ``pocsync/v1/cs/<origin>`` (sealed change-sets), ``pocsync/v1/head/<node>`` (retained signed
head vector), ``pocsync/v1/status/<node>`` (retained ``online``; last will ``offline``) and
``pocsync/v1/manifest`` (retained; only the operator account may publish it).  MQTT acknowledges
before the node commits, so it is never trusted for completeness: a gap or a head mismatch seen
here wakes the HTTP pull.

aiomqtt's errors are handled here: a lost connection is retried by :meth:`MqttLink.run` (and logged with its
reason); a failed publish is a :class:`pocsync.errors.BrokerError`, so callers catch ``PocsyncError`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as _Properties

from pocsync.core import changeset as csmod
from pocsync.core import heads as headsmod
from pocsync.core import manifest as mf
from pocsync.errors import BrokerError, ConfigError, ManifestGapError, ManifestRollbackError, PocsyncError, SealError
from pocsync.live.runtime import Runtime, event
from pocsync.transport.http import why

PREFIX = "pocsync/v1"
CS = PREFIX + "/cs/"
HEAD = PREFIX + "/head/"
STATUS = PREFIX + "/status/"
MANIFEST = PREFIX + "/manifest"
MAX_MESSAGE = 4 * 1024 * 1024
log = logging.getLogger("pocsync.mqtt")
#: paho's CONNECT properties (paho ships no type hints): ``Properties(PacketTypes.CONNECT)``
Properties: Callable[[int], Any] = _Properties


class MqttLink:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.client: aiomqtt.Client | None = None

    def _make_client(self) -> aiomqtt.Client:
        cfg = self.rt.cfg.mqtt
        u = urlparse(cfg.url)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ConfigError(f"[mqtt] url {cfg.url!r} must be mqtt://host:port or mqtts://host:port")
        password = None
        tls = None
        try:
            if cfg.password_file:
                password = self.rt.cfg.resolve(cfg.password_file).read_text().strip()
            if u.scheme == "mqtts":
                tls = ssl.create_default_context(cafile=str(self.rt.cfg.resolve(cfg.ca_file)) if cfg.ca_file else None)
        except OSError as exc:  # ssl.SSLError is an OSError too
            raise ConfigError(f"[mqtt] password_file or ca_file cannot be used: {why(exc)}") from exc
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = cfg.session_expiry_seconds
        return aiomqtt.Client(
            hostname=u.hostname,
            port=u.port or (8883 if tls else 1883),
            identifier=f"pocsync-{self.rt.me}",
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            keepalive=cfg.keepalive_seconds,
            username=cfg.username or u.username or None,
            password=password,
            tls_context=tls,
            # [mqtt] bounds: QoS 1 messages part way through their flow, and received messages waiting for
            # this node (beyond it aiomqtt discards them; the HTTP pull on the next gap or interval fetches them)
            max_inflight_messages=cfg.max_inflight_messages,
            max_queued_incoming_messages=cfg.max_queued_incoming_messages,
            will=aiomqtt.Will(topic=STATUS + self.rt.me, payload=b"offline", qos=1, retain=True),
        )

    async def run(self) -> None:
        """Connect, subscribe, handle messages; reconnect with jittered exponential backoff."""
        backoff = 0.5
        while True:
            try:
                async with self._make_client() as client:
                    self.client = client
                    backoff = 0.5
                    await client.publish(STATUS + self.rt.me, b"online", qos=1, retain=True)
                    await client.subscribe([(CS + "+", 1), (HEAD + "+", 1), (STATUS + "+", 1), (MANIFEST, 1)])
                    # connected means subscribed (SUBACK received): from now on the broker routes every
                    # change-set to this node (and queues it in the persistent session while away); a node
                    # reported connected before could miss what was published before its subscription
                    self.rt.mqtt_connected = True
                    self.rt.pull_now.set()  # repair whatever was missed while away
                    self.rt.publish_now.set()  # republish what was not published yet
                    self.rt.mqtt_connected_at = time.monotonic()  # delivery of the queue starts
                    try:
                        async for msg in client.messages:
                            await self.handle(str(msg.topic), bytes(msg.payload))
                    except asyncio.CancelledError:  # clean shutdown: say so (the will covers a crash)
                        with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                            await asyncio.wait_for(
                                client.publish(STATUS + self.rt.me, b"offline", qos=1, retain=True), 2
                            )
                        raise
            except aiomqtt.MqttError as exc:
                self.rt.counters["mqtt_reconnects"] += 1
                event("mqtt_down", "MQTT broker connection lost or refused: %s; retrying", why(exc), error=why(exc))
            finally:
                self.client = None
                self.rt.mqtt_connected = False
            await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, float(self.rt.cfg.mqtt.reconnect_max_seconds))

    async def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1; whatever aiomqtt or the socket raise becomes a BrokerError."""
        if self.client is None:
            raise BrokerError("not connected to the MQTT broker")
        try:
            await self.client.publish(topic, payload, qos=1, retain=retain)
        except (TimeoutError, aiomqtt.MqttError, OSError) as exc:
            raise BrokerError(f"MQTT publish on {topic}: {why(exc)}") from exc

    async def publish_changeset(self, envelope: bytes) -> None:
        rt = self.rt
        if self.client is None:
            raise BrokerError("not connected to the MQTT broker")
        m = await rt.manifest()
        topic = CS + rt.me
        await self._publish(topic, rt.seal_for(m, envelope, context=f"mqtt:{topic}"))
        rt.counters["mqtt_published"] += 1

    async def publish_head(self) -> None:
        if self.client is None:
            return
        await self._publish(HEAD + self.rt.me, await self.rt.head_vector(), retain=True)

    async def handle(self, topic: str, payload: bytes) -> None:
        rt = self.rt
        if len(payload) > MAX_MESSAGE:
            rt.counters["mqtt_dropped:oversize"] += 1
            return
        try:
            if topic.startswith(CS):
                origin = topic[len(CS) :]
                if origin == rt.me:
                    return
                try:
                    opened = rt.open(payload, context=f"mqtt:{topic}")
                except SealError:
                    rt.counters["sealed_dropped"] += 1
                    return
                if opened.sender != origin:
                    rt.counters["sealed_dropped"] += 1
                    return
                # The broker ACL lets an account publish on its own topic only; the inner origin must be
                # that topic's, or any account could speak for another node (issue 11, case 1).
                try:
                    _, inner, _ = csmod.peek_identity(opened.plaintext, max_bytes=rt.cfg.limits.max_envelope_bytes)
                except PocsyncError:
                    inner = origin  # not an envelope at all: the store keeps a bounded record of the refusal
                # an unreadable payload names no origin: the store refuses it and keeps a bounded record of why
                if inner is not None and inner != origin:
                    rt.counters["mqtt_rejected:wrong_origin_topic"] += 1
                    return
                rt.contact(origin, via="mqtt")
                await rt.receive(opened.plaintext, source="mqtt")
            elif topic.startswith(HEAD):
                await self._on_head(topic[len(HEAD) :], payload)
            elif topic.startswith(STATUS):
                node = topic[len(STATUS) :]
                if node in (await rt.manifest()).nodes:  # bounded: members only
                    rt.mqtt_status(node, payload)
            elif topic == MANIFEST:
                await self._on_manifest(payload)
        except PocsyncError as exc:
            rt.counters[f"mqtt_rejected:{exc.reason}"] += 1
        except (aiomqtt.MqttError, asyncio.CancelledError):
            raise
        except Exception as exc:
            rt.counters["mqtt_rejected:internal_error"] += 1
            log.warning(
                "MQTT message on %s refused by an unexpected %s (a parser that is not total: a bug)",
                topic[:200],
                type(exc).__name__,
            )

    async def _on_head(self, node: str, payload: bytes) -> None:
        rt = self.rt
        if node == rt.me or not payload:
            return
        hv = headsmod.verify(payload, await rt.manifest())
        if hv.node != node:
            rt.counters["mqtt_rejected:wrong_head_topic"] += 1
            return
        await rt.on_head_vector(hv, via="mqtt")

    async def _on_manifest(self, payload: bytes) -> None:
        rt = self.rt
        m = mf.parse(payload)
        current = await rt.manifest()
        if m.version <= current.version:
            return
        try:
            await rt.install_manifest(m, via="mqtt")
        except ManifestGapError:
            rt.pull_now.set()  # walk the missing versions over HTTP
        except ManifestRollbackError:
            pass
