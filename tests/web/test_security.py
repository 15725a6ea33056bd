"""What the server promises every request (docs/security.md), through the `edgewatch` command and
its HTTP API: it answers only to its own names, a network server needs a strong token, no other site
and no request without the page's CSRF token can write, bodies are capped without being read whole,
errors are a 4xx with one line that never repeats the input, nothing a GET does changes a file, and
a port it cannot have is one line and exit code 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from brokers import free_port
from media import edgewatch_command, wait_until_serving

SITE = """
cameras:
  street:
    source: synthetic:street?seed=2&seconds=2
"""
STRONG = "Vq3kP9xZ-2mLrT7w_Yb4Nc8e"  # as secrets.token_urlsafe(18) makes them


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes, to tell whether anything at all was written."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def one_line(answer: httpx.Response) -> str:
    """The reason of an error answer, checked to be one short line."""
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and 0 < len(detail) <= 300, detail
    return detail


def without_token() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "EDGEWATCH_TOKEN"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """`edgewatch run site.yaml --serve PORT` (its input ends, the page keeps serving), its URL and log."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "site.yaml").write_text(SITE)
    url = f"http://127.0.0.1:{free_port()}"
    with open(folder / "run.log", "wb") as log:
        run = subprocess.Popen(
            edgewatch_command("run", "site.yaml", "--serve", urlsplit(url).netloc, "--quiet"),
            cwd=folder, stderr=log, env=without_token(),
        )  # fmt: skip
        wait_until_serving(url, run, lambda: (folder / "run.log").read_text())
        yield url, folder / "run.log"
        run.send_signal(signal.SIGINT)
        run.wait(20)


def test_the_server_answers_only_to_the_names_it_is_bound_to(site):
    url, _ = site
    port = urlsplit(url).port
    for host in ["evil.example", f"evil.example:{port}", f"127.0.0.1.nip.io:{port}", f"localhost.evil.example:{port}"]:
        answer = httpx.get(f"{url}/api/cameras", headers={"Host": host})
        assert answer.status_code == 400, host  # a rebound DNS name reaches the socket, not the API
        assert "street" not in answer.text and "evil" not in one_line(answer)
    for host in [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"]:
        assert httpx.get(f"{url}/api/cameras", headers={"Host": host}).status_code == 200, host


def test_bad_queries_and_names_are_a_4xx_with_one_line_and_no_traceback(site):
    url, log = site
    for path in [
        "/api/events?since=garbage",
        "/api/events?until=2026-13-45",
        "/api/series?since=garbage",
        "/api/series?until=2026-02-30T10:00",
        "/media/street%00.jpg",
        "/media/" + "x" * 5000,
        "/static/" + "y" * 5000,
    ]:
        answer = httpx.get(url + path)
        assert 400 <= answer.status_code < 500, (path[:40], answer.status_code)
        assert "x" * 100 not in one_line(answer) and "garbage" not in one_line(answer)
    # what the page's date pickers and a user type are still times
    for since in ["2026-11-22", "2026-11-22T10:00", "2026-11-22T10:00:00.123Z", "2026-11-22T10:00:00+01:00"]:
        assert httpx.get(f"{url}/api/events", params={"since": since}).status_code == 200, since
        assert httpx.get(f"{url}/api/series", params={"until": since}).status_code == 200, since
    assert "Traceback" not in log.read_text()


def test_a_network_server_needs_a_strong_token_and_answers_only_its_own_names(tmp_path):
    (tmp_path / "site.yaml").write_text(SITE)
    for weak in ["x", "a" * 24]:  # short, and long but one character
        refused = subprocess.run(
            edgewatch_command("run", "site.yaml", "--serve", f"0.0.0.0:{free_port()}", "--quiet"),
            cwd=tmp_path, capture_output=True, timeout=60, env={**without_token(), "EDGEWATCH_TOKEN": weak},
        )  # fmt: skip
        lines = refused.stderr.decode().strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, refused.stderr
        assert "secrets.token_urlsafe" in lines[0]
        assert len(weak) < 4 or weak not in lines[0]  # a token is never printed
    port = free_port()
    with open(tmp_path / "run.log", "wb") as log:
        run = subprocess.Popen(
            edgewatch_command("run", "site.yaml", "--serve", f"0.0.0.0:{port}", "--quiet"),
            cwd=tmp_path, stderr=log, env={**without_token(), "EDGEWATCH_TOKEN": STRONG},
        )  # fmt: skip
        try:
            bearer = {"Authorization": f"Bearer {STRONG}"}
            wait_until_serving(f"http://127.0.0.1:{port}", run, lambda: (tmp_path / "run.log").read_text(), bearer)
            cameras = f"http://127.0.0.1:{port}/api/cameras"
            assert httpx.get(cameras, headers={**bearer, "Host": f"evil.example:{port}"}).status_code == 400
            assert httpx.get(cameras, headers={"Host": "evil.example"}).status_code == 400  # before the token
            assert httpx.get(cameras, headers={**bearer, "Host": f"192.0.2.7:{port}"}).status_code == 200  # any address
            assert httpx.get(cameras, headers={**bearer, "Host": f"{socket.gethostname()}:{port}"}).status_code == 200
            assert httpx.get(cameras, headers={"Host": f"192.0.2.7:{port}"}).status_code == 401
        finally:
            run.send_signal(signal.SIGINT)
            run.wait(20)


def test_a_weak_token_on_loopback_is_allowed_with_a_warning(tmp_path):
    (tmp_path / "site.yaml").write_text(SITE)
    port = free_port()
    with open(tmp_path / "run.log", "wb") as log:
        run = subprocess.Popen(
            edgewatch_command("run", "site.yaml", "--serve", str(port), "--quiet"),
            cwd=tmp_path, stderr=log, env={**without_token(), "EDGEWATCH_TOKEN": "pets"},
        )  # fmt: skip
        try:
            bearer = {"Authorization": "Bearer pets"}
            wait_until_serving(f"http://127.0.0.1:{port}", run, lambda: (tmp_path / "run.log").read_text(), bearer)
        finally:
            run.send_signal(signal.SIGINT)
            run.wait(20)
    warning = (tmp_path / "run.log").read_text()
    assert "secrets.token_urlsafe" in warning and "pets" not in warning


def test_a_write_from_another_site_or_without_the_pages_token_is_refused(review_server, voc_folder):
    before = files_in(voc_folder)
    save = f"{review_server}/api/review/voc/save?format=coco"
    edit = f"{review_server}/api/review/voc/images/a.jpg"
    body = {"state": "reviewed", "boxes": []}
    page = httpx.Client()  # a browser session, as the page has it
    token = page.get(f"{review_server}/api/csrf").json()["token"]
    other = httpx.Client()
    other.get(f"{review_server}/api/csrf")
    stranger = httpx.Client()
    refused = [
        stranger.post(save),  # a script, or a form whose browser sent no Origin
        stranger.put(edit, json=body),
        stranger.post(save, headers={"X-CSRF-Token": "made-up"}),
        page.post(save),  # the session alone is not enough
        other.post(save, headers={"X-CSRF-Token": token}),  # a token belongs to its own session
        page.post(save, headers={"X-CSRF-Token": token, "Origin": "http://127.0.0.1:9"}),  # another port
        page.post(save, headers={"X-CSRF-Token": token, "Origin": "null"}),
        page.post(save, headers={"X-CSRF-Token": token, "Origin": "http://evil.example"}),
        page.put(edit, json=body, headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "same-site"}),
        page.post(save, headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}),
    ]
    assert [answer.status_code for answer in refused] == [403] * len(refused)
    assert all(one_line(answer) for answer in refused)
    assert files_in(voc_folder) == before  # not a byte written

    same_origin = {"X-CSRF-Token": token, "Origin": review_server, "Sec-Fetch-Site": "same-origin"}
    assert page.put(edit, json=body, headers=same_origin).status_code == 200
    assert page.post(save, headers=same_origin).status_code == 200
    assert page.post(save, headers={"X-CSRF-Token": token}).status_code == 200  # a script with its session
    assert json.loads((voc_folder / "annotations.json").read_text())["images"]


def test_no_get_route_writes_a_file(review_server, voc_folder):
    listed = httpx.get(f"{review_server}/openapi.json").json()["paths"]
    paths = [path for path, methods in listed.items() if "get" in methods] + ["/", "/review", "/static/review.js"]
    assert len(paths) >= 6
    before = files_in(voc_folder)
    for path in paths:
        answer = httpx.get(review_server + path.replace("{folder}", "voc").replace("{name}", "a.jpg"))
        assert answer.status_code < 400, path
    assert files_in(voc_folder) == before


def test_a_body_over_the_limit_is_refused_before_it_is_read(review_server, voc_folder):
    host, port = urlsplit(review_server).hostname, urlsplit(review_server).port
    with socket.create_connection((host, port), timeout=20) as raw:
        raw.sendall(
            b"PUT /api/review/voc/images/a.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 300000000\r\n\r\n" + b"[" * 65536
        )  # 300 MB announced, 64 KB sent: the answer comes without the rest
        assert raw.recv(64).startswith(b"HTTP/1.1 413")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"state": "reviewed", "boxes": ["'
        for _ in range(48):
            yield b"x" * 65536
        yield b'"]}'

    page = httpx.Client(base_url=review_server)  # with the page's session: the route reads the body
    page.headers["X-CSRF-Token"] = page.get("/api/csrf").json()["token"]
    streamed = page.put("/api/review/voc/images/a.jpg", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and "MB" in one_line(streamed)
    assert len(streamed.content) < 300


def test_a_refused_body_is_not_echoed_and_1e309_is_not_a_number(review_server, voc_folder, tmp_path):
    page = httpx.Client(base_url=review_server)
    page.headers["X-CSRF-Token"] = page.get("/api/csrf").json()["token"]
    before = files_in(voc_folder)
    large = page.put("/api/review/voc/images/a.jpg", json={"state": "reviewed", "boxes": "x" * 1_000_000})
    assert large.status_code == 422 and len(large.content) < 300 and "xxxx" not in one_line(large)
    box = '{"id": 0, "label": "car", "xyxy": [10, 20, 1e309, 70], "status": "accepted"}'
    infinite = page.put(
        "/api/review/voc/images/a.jpg", content=f'{{"state": "reviewed", "boxes": [{box}]}}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert infinite.status_code == 422 and "finite" in one_line(infinite)
    nan = page.put(
        "/api/review/voc/images/a.jpg", content=box.replace("1e309", "NaN").join(['{"state": "reviewed", "boxes": [', "]}"]),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert nan.status_code == 422 and "finite" in one_line(nan)
    assert files_in(voc_folder) == before
    assert "Traceback" not in (tmp_path / "review.log").read_text()


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr.decode()
    assert lines[0].startswith("edgewatch: error: ")
    return lines[0]


def test_a_taken_port_is_one_line_and_exit_code_2(tmp_path, voc_folder):
    (tmp_path / "site.yaml").write_text(SITE)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        for command in [
            ("run", "site.yaml", "--serve", str(port), "--quiet"),
            ("review", str(voc_folder), "--serve", str(port)),
        ]:
            line = _one_error_line(
                subprocess.run(edgewatch_command(*command), cwd=tmp_path, capture_output=True, timeout=60)
            )
            assert "taken" in line and str(port) in line


def test_a_port_out_of_range_is_not_blamed_on_a_taken_port(tmp_path, voc_folder):
    (tmp_path / "site.yaml").write_text(SITE)
    for command in [
        ("run", "site.yaml", "--serve", "99999", "--quiet"),
        ("review", str(voc_folder), "--serve", "99999"),
    ]:
        line = _one_error_line(
            subprocess.run(edgewatch_command(*command), cwd=tmp_path, capture_output=True, timeout=60)
        )
        assert "taken" not in line and "99999" in line, line
