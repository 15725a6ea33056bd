"""Stats and events over MQTT (paho-mqtt), with nothing lost while the broker is away, and as many
edgewatch instances on one broker as there are: each has its own client id, topics and Home Assistant ids.

Topics under `<prefix>/<instance>/` (docs/mqtt.md): `availability` (retained, `online` / `offline`, the
last will), `<camera>/stats` (retained), `<camera>/events` (QoS 1, every event), `<camera>/<label>/count`
(retained, unique objects so far), `<camera>/<label>/current` (retained, in view now),
`<camera>/zones/<zone>/current` and `<camera>/zones/<zone>/<label>/current` (retained, inside now), and
with Home Assistant discovery `<camera>/incidents/<rule>` (retained `ON` / `OFF`). Names in topics and ids
are slugs (sinks/slug.py); payloads keep the real names.

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
import secrets
import shlex
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as mqtt

from edgewatch import __version__
from edgewatch.config import MqttConfig, StorageConfig, default_instance
from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.stage import Stage
from edgewatch.sinks.files import write_whole
from edgewatch.sinks.outbox import UNKNOWN, Broker, Outbox
from edgewatch.sinks.slug import Slugs, instance_slug

try:
    import fcntl
except ImportError:  # Windows: no lock, a second run on one storage folder shares the id
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

ACK_TIMEOUT = 10.0  # seconds to wait for a PUBACK before looking at the connection again
#: the file under `storage.path` that keeps an instance's client id across its restarts
CLIENT_ID_FILE = "mqtt-client-id"
#: a camera's own topic levels, which no label may take: `<camera>/<label>/count` beside
#: `<camera>/incidents/<rule>` would be one topic for a label `incidents` and a rule `count`
RESERVED_LEVELS = ("stats", "events", "incidents", "zones")
ORIGIN = {"name": "edgewatch", "sw_version": __version__}


class MqttPublisher:
    """A sink that publishes a run's events and stats.

    Args:
        config: the `mqtt:` settings (host, port, prefix, credentials, TLS, discovery).
        outbox: the on-disk queue of events not yet acknowledged (`<storage.path>/mqtt-outbox.sqlite`).
            The client id is kept beside it, in `mqtt-client-id`, unless `config.client_id` names one.
        rules: camera → its rule names, for Home Assistant's binary sensors.
        host, port: where to connect, when not the config's (the embedded broker's address). The
            outbox queue is the config's broker's: `embedded` is one queue whatever port it gets.
        instance: this edgewatch's name (the config's `instance:`); default the host name. Its slug is
            the second level of every topic and the first part of every Home Assistant id.
        page: the live page's URL, when it is served: Home Assistant links its devices to it.

    Example:
        >>> config = MqttConfig(host="127.0.0.1", discovery=True)
        >>> publisher = MqttPublisher(config, Outbox(":memory:"), instance="gate-a")  # doctest: +SKIP
        >>> publisher.start()  # doctest: +SKIP
    """

    def __init__(
        self,
        config: MqttConfig,
        outbox: Outbox,
        rules: Mapping[str, Sequence[str]] | None = None,
        host: str | None = None,
        port: int | None = None,
        instance: str | None = None,
        page: str | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.rules = {camera: list(names) for camera, names in (rules or {}).items()}
        self.host = host or config.host
        self.port = port or config.port
        self.prefix = config.prefix.rstrip("/")
        self.instance = instance or default_instance()
        #: the instance in topics and ids: `[A-Za-z0-9-]`, so that it ends where the first `_` is
        self.node = instance_slug(self.instance)
        if not self.node:
            raise EdgewatchError(
                f"the instance name {self.instance!r} has no letter or digit for MQTT topics",
                "give it one: instance: in the config, or --instance NAME",
            )
        self.page = page
        #: whose queue in the outbox this run fills and sends
        self.broker = Broker.named(config.host, self.port, self.prefix)
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._stats: dict[str, dict[str, Any]] = {}  # camera → latest stats, re-sent on reconnect
        self._incidents: dict[tuple[str, str], bool] = {}  # (camera, rule) → on, from the latest stats or event
        self._zone_labels: dict[tuple[str, str], dict[str, None]] = {}  # labels once seen in a zone: 0 when gone
        self._discovered: set[str] = set()
        self._lock = threading.Lock()
        self._publishing = threading.Lock()  # camera threads and paho's (on reconnect) publish stats
        self._cameras, self._zones, self._rules = Slugs(), Slugs(), Slugs()
        self._labels = Slugs(reserved=RESERVED_LEVELS)  # one for all cameras: a label is one slug everywhere
        self._object_ids = Slugs()
        self._id_file: IO[bytes] | None = None
        #: what the broker knows this run by: kept in the storage folder, so the next run is the same client
        self.client_id = config.client_id or self._claim_client_id()
        self._refused: str | None = None
        self._ever_connected = False
        self._unreachable_said = False
        self._unanswered: tuple[int, mqtt.MQTTMessageInfo] | None = None  # sent, connection lost before its ack
        self._client = self._make_client()
        self._sender = Stage("mqtt-sender", self._batches(), self._send, None, self._stop)

    def _make_client(self) -> mqtt.Client:
        config = self.config
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311)
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
        return "/".join((self.prefix, self.node, *parts))

    def _claim_client_id(self) -> str:
        """The id kept in the storage folder (made on the first run), held for this run by a lock.

        A broker drops a client when another connects with its id, so two runs must never share one:
        a second run on a folder that a live run holds gets an id of its own for this run."""
        fresh = f"edgewatch-{self.node}-{secrets.token_hex(4)}"
        if self.outbox.path == ":memory:":
            return fresh
        path = Path(self.outbox.path).parent / CLIENT_ID_FILE
        try:
            stored = path.read_text(encoding="utf-8").strip() if path.exists() else ""
            if not stored:  # an empty file holds nothing to keep
                write_whole(path, f"{fresh}\n".encode())
                stored = fresh
            handle = path.open("rb")
        except (OSError, UnicodeDecodeError) as error:
            log.warning("cannot keep the MQTT client id in %s (%s); this run connects as %s", path, error, fresh)
            return fresh
        stored = stored.splitlines()[0]
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                log.warning(
                    "another edgewatch uses %s and its MQTT client id %s; this run connects as %s for now. "
                    "Give each run its own storage: path (or start it from its own folder) so that each keeps its id",
                    path.parent, stored, fresh,
                )  # fmt: skip
                return fresh
        self._id_file = handle
        return stored

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
        log.info("MQTT connected to %s:%d as %s", self.host, self.port, self.client_id)
        client.publish(self._topic("availability"), "online", qos=1, retain=True)
        with self._lock:
            self._discovered.clear()
        if self.config.discovery:
            self._announce_instance()
        # Connected first, the latest read after: stats that arrive meanwhile are sent by one side or the other
        self._connected.set()
        with self._lock:
            cameras = list(self._stats)
        for camera in cameras:
            self._publish_latest(camera)
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
        camera = event["camera"]
        self.outbox.put(self.broker, self._topic(self._cameras(camera), "events"), json.dumps(event).encode())
        if event["type"] == "incident" and self.config.discovery and event["phase"] in ("start", "end"):
            with self._lock:
                self._incidents[(camera, event["rule"])] = event["phase"] == "start"
            self._publish_incident(camera, event["rule"], event["phase"] == "start")

    def live(self, camera: str, leaf: str, payload: str) -> bool:
        """Publish `payload` to `<camera>/<leaf>` at QoS 0, unretained, if connected now: for what is
        worthless once late (a stream's boxes of each frame), so nothing is queued. Whether it went out."""
        if not self._connected.is_set():
            return False
        self._client.publish(self._topic(self._cameras(camera), leaf), payload, qos=0)
        return True

    def stats(self, stats: dict[str, Any]) -> None:
        camera = stats["camera"]
        with self._lock:
            self._stats[camera] = stats
            self._incidents.update({(camera, rule): bool(on) for rule, on in stats.get("incidents", {}).items()})
        if self._connected.is_set():
            self._publish_latest(camera)

    def _publish_latest(self, camera: str) -> None:
        """A camera's newest stats, and each count as a topic of its own (the retained latest is what a sensor
        shows). The newest is read under the publishing lock, so the last published is never an older one."""
        node = self._cameras(camera)
        publish = self._publish_retained
        with self._publishing:
            with self._lock:
                stats = self._stats[camera]
            publish(self._topic(node, "stats"), json.dumps(stats))
            unique, current = stats.get("unique", {}), stats.get("current", {})
            labels = list({**unique, **current})  # a label seen before and gone now is in view 0 times
            for label in labels:
                level = self._labels(label)
                publish(self._topic(node, level, "count"), str(unique.get(label, 0)))
                publish(self._topic(node, level, "current"), str(current.get(label, 0)))
            zones: dict[str, list[str]] = {}  # zone → the labels ever seen inside
            for zone, inside in stats.get("zones", {}).items():
                level = self._zones(zone)
                publish(self._topic(node, "zones", level, "current"), str(inside.get("occupancy", 0)))
                now = inside.get("labels", {})
                with self._lock:
                    seen = self._zone_labels.setdefault((camera, zone), {})
                    seen.update(dict.fromkeys(now))
                    zones[zone] = list(seen)
                for label in zones[zone]:
                    publish(self._topic(node, "zones", level, self._labels(label), "current"), str(now.get(label, 0)))
            if self.config.discovery:
                with self._lock:
                    incidents = [(rule, on) for (name, rule), on in self._incidents.items() if name == camera]
                for rule, on in incidents:
                    self._publish_incident(camera, rule, on)
                self._announce(camera, labels, zones, remote="detector" in stats)

    def _publish_incident(self, camera: str, rule: str, on: bool) -> None:
        topic = self._topic(self._cameras(camera), "incidents", self._rules(rule))
        self._publish_retained(topic, "ON" if on else "OFF")

    def _publish_retained(self, topic: str, payload: str) -> None:
        self._client.publish(topic, payload, qos=1, retain=True)

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
        if self._id_file is not None:
            self._id_file.close()  # the lock goes with it: the next run may have the id
            self._id_file = None
        left = self.pending()
        if left:
            log.warning(
                "%d MQTT events not delivered yet; they are kept and sent by the next run that names %s",
                left, self.broker,
            )  # fmt: skip
        self.outbox.close()

    # --- Home Assistant discovery -------------------------------------------------------------------
    # One device per instance, with a connectivity sensor of its own (its availability topic), and one
    # device per camera reached through it (`via_device`), holding the camera's sensors. Every entity's
    # unique_id is `edgewatch_<instance>_<object id>`: the instance has no `_` and object ids are distinct
    # within it, so no two instances on one broker share an id or a discovery topic.

    def _instance_device(self) -> dict[str, Any]:
        return self._device(f"edgewatch_{self.node}", f"edgewatch {self.instance}", "edgewatch")

    def _camera_device(self, camera: str) -> dict[str, Any]:
        identifier = f"edgewatch_{self.node}_{self._cameras(camera)}"
        return {**self._device(identifier, f"{self.instance} {camera}", "edgewatch camera"),
                "via_device": f"edgewatch_{self.node}"}  # fmt: skip

    def _device(self, identifier: str, name: str, model: str) -> dict[str, Any]:
        """A Home Assistant device, linked to the live page when it is served."""
        device = {"identifiers": [identifier], "name": name, "manufacturer": "edgewatch", "model": model,
                  "sw_version": __version__}  # fmt: skip
        if self.page:
            device["configuration_url"] = self.page
        return device

    def _announce_instance(self) -> None:
        """The instance's device, with `online` / `offline` as a connectivity sensor that stays
        available when the instance is not (it says so)."""
        config = {"name": "status", "state_topic": self._topic("availability"), "payload_on": "online",
                  "payload_off": "offline", "device_class": "connectivity", "entity_category": "diagnostic",
                  "device": self._instance_device()}  # fmt: skip
        self._discover("binary_sensor", ("status",), "status", config)

    def _announce(self, camera: str, labels: list[str], zones: dict[str, list[str]], remote: bool = False) -> None:
        """Discovery configs, once per connection: per label its count and how many are in view, per
        zone how many are inside (in all and per label), per rule whether an incident lasts, and for a
        remote detector which model answers (`remote`, `fallback` or `none`, read from the stats)."""
        node = self._cameras(camera)
        device = self._camera_device(camera)
        availability = [{"topic": self._topic("availability"), "payload_available": "online",
                         "payload_not_available": "offline"}]  # fmt: skip
        common = {"availability": availability, "device": device}
        for label in labels:
            level = self._labels(label)
            self._discover("sensor", ("count", camera, label), f"{node}_{level}_count", {
                "name": f"{label} count", "state_topic": self._topic(node, level, "count"),
                "state_class": "total_increasing", **common,
            })  # fmt: skip
            self._discover("sensor", ("current", camera, label), f"{node}_{level}_current", {
                "name": f"{label} in view", "state_topic": self._topic(node, level, "current"),
                "state_class": "measurement", **common,
            })  # fmt: skip
        for zone, inside in zones.items():
            level = self._zones(zone)
            self._discover("sensor", ("zone", camera, zone), f"{node}_{level}_occupancy", {
                "name": f"{zone} occupancy", "state_topic": self._topic(node, "zones", level, "current"),
                "state_class": "measurement", **common,
            })  # fmt: skip
            for label in inside:
                label_level = self._labels(label)
                self._discover("sensor", ("zone", camera, zone, label), f"{node}_{level}_{label_level}_occupancy", {
                    "name": f"{label} in {zone}", "state_class": "measurement", **common,
                    "state_topic": self._topic(node, "zones", level, label_level, "current"),
                })  # fmt: skip
        for rule in self.rules.get(camera, []):
            level = self._rules(rule)
            self._discover("binary_sensor", ("incident", camera, rule), f"{node}_{level}_incident", {
                "name": rule, "state_topic": self._topic(node, "incidents", level), "payload_on": "ON",
                "payload_off": "OFF", "device_class": "occupancy", **common,
            })  # fmt: skip
        if remote:
            self._discover("sensor", ("detector", camera), f"{node}_detector", {
                "name": "detector in use", "state_topic": self._topic(node, "stats"),
                "value_template": "{{ value_json.detector.in_use }}", "entity_category": "diagnostic", **common,
            })  # fmt: skip

    def _discover(self, component: str, key: tuple[str, ...], readable: str, config: dict[str, Any]) -> None:
        """Publish one entity's config (retained) unless this connection already did."""
        object_id = self._object_ids(readable, key)
        if object_id in self._discovered:
            return
        unique_id = f"edgewatch_{self.node}_{object_id}"
        payload = {**config, "unique_id": unique_id, "origin": ORIGIN, "qos": 1}
        topic = f"{self.config.discovery_prefix}/{component}/edgewatch-{self.node}/{object_id}/config"
        self._client.publish(topic, json.dumps(payload), qos=1, retain=True)
        self._discovered.add(object_id)


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
