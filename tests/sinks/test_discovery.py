"""What a Home Assistant user gets from edgewatch on a real Mosquitto: labels as topic levels and ids HA
accepts (COCO's 80 names), every discovery payload as HA's schema wants it, a current count beside the
cumulative one, and devices and ids of their own for each instance."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

import pytest

from brokers import DISCOVERY_TOPIC, Mosquitto, Subscriber, discovery_problems
from edgewatch import __version__
from edgewatch.analytics.events import make_event
from edgewatch.config import MqttConfig
from edgewatch.sinks.mqtt import MqttPublisher
from edgewatch.sinks.outbox import Outbox

# the 80 COCO class names, as YOLO models and the TF OD API label maps name them
COCO = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
]  # fmt: skip
SLUG = re.compile(r"^[A-Za-z0-9_-]+$")


@pytest.fixture
def mosquitto(tmp_path):
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


def publish(broker: Mosquitto, folder, instance: str, stats: dict, **options) -> MqttPublisher:
    config = MqttConfig(host="127.0.0.1", port=broker.port, discovery=True)
    folder.mkdir(exist_ok=True)
    publisher = MqttPublisher(config, Outbox(folder / "mqtt-outbox.sqlite"), instance=instance, **options).start()
    publisher.stats(stats)
    return publisher


def counts(subscriber: Subscriber) -> list[str]:
    return [
        topic
        for topic in subscriber.topics()
        if topic.startswith("edgewatch/gate-a/street/") and topic.endswith("/count")
    ]


def sensor_configs(subscriber: Subscriber) -> list[str]:
    return [topic for topic in subscriber.topics() if topic.startswith("homeassistant/sensor/")]


def discovery(subscriber: Subscriber) -> dict[str, bytes]:
    return {topic: payload for topic, payload in subscriber.topics().items() if topic.startswith("homeassistant/")}


def test_coco_labels_and_labels_that_slug_alike_get_topics_and_ids_home_assistant_accepts(mosquitto, tmp_path):
    labels = [*COCO, "car/truck", "car truck", "incidents"]  # two that slug alike, one a topic level of ours
    unique = {label: index + 1 for index, label in enumerate(labels)}
    stats = {"camera": "street", "time": 2.0, "unique": unique, "current": {"traffic light": 2, "car/truck": 1}}
    subscriber = Subscriber(mosquitto.port, "#")
    publisher = publish(mosquitto, tmp_path / "a", "gate-a", stats, rules={"street": ["count"]})
    try:
        assert subscriber.wait_for(lambda: len(counts(subscriber)) == len(labels))
        assert subscriber.wait_for(lambda: len(sensor_configs(subscriber)) == 2 * len(labels))
        topics = subscriber.topics()
    finally:
        publisher.close()
        subscriber.close()

    levels = [topic.split("/")[3] for topic in counts(subscriber)]
    assert all(SLUG.match(level) for level in levels), [level for level in levels if not SLUG.match(level)]
    assert len(set(levels)) == len(labels)  # every label its own topic
    assert topics["edgewatch/gate-a/street/traffic_light/count"] == str(unique["traffic light"]).encode()
    assert topics["edgewatch/gate-a/street/traffic_light/current"] == b"2"
    assert topics["edgewatch/gate-a/street/cell_phone/count"] == str(unique["cell phone"]).encode()
    assert topics["edgewatch/gate-a/street/person/count"] == b"1"  # a name that is a slug stays as it is
    # the first of two names that slug alike keeps the slug, the other gets a short suffix of its own
    assert topics["edgewatch/gate-a/street/car_truck/count"] == str(unique["car/truck"]).encode()
    truck = [level for level in levels if level.startswith("car_truck_")]
    assert len(truck) == 1 and topics[f"edgewatch/gate-a/street/{truck[0]}/count"] == str(unique["car truck"]).encode()
    assert "edgewatch/gate-a/street/incidents/count" not in topics  # the rule `count` owns that topic
    assert json.loads(topics["edgewatch/gate-a/street/stats"])["unique"] == unique  # payloads keep real names

    names = set()
    for topic in sensor_configs(subscriber):
        assert DISCOVERY_TOPIC.match(topic), topic  # Home Assistant drops a topic with another character
        assert not discovery_problems(topic, topics[topic])
        names.add(json.loads(topics[topic])["name"])
    assert {f"{label} count" for label in labels} | {f"{label} in view" for label in labels} == names


def stats_of(camera: str) -> dict:
    return {
        "camera": camera, "time": 4.0, "unique": {"car": 3, "person": 1}, "current": {"car": 1},
        "zones": {"doorway": {"occupancy": 1, "labels": {"car": 1}, "max_occupancy": 2, "visits": 3}},
        "incidents": {"busy": True},
    }  # fmt: skip


def test_every_discovery_payload_meets_home_assistants_schema_and_two_instances_share_no_id(mosquitto, tmp_path):
    subscriber = Subscriber(mosquitto.port, "#")
    rules = {"default": ["busy"]}
    page = "http://192.0.2.7:8080/"
    first = publish(mosquitto, tmp_path / "a", "gate-a", stats_of("default"), rules=rules, page=page)
    second = publish(mosquitto, tmp_path / "b", "gate-b", stats_of("default"), rules=rules)
    try:
        first.event(make_event("incident", "default", 1.0, datetime.now(UTC), phase="start", rule="busy",
                               labels=["car"], track_ids=[1, 2], since=1.0))  # fmt: skip
        # per instance: car, person count and in view, doorway and doorway car, busy, and the instance's status
        expected = 2 * (2 + 2 + 2 + 1 + 1)
        assert subscriber.wait_for(lambda: len(discovery(subscriber)) == expected), sorted(discovery(subscriber))
        assert subscriber.wait_for(lambda: subscriber.latest("edgewatch/gate-a/default/incidents/busy") == b"ON")
        topics = subscriber.topics()
    finally:
        first.close()
        second.close()
        subscriber.close()

    published = discovery(subscriber)
    configs = {topic: json.loads(payload) for topic, payload in published.items()}
    problems = [problem for topic, payload in published.items() for problem in discovery_problems(topic, payload)]
    assert not problems, "\n".join(problems)
    unique_ids = [config["unique_id"] for config in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids) == expected  # unique across both instances on one broker
    devices: dict[str, dict] = {}
    for topic, config in configs.items():
        instance = config["state_topic"].split("/")[1]
        assert config["state_topic"] in topics, f"{topic}: nothing published on {config['state_topic']}"
        assert config["origin"]["name"] == "edgewatch" and config["origin"]["sw_version"] == __version__
        device = config["device"]
        devices[device["identifiers"][0]] = device
        assert device["sw_version"] == __version__ and device["model"]
        assert (device.get("configuration_url") == page) == (instance == "gate-a")  # the page, where served
        if topic.startswith("homeassistant/binary_sensor/"):
            assert config["device_class"]
        if device.get("via_device") is None:  # the instance itself: its status is the availability topic
            assert config["state_topic"] == f"edgewatch/{instance}/availability"
            assert config["device_class"] == "connectivity" and "availability" not in config
        else:
            assert config["availability"] == [
                {"topic": f"edgewatch/{instance}/availability", "payload_available": "online",
                 "payload_not_available": "offline"}
            ]  # fmt: skip
    cameras = [device for device in devices.values() if "via_device" in device]
    assert len(cameras) == 2 and all(device["via_device"] in devices for device in cameras)  # one per camera
    assert len(devices) == 4

    by_name = {(config["state_topic"].split("/")[1], config["name"]): config for config in configs.values()}
    current = by_name[("gate-a", "car in view")]
    assert current["state_class"] == "measurement" and topics[current["state_topic"]] == b"1"
    assert topics[by_name[("gate-a", "person in view")]["state_topic"]] == b"0"  # seen before, not in view now
    assert by_name[("gate-a", "car count")]["state_class"] == "total_increasing"
    assert topics[by_name[("gate-b", "doorway occupancy")]["state_topic"]] == b"1"
    assert topics[by_name[("gate-b", "car in doorway")]["state_topic"]] == b"1"
    assert by_name[("gate-a", "busy")]["device_class"] and by_name[("gate-a", "busy")]["payload_on"] == "ON"


def test_two_publishers_sharing_a_storage_folder_do_not_share_a_client_id(mosquitto, tmp_path, caplog):
    """The id is kept in the storage folder; a second run on the same folder at the same time gets an id
    of its own for that run, and is told why."""
    caplog.set_level(logging.WARNING)
    stats = stats_of("default")
    first = publish(mosquitto, tmp_path / "data", "gate-a", stats)
    second = publish(mosquitto, tmp_path / "data", "gate-a", stats)
    try:
        stored = (tmp_path / "data" / "mqtt-client-id").read_text().strip()
        assert first.client_id == stored and second.client_id != stored
        assert "another edgewatch uses" in caplog.text
    finally:
        second.close()
        first.close()
    again = publish(mosquitto, tmp_path / "data", "gate-a", stats)
    again.close()
    assert again.client_id == stored
