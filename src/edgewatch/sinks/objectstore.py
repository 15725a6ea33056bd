"""Object storage: media files uploaded to an S3 bucket through a queue on disk that survives restarts.

The recorder writes clips, snapshots and event records under `<storage.path>/media/` and hands each
finished file to `ObjectStore.enqueue`, which records it in `<storage.path>/uploads.sqlite` and
returns. One worker uploads the queue in order and removes an entry only once S3 has confirmed it,
so neither an endpoint that is down for hours nor a killed process loses a file.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.stage import Stage

if TYPE_CHECKING:
    from edgewatch.config import S3Config, StorageConfig
    from edgewatch.pipeline.result import FrameResult

log = logging.getLogger(__name__)

QUEUE_FILE = "uploads.sqlite"
MEDIA_FOLDER = "media"
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".json": "application/json",
}
_MISSING_BUCKET = {"404", "NoSuchBucket", "NotFound"}
_REFUSED = {"403", "Forbidden", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


@dataclass(frozen=True, slots=True)
class _Queued:
    id: int
    path: str  # relative to storage.path, so the data folder may move between runs


@dataclass(frozen=True, slots=True)
class _Connection:
    check: Any  # boto3 S3 client with short timeouts, for the check at start
    upload: Any  # boto3 S3 client for the uploads
    transfer: Any  # boto3 TransferConfig
    access_key: str | None


class ObjectStore:
    """Uploads files under `<storage.path>/media/` to `storage.s3`, in order, surviving restarts.

    Each file `media/<camera>/<YYYY-MM-DD>/<name>` goes to the key
    `<s3.prefix><camera>/<YYYY-MM-DD>/<name>`. The bucket and credentials are checked when the store
    is made; an endpoint that does not answer then is only logged, and files wait in the queue until
    it does (retried after 0.5 s, doubling up to 30 s). Files still queued when edgewatch stops, or
    is killed, are uploaded after the next start. A queued file that is deleted locally before its
    upload (retention) is dropped from the queue with a warning.

    Args:
        storage: the `storage:` config; `storage.s3` must be set.

    Raises:
        EdgewatchError: a malformed endpoint URL, a bucket that does not exist, credentials that are
            missing or refused, or a queue file that cannot be opened.

    Example:
        >>> store = ObjectStore(config.storage)  # doctest: +SKIP
        >>> store.enqueue([Path("edgewatch-data/media/street/2026-11-22/4f2a.mp4")])  # doctest: +SKIP
        >>> store.pending()  # doctest: +SKIP
        1
        >>> store.close(timeout=10)  # doctest: +SKIP
    """

    def __init__(self, storage: StorageConfig) -> None:
        if storage.s3 is None:
            raise ValueError("ObjectStore needs storage.s3; without it the local folder is the store")
        self._s3: S3Config = storage.s3
        self._root = Path(storage.path)
        self._media = self._root / MEDIA_FOLDER
        self._queue_file = self._root / QUEUE_FILE
        self._connection = _connect(self._s3)
        self._check_bucket()
        self._db = _open_queue(self._queue_file)
        self._db_closed = False
        # one connection serves the caller's thread and the worker, one statement at a time
        self._lock = threading.Lock()
        # notified when the queue changes: wakes an idle worker, and close() waiting for the flush
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._closed = False
        self._worker = Stage(f"s3-upload:{self._s3.bucket}", self._queued(), self._upload, None, self._stop)
        self._worker.start()

    def enqueue(self, paths: list[Path]) -> None:
        """Queue finished files for upload and return at once; they are on disk (in the queue) when
        this returns, so a crash a moment later loses nothing.

        Raises:
            EdgewatchError: a path that is not under `<storage.path>/media/<camera>/<day>/`.
        """
        if self._closed:
            raise RuntimeError("enqueue on a closed ObjectStore")
        rows = [(self._relative(Path(path)), time.time()) for path in paths]
        with self._lock, self._db:
            self._db.executemany("INSERT INTO uploads (path, queued) VALUES (?, ?)", rows)
        with self._changed:
            self._changed.notify_all()

    def pending(self) -> int:
        """Files queued and not yet confirmed by S3 (after `close`, those left for the next start)."""
        with self._lock:
            if self._db_closed:
                with contextlib.closing(_open_queue(self._queue_file)) as db:
                    return db.execute("SELECT COUNT(*) FROM uploads").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM uploads").fetchone()[0]

    def close(self, timeout: float = 10) -> None:
        """Try to empty the queue for up to `timeout` seconds, then stop the worker; what is left stays
        queued on disk and is uploaded after the next start."""
        if self._closed:
            return
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.pending() and self._worker.is_alive() and time.monotonic() < deadline:
                self._changed.wait(max(0.0, min(0.1, deadline - time.monotonic())))
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        # an upload under way cannot be interrupted; give it a moment, then leave it to its daemon
        # thread (if the process ends first, the file is still queued and goes again next time)
        self._worker.join(max(1.0, deadline - time.monotonic()))
        self._closed = True
        left = self.pending()
        if left:
            log.info("%d file(s) stay queued in %s for the next start", left, self._queue_file)
        if self._worker.error is not None:
            log.error("the upload worker failed: %s", self._worker.error)
        if not self._worker.is_alive():
            with self._lock:
                self._db.close()
                self._db_closed = True

    def write(self, result: FrameResult) -> None:
        """Nothing: the recorder hands files over through `enqueue`; frames need no upload."""

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker thread

    def _queued(self) -> Iterator[_Queued]:
        """The head of the queue, again and again, until stopped; waits while the queue is empty."""
        while not self._stop.is_set():
            # looked up under the condition, so an enqueue between look-up and wait cannot be missed
            with self._changed:
                with self._lock:
                    row = self._db.execute("SELECT id, path FROM uploads ORDER BY id LIMIT 1").fetchone()
                if row is None:
                    self._changed.wait(1.0)
                    continue
            yield _Queued(*row)

    def _upload(self, item: _Queued) -> None:
        """Upload one file, retrying with backoff until S3 confirms it, the file vanishes, or stop."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        path = self._root / item.path
        key = self._s3.prefix + "/".join(Path(item.path).parts[-3:])
        extra = {"ContentType": CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")}
        delay, failures = RETRY_FIRST_S, 0
        while not self._stop.is_set():
            if not path.is_file():
                log.warning("%s was deleted before it was uploaded (retention?); dropped from the upload queue", path)
                self._remove(item)
                return
            try:
                self._connection.upload.upload_file(
                    str(path), self._s3.bucket, key, ExtraArgs=extra, Config=self._connection.transfer
                )
            except (Boto3Error, BotoCoreError, ClientError, OSError) as error:
                if isinstance(error, OSError) and not path.is_file():
                    continue  # deleted while being read: dropped on the next turn
                failures += 1
                if failures == 1:
                    log.warning(
                        "cannot upload %s to %s: %s; retrying with backoff up to %g s",
                        key,
                        self._where(),
                        _one_line(error),
                        RETRY_MAX_S,
                    )
                else:
                    log.debug("upload of %s failed again (%d): %s", key, failures, _one_line(error))
                self._stop.wait(delay)
                delay = min(2 * delay, RETRY_MAX_S)
                continue
            self._remove(item)
            if failures:
                log.info("uploaded %s to %s after %d failed attempt(s)", key, self._where(), failures)
            else:
                log.debug("uploaded %s to %s", key, self._where())
            return

    def _remove(self, item: _Queued) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM uploads WHERE id = ?", (item.id,))
        with self._changed:
            self._changed.notify_all()

    # -- checks and names

    def _relative(self, path: Path) -> str:
        """`path` as `media/<camera>/<day>/<name>`, relative to storage.path."""
        try:
            inside = path.resolve().relative_to(self._media.resolve())
        except ValueError:
            inside = None
        if inside is None or len(inside.parts) != 3:
            raise EdgewatchError(
                f"cannot upload {path}: it is not in {self._media}/<camera>/<YYYY-MM-DD>/",
                "hand over the files that the recorder wrote under storage.path",
            )
        return (Path(MEDIA_FOLDER) / inside).as_posix()

    def _where(self) -> str:
        return f"s3://{self._s3.bucket}" + (f" at {self._s3.endpoint}" if self._s3.endpoint else "")

    def _check_bucket(self) -> None:
        """Refuse a missing bucket and refused credentials now; only warn about a silent endpoint."""
        from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError, NoCredentialsError

        try:
            self._connection.check.head_bucket(Bucket=self._s3.bucket)
        except NoCredentialsError:
            raise EdgewatchError(
                f"no S3 credentials for {self._where()}",
                "set storage.s3.access_key and secret_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ) from None
        except (ConnectionError, HTTPClientError) as error:
            # it may be a network cut at the edge that heals: queue, and upload when it answers
            log.warning(
                "S3 endpoint %s does not answer (%s); files are queued in %s and uploaded when it does",
                self._s3.endpoint or "of AWS",
                _one_line(error),
                self._queue_file,
            )
        except ClientError as error:
            code = _code(error)
            if code in _MISSING_BUCKET:
                raise EdgewatchError(
                    f"S3 bucket '{self._s3.bucket}' does not exist at {self._s3.endpoint or 'AWS'}",
                    f"create it first, e.g. aws s3 mb s3://{self._s3.bucket}"
                    + (f" --endpoint-url {self._s3.endpoint}" if self._s3.endpoint else "")
                    + "; or fix storage.s3.bucket",
                ) from None
            if code in _REFUSED:
                raise self._refused() from None
            log.warning("checking %s failed (%s); uploads will be retried", self._where(), _one_line(error))
        except BotoCoreError as error:
            log.warning("checking %s failed (%s); uploads will be retried", self._where(), _one_line(error))

    def _refused(self) -> EdgewatchError:
        """The error for credentials that S3 refused, naming which part is wrong."""
        from botocore.exceptions import BotoCoreError, ClientError

        # a HEAD answer has no body, so it cannot say why; a GET does
        code = "AccessDenied"
        try:
            self._connection.check.list_objects_v2(Bucket=self._s3.bucket, MaxKeys=1)
        except ClientError as error:
            code = _code(error)
        except BotoCoreError:
            pass
        key, at = self._connection.access_key, self._s3.endpoint or "AWS"
        if code == "InvalidAccessKeyId":
            return EdgewatchError(
                f"S3 at {at} does not know the access key '{key}' (InvalidAccessKeyId)",
                "check storage.s3.access_key or AWS_ACCESS_KEY_ID",
            )
        if code == "SignatureDoesNotMatch":
            return EdgewatchError(
                f"S3 at {at} refused the secret key of access key '{key}' (SignatureDoesNotMatch)",
                "check storage.s3.secret_key or AWS_SECRET_ACCESS_KEY",
            )
        return EdgewatchError(
            f"access key '{key}' may not use {self._where()} ({code})",
            "grant it s3:ListBucket and s3:PutObject on the bucket, or use other credentials",
        )


def open_object_store(storage: StorageConfig) -> ObjectStore | None:
    """An `ObjectStore` when `storage.s3` is set; None when the local folder is the only store."""
    return ObjectStore(storage) if storage.s3 is not None else None


def _connect(s3: S3Config) -> _Connection:
    """boto3 clients for `s3`; they make one attempt per call because the worker does the backoff."""
    try:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError:
        raise EdgewatchError("storage.s3 needs boto3", "pip install 'edgewatch[s3]'") from None
    if s3.endpoint is not None:
        _check_endpoint(s3.endpoint)
    if (s3.access_key is None) != (s3.secret_key is None):
        raise EdgewatchError("storage.s3 has only one of access_key and secret_key", "give both, or neither")
    try:
        session = boto3.Session(
            aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key, region_name=s3.region
        )
        once: Any = {"total_max_attempts": 1}
        check = session.client(
            "s3", endpoint_url=s3.endpoint, config=Config(connect_timeout=3, read_timeout=10, retries=once)
        )
        upload = session.client(
            "s3", endpoint_url=s3.endpoint, config=Config(connect_timeout=5, read_timeout=60, retries=once)
        )
        credentials = session.get_credentials()
    except (ValueError, BotoCoreError) as error:
        raise EdgewatchError(
            f"storage.s3: {_one_line(error)}", "check storage.s3.endpoint (e.g. http://127.0.0.1:8333) and region"
        ) from None
    # the parts of a large clip go one after another on the worker thread: no threads outside our
    # stages, and an edge uplink gains little from parallel parts
    transfer = TransferConfig(use_threads=False)
    return _Connection(check, upload, transfer, credentials.access_key if credentials else None)


def _check_endpoint(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number, or above 65535
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or " " in endpoint:
        raise EdgewatchError(
            f"storage.s3.endpoint '{endpoint}' is not an http(s) URL",
            "write it as scheme://host[:port], e.g. http://127.0.0.1:8333",
        )


def _open_queue(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a queued file must survive a power cut, not only a killed process; enqueues are rare
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS uploads "
            "(id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, queued REAL NOT NULL)"
        )
        db.commit()
    except (OSError, sqlite3.Error) as error:
        raise EdgewatchError(
            f"cannot open the upload queue {path}: {error}",
            "make storage.path writable; if the file is damaged, move it away (its queued uploads are lost)",
        ) from None
    return db


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
