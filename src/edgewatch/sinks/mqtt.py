"""Stats and events over MQTT (paho-mqtt), with nothing lost while the broker is away.

Topics under the prefix (docs/mqtt.md): `availability` (retained, `online` / `offline`, the last will),
`<camera>/stats` (retained), `<camera>/events` (QoS 1, every event), `<camera>/<label>/count`
(retained, unique objects so far), and with Home Assistant discovery `<camera>/incidents/<rule>`
(retained `ON` / `OFF`).

Events go through an on-disk outbox first and leave it only when the broker acknowledged them, in
order: an outage, or edgewatch being killed, delays them but loses none. A message acknowledged just
before a crash may come again after the restart (at least once); each carries a `message_id` to drop
the copy by. The outbox keeps a queue per broker (host, port, prefix): a run sends only its own
broker's, and says at the start what waits for others. Stats are not queued: the retained latest is
what matters, and it is sent on reconnect.
"""

from __future__ import annotations

import json
import logging
import shlex
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edgewatch.config import MqttConfig, StorageConfig
from edgewatch.pipeline.stage import Stage
from edgewatch.sinks.outbox import UNKNOWN, Broker, Outbox

log = logging.getLogger(__name__)

ACK_TIMEOUT = 10.0  # seconds to wait for a PUBACK before looking at the connection again


class MqttPublisher:
    """A sink that publishes a run's events and stats.

    Args:
        config: the `mqtt:` settings (host, port, prefix, credentials, TLS, discovery).
        outbox: the on-disk queue of events not yet acknowledged (`<storage.path>/mqtt-outbox.sqlite`).
        rules: camera → its rule names, for Home Assistant's binary sensors.
        host, port: where to connect, when not the config's (the embedded broker's address). The
            outbox queue is the config's broker's: `embedded` is one queue whatever port it gets.

    Example:
        >>> publisher = MqttPublisher(MqttConfig(host="127.0.0.1"), Outbox(":memory:"))  # doctest: +SKIP
        >>> publisher.start()  # doctest: +SKIP
    """

    def __init__(
        self,
        config: MqttConfig,
        outbox: Outbox,
        rules: Mapping[str, Sequence[str]] | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.rules = {camera: list(names) for camera, names in (rules or {}).items()}
        self.host = host or config.host
        self.port = port or config.port
        self.prefix = config.prefix.rstrip("/")
        #: whose queue in the outbox this run fills and sends
        self.broker = Broker.named(config.host, self.port, self.prefix)
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._stats: dict[str, dict[str, Any]] = {}  # camera → latest stats, re-sent on reconnect
        self._discovered: set[str] = set()
        self._lock = threading.Lock()
        self._refused: str | None = None
        self._ever_connected = False
        self._unreachable_said = False
        self._unanswered: tuple[int, mqtt.MQTTMessageInfo] | None = None  # sent, connection lost before its ack
        self._client = self._make_client()
        self._sender = Stage("mqtt-sender", self._batches(), self._send, None, self._stop)

    def _make_client(self) -> mqtt.Client:
        config = self.config
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=config.client_id or f"edgewatch-{socket.gethostname()}",
            protocol=mqtt.MQTTv311,
        )
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.tls:
            client.tls_set(ca_certs=config.ca, certfile=config.cert, keyfile=config.key, cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(self._topic("availability"), "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        return client

    def _topic(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    # --- connection -------------------------------------------------------------------------------

    def start(self) -> MqttPublisher:
        """Connect in the background (a broker that is down now is retried) and start sending."""
        self._say_waiting()
        self._client.connect_async(self.host, self.port, keepalive=self.config.keepalive)
        self._client.loop_start()
        self._sender.start()
        return self

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if reason.is_failure:
            if self._refused != str(reason):
                log.error(
                    "MQTT broker %s:%d refused the connection: %s (check mqtt: username / password); events "
                    "are kept and sent once it accepts",
                    self.host, self.port, reason,
                )  # fmt: skip
            self._refused = str(reason)
            return
        self._refused = None
        log.info("MQTT connected to %s:%d", self.host, self.port)
        client.publish(self._topic("availability"), "online", qos=1, retain=True)
        with self._lock:
            latest = list(self._stats.values())
            self._discovered.clear()
        for stats in latest:
            self._publish_stats(stats)
        self._connected.set()
        self._ever_connected = True
        self._unreachable_said = False
        self.outbox.arrived.set()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        if not self._unreachable_said:  # once per outage: paho retries every few seconds
            log.warning(
                "cannot reach the MQTT broker %s:%d%s; events wait on disk and are sent once it answers",
                self.host, self.port, " (TLS: is mqtt: ca the broker's CA?)" if self.config.tls else "",
            )  # fmt: skip
            self._unreachable_said = True

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self._connected.is_set() and not self._stop.is_set():
            log.warning("MQTT connection to %s:%d lost (%s); events wait on disk", self.host, self.port, reason)
        self._connected.clear()

    def _say_waiting(self) -> None:
        """One line on what earlier runs left queued: this broker's is sent first, the others' never.

        For example: `12 MQTT events wait for mqtt.example:1883 from earlier runs, not sent to
        127.0.0.1:1883; `edgewatch outbox --drop mqtt.example:1883` drops them`.
        """
        waiting = self.outbox.waiting()
        own = waiting.pop(self.broker, 0)
        first = f"{own} MQTT events from an earlier run wait for {self.broker} and are sent first" if own else ""
        if not waiting:
            if first:
                log.info("%s", first)
            return
        (broker, count), *rest = waiting.items()
        others = [f"{count} MQTT events wait for {_name(broker)}", *(f"{n} for {_name(b)}" for b, n in rest)]
        storage = _storage_option(self.outbox)
        if len(waiting) == 1:
            drop = f"`edgewatch outbox{storage} --drop {next(iter(waiting))}` drops them"
        else:
            drop = f"`edgewatch outbox{storage}` lists them, `edgewatch outbox{storage} --drop BROKER` drops one queue"
        log.warning(
            "%s%s from earlier runs, not sent to %s; %s",
            f"{first}; " if first else "", ", ".join(others), self.broker, drop,
        )  # fmt: skip

    # --- the sink ---------------------------------------------------------------------------------

    def write(self, result: object) -> None:
        pass  # frames are not published

    def event(self, event: dict[str, Any]) -> None:
        self.outbox.put(self.broker, self._topic(event["camera"], "events"), json.dumps(event).encode())
        if event["type"] == "incident" and self.config.discovery and event["phase"] in ("start", "end"):
            state = "ON" if event["phase"] == "start" else "OFF"
            self._client.publish(self._topic(event["camera"], "incidents", event["rule"]), state, qos=1, retain=True)

    def stats(self, stats: dict[str, Any]) -> None:
        with self._lock:
            self._stats[stats["camera"]] = stats
        if self._connected.is_set():
            self._publish_stats(stats)

    def _publish_stats(self, stats: dict[str, Any]) -> None:
        camera = stats["camera"]
        self._client.publish(self._topic(camera, "stats"), json.dumps(stats), qos=1, retain=True)
        for label, count in stats["unique"].items():
            self._client.publish(self._topic(camera, label, "count"), str(count), qos=1, retain=True)
        if self.config.discovery:
            self._announce(camera, stats)

    # --- the sender -------------------------------------------------------------------------------

    def _batches(self) -> Iterator[list[tuple[int, str, bytes]]]:
        """Waits for a connection and queued events; yields the oldest ones."""
        while not self._stop.is_set():
            if not self._connected.wait(0.2):
                continue
            batch = self.outbox.peek(self.broker, 100)
            if batch:
                yield batch
            else:
                self.outbox.arrived.wait(0.2)
                self.outbox.arrived.clear()

    def _send(self, batch: list[tuple[int, str, bytes]]) -> None:
        for seq, topic, payload in batch:
            unanswered = self._unanswered
            if unanswered is not None and unanswered[0] == seq:
                info = unanswered[1]  # paho re-sends it after a reconnect: wait for that, do not double it
            else:
                info = self._client.publish(topic, payload, qos=1)
            self._unanswered = None
            while not self._acknowledged(info):
                if self._stop.is_set():
                    return
                if not self._connected.is_set():
                    self._unanswered = (seq, info)
                    return  # the rest follows, in order, once the connection is back
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    return  # not taken by paho at all: published anew next time
            self.outbox.remove(seq)

    def _acknowledged(self, info: mqtt.MQTTMessageInfo) -> bool:
        try:
            info.wait_for_publish(ACK_TIMEOUT)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def pending(self) -> int:
        """This run's broker's events not yet acknowledged by it."""
        return self.outbox.count(self.broker)

    def close(self, flush_timeout: float = 5.0) -> None:
        """Send what is queued for up to `flush_timeout` seconds, say `offline`, and disconnect; what
        could not be sent stays on disk for the next run."""
        deadline = time.monotonic() + flush_timeout
        while self._ever_connected and self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)  # a broker that was there may be back in a moment; one never seen, not
        self._stop.set()
        self._sender.join(ACK_TIMEOUT + 1)
        if self._connected.is_set():
            self._client.publish(self._topic("availability"), "offline", qos=1, retain=True).wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()
        left = self.pending()
        if left:
            log.warning(
                "%d MQTT events not delivered yet; they are kept and sent by the next run that names %s",
                left, self.broker,
            )  # fmt: skip
        self.outbox.close()

    # --- Home Assistant discovery -------------------------------------------------------------------

    def _announce(self, camera: str, stats: dict[str, Any]) -> None:
        """Discovery configs: a sensor per label count, a binary sensor per rule (once per connection)."""
        device = {"identifiers": [f"edgewatch_{self.prefix}"], "name": "edgewatch", "manufacturer": "edgewatch"}
        common = {"availability_topic": self._topic("availability"), "device": device}
        for label in stats["unique"]:
            key = f"edgewatch_{camera}_{label}_count"
            if key not in self._discovered:
                config = {"name": f"{camera} {label} count", "unique_id": key, "state_class": "total_increasing",
                          "state_topic": self._topic(camera, label, "count"), **common}  # fmt: skip
                self._publish_discovery("sensor", key, config)
        for rule in self.rules.get(camera, []):
            key = f"edgewatch_{camera}_{rule}"
            if key not in self._discovered:
                config = {"name": f"{camera} {rule}", "unique_id": key, "payload_on": "ON", "payload_off": "OFF",
                          "state_topic": self._topic(camera, "incidents", rule), **common}  # fmt: skip
                self._publish_discovery("binary_sensor", key, config)

    def _publish_discovery(self, component: str, key: str, config: dict[str, Any]) -> None:
        topic = f"{self.config.discovery_prefix}/{component}/{key}/config"
        self._client.publish(topic, json.dumps(config), qos=1, retain=True)
        self._discovered.add(key)


def _name(broker: Broker) -> str:
    if broker == UNKNOWN:
        return "an unknown broker (queued before edgewatch kept a queue per broker)"
    return str(broker)


def _storage_option(outbox: Outbox) -> str:
    """` --storage PATH` when the outbox is not in the default storage folder, for a command to paste."""
    folder = Path(outbox.path).parent
    if outbox.path == ":memory:" or folder.resolve() == Path(StorageConfig().path).resolve():
        return ""
    return f" --storage {shlex.quote(str(folder))}"
