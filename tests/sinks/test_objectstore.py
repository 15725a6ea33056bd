"""Uploads to a real S3 server (SeaweedFS on loopback): keys and bytes, an endpoint that is down and
comes back, a queue that outlives the process, and configuration mistakes refused at start."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgewatch.config import S3Config, StorageConfig
from edgewatch.errors import EdgewatchError
from edgewatch.sinks.objectstore import ObjectStore
from s3server import ACCESS_KEY, READER_KEY, READER_SECRET, SECRET_KEY, SeaweedS3, free_port_pairs

DAY = "2026-11-22"
_buckets = itertools.count(1)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3: SeaweedS3) -> str:
    name = f"edgewatch-{next(_buckets)}"
    s3.create_bucket(name)
    return name


def storage(folder: Path, endpoint: str, bucket: str, **s3: str) -> StorageConfig:
    settings = {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "prefix": "site1/", **s3}
    return StorageConfig(path=str(folder), s3=S3Config(endpoint=endpoint, bucket=bucket, **settings))


def media(folder: Path, camera: str, name: str, size: int = 2000) -> Path:
    """A finished file where the recorder puts it, with bytes of its own."""
    path = folder / "media" / camera / DAY / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def dead_endpoint() -> str:
    """An endpoint where nothing listens: S3 that is down."""
    return f"http://127.0.0.1:{free_port_pairs(1)[0]}"


def wait_until_empty(store: ObjectStore, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while store.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.pending() == 0, f"{store.pending()} file(s) still queued after {timeout} s"


def uploaded_keys(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Keys in the order the uploader reported them confirmed."""
    return [
        r.args[0] for r in caplog.records if r.name == "edgewatch.sinks.objectstore" and r.msg.startswith("uploaded")
    ]


def test_files_land_under_their_keys_with_their_bytes(s3: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    files = [
        media(tmp_path, "street", "ev1.mp4", 300_000),
        media(tmp_path, "street", "ev1.jpg"),
        media(tmp_path, "street", "ev1-boxes.jpg"),
        media(tmp_path, "street", "ev1.json", 300),
    ]

    with ObjectStore(storage(tmp_path, s3.endpoint, bucket)) as store:
        store.enqueue(files)
        wait_until_empty(store, 20)

    assert s3.objects(bucket) == {f"site1/street/{DAY}/{path.name}": path.read_bytes() for path in files}
    client = s3.client()
    types = {
        name: client.head_object(Bucket=bucket, Key=f"site1/street/{DAY}/{name}")["ContentType"]
        for name in ("ev1.mp4", "ev1.jpg", "ev1.json")
    }
    assert types == {"ev1.mp4": "video/mp4", "ev1.jpg": "image/jpeg", "ev1.json": "application/json"}


def test_files_queued_while_the_endpoint_is_down_arrive_in_order_once_it_is_back(
    s3: SeaweedS3, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edgewatch.sinks.objectstore")
    s3.stop()
    try:
        store = ObjectStore(storage(tmp_path, s3.endpoint, bucket))  # down at start: a warning, not an error
        assert any("does not answer" in r.getMessage() for r in caplog.records)
        files = [media(tmp_path, "gate", f"ev{i}.jpg") for i in range(5)]
        for path in files:
            store.enqueue([path])
        time.sleep(1.0)
        assert store.pending() == 5
    finally:
        s3.start()

    wait_until_empty(store, 40)
    store.close()

    keys = [f"site1/gate/{DAY}/ev{i}.jpg" for i in range(5)]
    assert uploaded_keys(caplog) == keys
    assert s3.objects(bucket) == {key: path.read_bytes() for key, path in zip(keys, files, strict=True)}


def test_a_store_closed_with_files_queued_leaves_them_to_the_next_start(
    s3: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    files = [media(tmp_path, "yard", f"ev{i}.json", 100) for i in range(3)]
    first = ObjectStore(storage(tmp_path, dead_endpoint(), bucket))
    first.enqueue(files)
    first.close(timeout=0.5)
    assert first.pending() == 3

    with ObjectStore(storage(tmp_path, s3.endpoint, bucket)) as second:
        wait_until_empty(second, 20)

    assert s3.objects(bucket) == {f"site1/yard/{DAY}/{path.name}": path.read_bytes() for path in files}


def test_files_queued_by_a_killed_edgewatch_are_uploaded_after_the_next_start(
    s3: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    files = [media(tmp_path, "dock", f"ev{i}.mp4") for i in range(2)]
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from edgewatch.config import S3Config, StorageConfig
        from edgewatch.sinks.objectstore import ObjectStore
        store = ObjectStore(StorageConfig(path={str(tmp_path)!r}, s3=S3Config(
            endpoint={dead_endpoint()!r}, bucket={bucket!r}, access_key="k", secret_key="s")))
        store.enqueue([Path(p) for p in {[str(p) for p in files]!r}])
        print("queued", flush=True)
        time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "queued"
    finally:
        process.kill()
        process.wait()

    with ObjectStore(storage(tmp_path, s3.endpoint, bucket, prefix="")) as store:
        wait_until_empty(store, 20)

    assert s3.objects(bucket) == {f"dock/{DAY}/{path.name}": path.read_bytes() for path in files}


def test_a_file_deleted_before_its_upload_is_dropped_with_a_warning(
    s3: SeaweedS3, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = [media(tmp_path, "lobby", name) for name in ("a.jpg", "b.jpg", "c.jpg")]
    first = ObjectStore(storage(tmp_path, dead_endpoint(), bucket))
    first.enqueue(files)
    first.close(timeout=0)
    files[1].unlink()  # retention got there first

    with ObjectStore(storage(tmp_path, s3.endpoint, bucket)) as store:
        wait_until_empty(store, 20)

    assert set(s3.objects(bucket)) == {f"site1/lobby/{DAY}/a.jpg", f"site1/lobby/{DAY}/c.jpg"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("b.jpg" in message and "deleted" in message for message in warnings)


def test_a_missing_bucket_is_refused_at_start(s3: SeaweedS3, tmp_path: Path) -> None:
    with pytest.raises(EdgewatchError) as raised:
        ObjectStore(storage(tmp_path, s3.endpoint, "no-such-bucket"))

    assert "'no-such-bucket' does not exist" in raised.value.message
    assert "create it" in raised.value.hint
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("access_key", "secret_key", "told"),
    [
        (ACCESS_KEY, "not-the-secret", "refused the secret key"),
        ("nobody", SECRET_KEY, "does not know the access key 'nobody'"),
    ],
)
def test_wrong_credentials_are_refused_at_start(
    s3: SeaweedS3, bucket: str, tmp_path: Path, access_key: str, secret_key: str, told: str
) -> None:
    with pytest.raises(EdgewatchError) as raised:
        ObjectStore(storage(tmp_path, s3.endpoint, bucket, access_key=access_key, secret_key=secret_key))

    assert told in raised.value.message
    assert "storage.s3" in raised.value.hint
    assert "\n" not in str(raised.value)


def test_a_key_that_may_not_write_keeps_the_files_queued_and_says_access_denied(
    s3: SeaweedS3, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A policy that lets the key read but not write (AccessDenied on PUT): nothing is lost, the
    warning names the cause, and the files go once the key may write."""
    caplog.set_level(logging.WARNING, logger="edgewatch.sinks.objectstore")
    files = [media(tmp_path, "gate", f"ev{i}.jpg") for i in range(2)]
    reader = ObjectStore(storage(tmp_path, s3.endpoint, bucket, access_key=READER_KEY, secret_key=READER_SECRET))
    reader.enqueue(files)
    deadline = time.monotonic() + 20
    while not any("AccessDenied" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.1)
    reader.close(timeout=0.5)
    assert reader.pending() == 2 and s3.objects(bucket) == {}

    with ObjectStore(storage(tmp_path, s3.endpoint, bucket)) as writer:
        wait_until_empty(writer, 20)
    assert sorted(s3.objects(bucket)) == [f"site1/gate/{DAY}/ev{i}.jpg" for i in range(2)]


@pytest.mark.parametrize("endpoint", ["127.0.0.1:8333", "http://", "http://127.0.0.1:99999", "ftp://127.0.0.1"])
def test_a_malformed_endpoint_is_refused_at_start(tmp_path: Path, endpoint: str) -> None:
    with pytest.raises(EdgewatchError, match="is not an http"):
        ObjectStore(storage(tmp_path, endpoint, "edgewatch"))


def test_a_file_outside_the_media_folder_is_refused(tmp_path: Path) -> None:
    stray = tmp_path / "elsewhere.mp4"
    stray.write_bytes(b"0")
    store = ObjectStore(storage(tmp_path / "data", dead_endpoint(), "edgewatch"))
    try:
        with pytest.raises(EdgewatchError, match="not in"):
            store.enqueue([stray])
        assert store.pending() == 0
    finally:
        store.close(timeout=0)


def test_a_recording_run_uploads_its_clips_snapshots_and_records(s3: SeaweedS3, bucket: str, tmp_path: Path, run_cli):
    (tmp_path / "site.yaml").write_text(
        f"""
cameras:
  street:
    source: synthetic:street?seed=3&seconds=10
    record: {{pre_seconds: 1, post_seconds: 1, events: [line_crossing]}}
    lines:
      middle: {{points: [[0.5, 0.0], [0.5, 1.0]]}}
storage:
  path: data
  s3: {{endpoint: "{s3.endpoint}", bucket: {bucket}, prefix: site1/, access_key: {ACCESS_KEY},
        secret_key: {SECRET_KEY}}}
"""
    )
    done = run_cli("run", "site.yaml", "--events", "events.jsonl", "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    local = sorted(path.relative_to(tmp_path / "data" / "media") for path in (tmp_path / "data" / "media").rglob("*.*"))
    assert local and {path.suffix for path in local} == {".mp4", ".jpg", ".json"}
    uploaded = s3.objects(bucket)
    assert sorted(uploaded) == sorted(f"site1/{path.as_posix()}" for path in local)
    crossings = sum('"line_crossing"' in line for line in (tmp_path / "events.jsonl").read_text().splitlines())
    assert sum(key.endswith(".mp4") for key in uploaded) == crossings
