"""A real Mosquitto (Debian's) on a free loopback port, with persistence, that a test can restart; a
subscriber that keeps what it receives; and Home Assistant's MQTT discovery schema, to check payloads by."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mosquitto:
    """`start()`, `stop()` (SIGTERM, as a restart does), `restart()`; messages for persistent sessions
    survive restarts, as they do on a real install."""

    def __init__(
        self, folder: Path, passwords: dict[str, str] | None = None, tls: bool = False, log: bool = False
    ) -> None:
        self.port = free_port()
        self.folder = folder
        lines = [f"listener {self.port} 127.0.0.1", "persistence true", f"persistence_location {folder}/"]
        self.log_file = folder / "mosquitto.log"
        if log:  # every connect, disconnect and session take-over, as a broker's admin would read them
            lines += [f"log_dest file {self.log_file}", "log_type all", "connection_messages true"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to 'mosquitto', who cannot read the test's folder
        if passwords:
            password_file = folder / "passwords"
            password_file.write_text("")
            for user, password in passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", str(password_file), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            self.ca = make_certificates(folder)
            lines += [f"cafile {self.ca}", f"certfile {folder / 'server.pem'}", f"keyfile {folder / 'server.key'}"]
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> Mosquitto:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def restart(self, down_for: float = 0.5) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


def make_certificates(folder: Path) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl); returns the CA file."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=edgewatch test CA",
            "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "san.cnf", "-out", "server.pem")  # fmt: skip
    return folder / "ca.pem"


def broker_log(broker: Mosquitto) -> list[str]:
    """The lines of a `Mosquitto(..., log=True)`'s log so far."""
    return broker.log_file.read_text().splitlines() if broker.log_file.exists() else []


def connected_clients(lines: list[str]) -> list[str]:
    """The client ids of the log's `New client connected ... as ID` lines, in order."""
    return [found[1] for line in lines if (found := re.search(r"New client connected from \S+ as (\S+) \(", line))]


def dropped_connections(lines: list[str]) -> list[str]:
    """Lines where the broker ended a connection the client had not closed cleanly itself: a second
    client taking over the id, a keepalive timeout, a socket closed without DISCONNECT (not the probes
    of `start()`, which close before they are a client)."""
    marks = (
        "already connected, closing old connection",
        "has exceeded timeout",
        "closed its connection",
        "Socket error",
    )
    return [line for line in lines if any(mark in line for mark in marks) and "<unknown>" not in line]


class Subscriber:
    """A persistent-session client (its QoS 1 messages wait in the broker while it restarts)."""

    def __init__(self, port: int, topic: str = "#", client_id: str | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{port}", clean_session=False
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, message.retain))

    def events(self) -> list[dict]:
        with self._lock:
            return [json.loads(payload) for topic, payload, _ in self.messages if topic.endswith("/events")]

    def latest(self, topic: str) -> bytes | None:
        with self._lock:
            found = [payload for name, payload, _ in self.messages if name == topic]
        return found[-1] if found else None

    def topics(self) -> dict[str, bytes]:
        """Every topic received, with its latest payload."""
        with self._lock:
            return {topic: payload for topic, payload, _ in self.messages}

    def wait_for(self, condition: Callable[[], Any], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.1)
        return bool(condition())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# --- Home Assistant's MQTT discovery, as its documentation and its schemas (homeassistant/components/mqtt/
# schemas.py, discovery.py, sensor.py, binary_sensor.py) define it ------------------------------------------

#: `<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`; an id outside this is ignored by HA
DISCOVERY_TOPIC = re.compile(r"^(?P<prefix>[^/]+)/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
                             r"(?P<object_id>[a-zA-Z0-9_-]+)/config$")  # fmt: skip
_COMMON = {
    "name", "unique_id", "object_id", "default_entity_id", "device", "origin", "availability", "availability_topic",
    "availability_mode", "payload_available", "payload_not_available", "icon", "entity_category",
    "enabled_by_default", "json_attributes_topic", "qos", "value_template", "expire_after", "force_update",
}  # fmt: skip
DISCOVERY_KEYS = {
    "sensor": ({"state_topic"}, _COMMON | {"state_class", "device_class", "unit_of_measurement",
                                            "suggested_display_precision"}),
    "binary_sensor": ({"state_topic"}, _COMMON | {"payload_on", "payload_off", "device_class", "off_delay"}),
}  # fmt: skip
DEVICE_KEYS = {
    "identifiers", "connections", "manufacturer", "model", "model_id", "name", "hw_version", "serial_number",
    "sw_version", "via_device", "suggested_area", "configuration_url",
}  # fmt: skip
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
SENSOR_STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
BINARY_SENSOR_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas", "heat",
    "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug", "power", "presence", "problem",
    "running", "safety", "smoke", "sound", "tamper", "update", "vibration", "window",
}  # fmt: skip
ENTITY_CATEGORIES = {"config", "diagnostic"}


def discovery_problems(topic: str, payload: bytes) -> list[str]:
    """What Home Assistant would refuse or ignore in one discovery message; [] when it takes it."""
    found = DISCOVERY_TOPIC.match(topic)
    if found is None:
        return [f"{topic}: not a discovery topic Home Assistant reads"]
    try:
        config = json.loads(payload)
    except ValueError:
        return [f"{topic}: payload is not JSON"]
    component = found["component"]
    if component not in DISCOVERY_KEYS:
        return [f"{topic}: component {component} is not checked here"]
    required, allowed = DISCOVERY_KEYS[component]
    problems = [f"{topic}: missing {key}" for key in sorted(required - config.keys())]
    problems += [f"{topic}: unknown key {key}" for key in sorted(config.keys() - required - allowed)]
    for key in ("state_topic", "availability_topic", "json_attributes_topic"):
        if key in config and not _valid_topic(config[key]):
            problems.append(f"{topic}: {key} {config[key]!r} is no topic")
    if "availability" in config and "availability_topic" in config:
        problems.append(f"{topic}: availability and availability_topic are exclusive")
    for entry in config.get("availability", []):
        if not isinstance(entry, dict) or not _valid_topic(entry.get("topic")):
            problems.append(f"{topic}: availability entry {entry!r} needs a topic")
    device = config.get("device")
    if device is not None:
        problems += [f"{topic}: unknown device key {key}" for key in sorted(device.keys() - DEVICE_KEYS)]
        if not device.get("identifiers") and not device.get("connections"):
            problems.append(f"{topic}: a device needs identifiers or connections")
        if not isinstance(device.get("identifiers", []), list | str):
            problems.append(f"{topic}: device identifiers must be a list of strings")
        if "unique_id" not in config:
            problems.append(f"{topic}: an entity with a device needs a unique_id")
        url = device.get("configuration_url")
        if url is not None and not re.match(r"^(https?://[^/\s]+|homeassistant://)", url):
            problems.append(f"{topic}: configuration_url {url!r} is no URL")
    origin = config.get("origin")
    if origin is not None:
        if "name" not in origin:
            problems.append(f"{topic}: origin needs a name")
        problems += [f"{topic}: unknown origin key {key}" for key in sorted(origin.keys() - ORIGIN_KEYS)]
    if component == "sensor" and config.get("state_class", "measurement") not in SENSOR_STATE_CLASSES:
        problems.append(f"{topic}: state_class {config['state_class']!r}")
    if component == "binary_sensor" and config.get("device_class", "problem") not in BINARY_SENSOR_CLASSES:
        problems.append(f"{topic}: device_class {config['device_class']!r}")
    if config.get("entity_category", "config") not in ENTITY_CATEGORIES:
        problems.append(f"{topic}: entity_category {config['entity_category']!r}")
    return problems


def _valid_topic(topic: object) -> bool:
    return isinstance(topic, str) and bool(topic) and not {"#", "+", "\0"} & set(topic) and len(topic) < 65536
