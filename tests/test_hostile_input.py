"""Bad and hostile input: a 4xx JSON answer, never a 500 or a stall; everything kept is bounded.

Issue items 6 (bad input is a 4xx), 7 (webhook bodies), 8 (what unauthenticated events store and
do), 11 (caches bounded by count and bytes) and 12 (an overall media deadline).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st

from relaxml import Context, LabelStudioModel, Settings, Task, create_app
from relaxml._server.batching import MicroBatcher
from relaxml._server.bodies import nests_deeper
from relaxml._server.outputcheck import KEY_CHARS, MAX_REMEMBERED, OutputCheck
from relaxml._training.store import TrainingStore
from relaxml.labels import labelconfig
from relaxml.labels.validation import Problem
from relaxml.labelstudio.client import LabelStudioClient
from relaxml.labelstudio.media import MediaError, MediaFetcher
from relaxml.projects import Project, ProjectRegistry
from relaxml.protocol import SetupRequest, depth_exceeds

from .conftest import POST_ROUTES, backend_of, wait_for
from .support.httpfakes import FakeServer, Reply
from .support.models import Echo, Trainable

MiB = 1024 * 1024
AUTH = {"Authorization": "Basic " + base64.b64encode(b"ls:s3cret").decode()}
CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text"><Choice value="positive"/></Choices></View>'
)


def tasks(*ids: int) -> list[dict[str, Any]]:
    return [{"id": i, "data": {"text": f"t{i}"}} for i in ids]


def asgi_post(
    client: Any, path: str, chunks: Iterator[bytes], headers: dict[str, str]
) -> tuple[int, dict[str, Any], int]:
    """POST a streamed body straight to the app; (status, JSON answer, bytes the app consumed)."""
    consumed = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    client.portal.call(client.app, scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), consumed


def endless(size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"action": "ANNOTATION_CREATED", "annotation": {"result": "'
    while True:
        yield b"x" * size


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Any]:
    """Serve apps with uvicorn on 127.0.0.1 in a thread; return (host, port)."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(model: type[LabelStudioModel], **settings: Any) -> tuple[str, int]:
        settings.setdefault("data_dir", str(tmp_path / f"data{len(running)}"))
        app = create_app(model, Settings(**settings))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread))
        wait_for(lambda: server.started)
        return sock.getsockname()

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(15)


def http_get(address: tuple[str, int], path: str) -> tuple[int, float]:
    started = time.monotonic()
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), time.monotonic() - started


# Item 6: bad input is a 4xx, never a 500


@pytest.mark.parametrize("path", POST_ROUTES)
def test_json_nested_5000_deep_is_a_400_on_every_post_route(serve, path):
    client = serve(Echo)
    for body in ("[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000):
        answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "bad_request"
        assert "100 levels deep" in answer.json()["detail"]
    assert client.get("/health").json()["status"] == "UP"


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_lone_surrogate_is_a_400_on_every_post_route(serve, path):
    client = serve(Echo)
    bodies = (
        b'{"project": "\\ud800", "job": "\\udfff", "config": "\\uDBFF", "action": "\\ud800"}',
        b'{"\\ud800": 1}',
    )
    for body in bodies:
        answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
        assert "lone UTF-16 surrogate" in answer.json()["detail"]
    # raw surrogate bytes, which json.loads on bytes would let through, are not UTF-8
    raw = b'{"project": "\xed\xa0\x80", "job": "\xed\xa0\x80", "action": "\xed\xa0\x80"}'
    answer = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "can't decode byte 0xed" in answer.json()["detail"]
    assert client.get("/health").json()["status"] == "UP"


def test_a_surrogate_pair_is_text_and_accepted(serve):
    client = serve(Echo)
    body = b'{"tasks": [{"id": 1, "data": {"text": "\\ud83d\\ude00 \xf0\x9f\x98\x80"}}]}'
    answer = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text


def test_json_nested_past_the_limit_is_refused_and_within_it_accepted(serve):
    client = serve(Echo)

    def nested(depth: int) -> dict[str, Any]:
        value: Any = "deep"
        for _ in range(depth - 4):  # the body, the tasks list, the task and its data: 4 levels
            value = {"x": value}
        return {"tasks": [{"id": 1, "data": {"text": "t", "n": value}}]}

    assert client.post("/predict", json=nested(100)).status_code == 200
    answer = client.post("/predict", json=nested(101))
    assert answer.status_code == 400
    assert "more than 100 levels deep" in answer.json()["detail"]
    for extra in ("[" * 5000 + "]" * 5000, "[" * 101 + "]" * 101):  # a JSON string inside JSON
        answer = client.post("/setup", json={"project": "1.1", "extra_params": extra})
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "extra_params"


def test_a_project_uid_with_a_unicode_digit_is_no_500(serve):
    client = serve(Echo)
    for uid in ("²", "²³.17", "\u0661\u0662.5"):  # superscripts, Arabic-Indic digits
        answer = client.post("/predict", json={"project": uid, "tasks": tasks(1)})
        assert answer.status_code == 200, answer.text
        assert backend_of(client).projects.get(uid).id is None
        assert client.post("/setup", json={"project": uid, "schema": CONFIG}).status_code == 200
        assert client.post("/delete", json={"project": uid}).json()["status"] == "ok"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/jobs/run-99999999999999999999"),
        ("GET", "/jobs/event-99999999999999999999"),
        ("GET", "/jobs/run-9223372036854775808"),
        ("GET", "/jobs/run-²"),
        ("GET", "/jobs/event-\u0661"),  # ARABIC-INDIC DIGIT ONE
        ("POST", "/jobs/run-99999999999999999999/cancel"),
        ("POST", "/jobs/run-²/cancel"),
    ],
)
def test_an_impossible_job_id_is_a_404(serve, method, path):
    client = serve(Trainable)
    answer = client.request(method, path)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "not_found"
    job = path.split("/")[2]
    answer = client.post("/job_status", json={"job": job})
    assert answer.status_code == 404, answer.text


def test_unicode_digits_in_job_ids_and_headers_are_not_numbers(serve):
    backend = backend_of(serve(Trainable))
    for job in ("run-²", "event-²", "run-١٢", "run-99999999999999999999"):
        assert backend.trainer.lookup(job) is None
        assert backend.trainer.cancel(job) is None
    slept: list[float] = []
    client = LabelStudioClient("http://127.0.0.1:9", None, sleep=slept.append, max_backoff=5)
    client._pause(0, "²")  # a Retry-After that str.isdigit() takes for a number
    assert len(slept) == 1
    assert slept[0] <= 5


@pytest.mark.parametrize("delivery", ["inline", "background"])
@pytest.mark.parametrize("task_id", [2**63, 2**63 + 5, -(2**63) - 1, 10**30])
def test_a_task_id_beyond_64_bits_is_a_422_naming_the_field(serve, delivery, task_id):
    client = serve(Echo, delivery=delivery)
    answer = client.post("/predict", json={"project": "3.1", "tasks": [*tasks(1), *tasks(task_id)]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "tasks[1].id"
    assert "64-bit" in answer.json()["detail"]
    ok = client.post("/predict", json={"project": "3.1", "tasks": tasks(2**63 - 1, -(2**63))})
    assert ok.status_code == 200, ok.text


def test_a_huge_project_number_in_background_mode_is_no_500(serve):
    client = serve(Echo, delivery="background")
    answer = client.post("/predict", json={"project": "99999999999999999999.1", "tasks": tasks(1)})
    assert answer.status_code == 200, answer.text
    big = {"id": 2, "data": {"text": "x"}, "project": 2**70}
    assert client.post("/predict", json={"tasks": [big]}).status_code == 200


@pytest.mark.parametrize(
    "hostname",
    ["ls-host:8080", "localhost", "ftp://ls-host", "http://", "http:///x", "http://h:99999", "//h"],
)
@pytest.mark.parametrize("delivery", ["inline", "background"])
def test_a_setup_hostname_without_scheme_or_host_is_a_422_and_predict_still_works(
    serve, hostname, delivery
):
    client = serve(Echo, delivery=delivery)
    answer = client.post("/setup", json={"project": "3.1", "schema": CONFIG, "hostname": hostname})
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "hostname"
    assert client.post("/predict", json={"project": "3.1", "tasks": tasks(1)}).status_code == 200
    fine = client.post("/setup", json={"project": "4.1", "hostname": " http://ls:8080/ "})
    assert fine.status_code == 200
    assert backend_of(client).projects.get("4.1").hostname == "http://ls:8080/"


@pytest.mark.parametrize("delivery", ["inline", "background"])
def test_a_project_already_known_with_a_bad_hostname_predicts_without_a_500(serve, delivery):
    client = serve(Echo, delivery=delivery)
    backend = backend_of(client)
    # as an older relaxml, which did not check the hostname, would have stored it
    backend.projects.update_from_setup(SetupRequest("5.1", CONFIG, hostname="ls-host:8080"))
    answer = client.post("/predict", json={"project": "5.1", "tasks": tasks(1, 2)})
    assert answer.status_code == 200, answer.text


# Item 7: webhook bodies


def test_a_large_webhook_body_is_refused_without_being_read_whole(serve):
    client = serve(Trainable, basic_auth_user="ls", basic_auth_pass="s3cret")
    headers = {"Content-Type": "application/json"}
    status, body, consumed = asgi_post(client, "/webhook", endless(), headers)
    assert status == 413
    assert body["error"] == "body_too_large"
    assert "RELAXML_WEBHOOK_MAX_BODY_SIZE" in body["detail"]
    assert MiB < consumed <= MiB + 128 * 1024  # stopped at the limit, not at the end

    declared = {**headers, "Content-Length": str(300 * MiB)}
    status, body, consumed = asgi_post(client, "/webhook", endless(), declared)
    assert status == 413
    assert consumed == 0  # refused from Content-Length alone

    small = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 1}})
    assert small.status_code == 200


def test_the_webhook_limit_is_configurable_and_train_keeps_the_big_limit(serve):
    client = serve(Trainable, webhook_max_body_size=2048)
    payload = {"action": "ANNOTATION_CREATED", "annotation": {"result": "x" * 4096}}
    assert client.post("/webhook", json=payload).status_code == 413
    legacy = {"project": "1.1", "annotations": [{"id": 1, "data": {"text": "x" * 100_000}}]}
    assert client.post("/train", json=legacy).status_code == 200


def test_strict_mode_refuses_an_unauthenticated_webhook_before_reading_it(serve):
    client = serve(Trainable, basic_auth_user="ls", basic_auth_pass="s3cret", webhook_auth="strict")
    status, body, consumed = asgi_post(client, "/webhook", endless(), {})
    assert status == 401
    assert body["error"] == "unauthorized"
    assert consumed == 0
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 1}}
    assert client.post("/webhook", json=event, headers=AUTH).status_code == 200


def test_a_300_mb_webhook_over_http_is_refused_fast_and_health_stays_responsive(live):
    address = live(Trainable, basic_auth_user="ls", basic_auth_pass="s3cret")
    # declared 300 MB: refused from the header
    with socket.create_connection(address, timeout=10) as conn:
        started = time.monotonic()
        conn.sendall(
            f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {300 * MiB}\r\n\r\n".encode()
        )
        conn.sendall(b'{"action": "' + b"x" * (256 * 1024))
        answer = conn.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
        assert time.monotonic() - started < 5
    # chunked, without a length: refused while streaming; the client is told before it is done
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * (256 * 1024)
        sent = 0
        conn.settimeout(0.05)
        answer = b""
        while not answer and sent < 300 * MiB:
            try:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                answer = conn.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            status, seconds = http_get(address, "/health") if sent % (4 * MiB) == 0 else (0, 0)
            assert status in (0, 401)  # answered (401: auth is on)
            assert seconds < 2
        conn.settimeout(10)
        answer = answer or conn.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
        assert sent < 64 * MiB  # stopped long before 300 MB
    status, seconds = http_get(address, "/health")
    assert status == 401
    assert seconds < 2


# Item 8: what unauthenticated event webhooks can store and do


def test_an_unauthenticated_project_updated_does_not_rewrite_the_label_config(serve):
    client = serve(Trainable, basic_auth_user="ls", basic_auth_pass="s3cret")
    backend = backend_of(client)
    client.post("/setup", json={"project": "7.1", "schema": CONFIG}, headers=AUTH)
    forged = {"action": "PROJECT_UPDATED", "project": {"id": 7, "label_config": "<View/>"}}
    assert client.post("/webhook", json=forged).status_code == 200
    assert backend.projects.get("7.1").label_config == CONFIG
    assert client.post("/webhook", json=forged, headers=AUTH).status_code == 200
    assert backend.projects.get("7.1").label_config == "<View/>"


def test_project_updated_rewrites_the_label_config_when_auth_is_off(serve):
    client = serve(Trainable)
    client.post("/setup", json={"project": "7.1", "schema": CONFIG})
    update = {"action": "PROJECT_UPDATED", "project": {"id": 7, "label_config": "<View/>"}}
    assert client.post("/webhook", json=update).status_code == 200
    assert backend_of(client).projects.get("7.1").label_config == "<View/>"


def test_fit_is_told_which_events_came_without_credentials(serve):
    client = serve(Trainable, basic_auth_user="ls", basic_auth_pass="s3cret")
    model = backend_of(client).model
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 8}, "annotation": {"id": 1}}
    assert client.post("/webhook", json=event).json()["status"] == "accepted"
    wait_for(lambda: model.events)
    assert model.events[-1].authenticated is False
    assert model.events[-1].annotations == [{"id": 1}]
    assert client.post("/webhook", json=event, headers=AUTH).status_code == 200
    wait_for(lambda: len(model.events) == 2)
    assert model.events[-1].authenticated is True


def test_queued_events_are_bounded_by_count_per_project_and_by_bytes(serve):
    client = serve(
        Trainable, train_every=10_000, max_queued_events=5, max_queued_event_bytes=40_000
    )
    store = backend_of(client).training_store
    for i in range(20):
        event = {"action": "ANNOTATION_CREATED", "project": {"id": 9}, "annotation": {"id": i}}
        assert client.post("/webhook", json=event).status_code == 200
    assert store.pending() == {"9": 5}
    big = "x" * 15_000
    for i in range(4):
        event = {
            "action": "ANNOTATION_CREATED",
            "project": {"id": 10 + i},
            "annotation": {"r": big},
        }
        assert client.post("/webhook", json=event).status_code == 200
    sizes = store._db.read(
        lambda db: db.execute(
            "SELECT project, LENGTH(payload) FROM training_events WHERE run_id IS NULL"
        ).fetchall()
    )
    assert sum(size for _, size in sizes) <= 40_000
    assert {p for p, _ in sizes} >= {"10", "11", "12", "13"}  # trimmed, not dropped
    # a trimmed event still trains, with its action and project
    model = backend_of(client).model
    client.post("/train", json={"project": "10.1"})
    wait_for(lambda: model.events)
    assert model.events[-1].project_id == 10


def test_a_trimmed_event_stays_marked_unauthenticated(serve):
    client = serve(
        Trainable,
        basic_auth_user="ls",
        basic_auth_pass="s3cret",
        train_every=10_000,
        max_queued_event_bytes=40_000,  # each event below stores about 30,000 (raw and lists)
    )
    model = backend_of(client).model
    event = {
        "action": "ANNOTATION_CREATED",
        "project": {"id": 12},
        "annotation": {"r": "x" * 15_000},
    }
    assert client.post("/webhook", json=event).status_code == 200
    assert client.post("/webhook", json=event, headers=AUTH).status_code == 200  # trims the first
    client.post("/train", json={"project": "12.1"}, headers=AUTH)
    wait_for(lambda: model.events)
    assert model.events[-1].coalesced == 3
    assert model.events[-1].authenticated is False
    assert len(model.events[-1].annotations) == 1  # the trimmed one's payload is gone


def test_a_finished_run_drops_its_event_payloads_and_old_records_go(serve):
    client = serve(Trainable)
    backend = backend_of(client)
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 11}, "annotation": {"r": "x" * 5000}}
    job = client.post("/webhook", json=event).json()["job"]
    wait_for(lambda: client.get(f"/jobs/{job}").json().get("state") == "succeeded")
    store = backend.training_store
    payloads = store._db.read(
        lambda db: db.execute("SELECT payload FROM training_events").fetchall()
    )
    assert payloads == [("{}",)]
    assert store.prune(retention=0) == 1
    assert client.get(f"/jobs/{job}").status_code == 404


def test_training_store_bounds_hold_across_many_projects(tmp_path):
    store = TrainingStore(tmp_path / "db.sqlite3", max_events=3, max_bytes=10_000)
    try:
        for i in range(300):
            store.add_event(str(i % 30), "ANNOTATION_CREATED", {"annotations": [{"r": "x" * 500}]})
        assert max(store.pending().values()) == 3
        total = store._db.read(
            lambda db: db.execute(
                "SELECT SUM(LENGTH(payload)) FROM training_events WHERE run_id IS NULL"
            ).fetchone()[0]
        )
        assert total <= 10_000
    finally:
        store.close()


# Item 11: every cache bounded by count and bytes


def test_the_project_registry_is_bounded_by_count(serve):
    client = serve(Echo, max_projects=50)
    backend = backend_of(client)
    for i in range(200):
        uid = f"{i}.1"
        assert (
            client.post("/setup", json={"project": uid, "schema": CONFIG + " " * i}).status_code
            == 200
        )
        assert (
            client.post("/predict", json={"project": f"p{i}", "tasks": tasks(i)}).status_code == 200
        )
    assert len(backend.projects) == 50
    assert backend.projects.get("199.1") is not None  # the most recent stay
    assert backend.projects.get("0.1") is None


def test_the_project_registry_is_bounded_by_bytes_and_skips_huge_configs():
    registry = ProjectRegistry(max_projects=1000, max_bytes=1_000_000)
    for i in range(50):
        registry.update_from_setup(SetupRequest(f"{i}.1", "<View/>" + " " * 100_000 + str(i)))
        assert registry.size <= 1_000_000
    assert len(registry) == 9
    assert registry.size == sum(len(p.label_config or "") + len(p.uid) for p in registry.all())
    huge = "<View/>" + " " * 5_000_001
    project, _ = registry.update_from_setup(SetupRequest("99.1", huge))
    assert project.label_config is None


def test_the_label_config_parse_cache_is_bounded_by_count_and_memory(monkeypatch):
    budget = 40_000 * labelconfig.BYTES_PER_CHAR
    cache = labelconfig._ParseCache(size=8, budget=budget)
    monkeypatch.setattr(labelconfig, "_cache", cache)
    for i in range(100):
        config = CONFIG.replace("positive", f"label{i}") + " " * (i * 150)
        parsed = labelconfig.parse_label_config(config)
        assert labelconfig.parse_label_config(config) is parsed
        assert len(cache) <= 8
        assert cache.held <= budget
    big = CONFIG + " " * 20_000  # over half of the budget: parsed, not kept
    labelconfig.parse_label_config(big)
    assert cache.get(big) is None


def test_media_fetchers_are_bounded_and_evicted_ones_closed(serve):
    client = serve(Echo)
    backend = backend_of(client)
    closed: list[Any] = []
    for i in range(100):
        client.post(
            "/setup",
            json={"project": f"{i}.1", "hostname": "http://ls:8080", "access_token": f"t{i}"},
        )
        assert (
            client.post("/predict", json={"project": f"{i}.1", "tasks": tasks(i)}).status_code
            == 200
        )
        if i == 0:
            first = next(iter(backend.media._fetchers.values()))
            first.close = lambda: closed.append(True)
    assert len(backend.media) == 32
    assert closed == [True]


def test_remembered_check_problems_are_bounded_by_count_and_length(caplog):
    check = OutputCheck("warn", "M.predict")
    task = Task(1, {})
    for i in range(MAX_REMEMBERED + 500):
        check._report(task, [Problem("unknown-label", f"label {i} {'x' * 1000}")])
    assert len(check._reported) == MAX_REMEMBERED
    assert max(len(key) for key in check._reported) <= KEY_CHARS


def test_open_micro_batches_are_bounded(monkeypatch):
    monkeypatch.setattr("relaxml._server.batching.MAX_OPEN", 4)
    direct: list[str] = []

    async def run(batch: list[Task], context: Context) -> list[Any]:
        if len(batcher._open) >= 4:
            direct.append(context.project.uid)
        return [None] * len(batch)

    async def main() -> None:
        nonlocal batcher
        async with anyio.create_task_group() as group:
            batcher = MicroBatcher(run, group, max_size=10, timeout=0.5)
            async with anyio.create_task_group() as calls:
                for i in range(20):
                    context = Context(project=Project(uid=f"{i}"), label_config=None)
                    calls.start_soon(batcher.submit, [Task(i, {})], context)
                await anyio.sleep(0.1)
                assert len(batcher._open) == 4
            assert not batcher._open

    batcher: Any = None
    anyio.run(main)
    assert len(direct) == 16


# Item 12: an overall media deadline


def trickle(count: int = 10_000) -> Iterator[bytes]:
    for _ in range(count):
        yield b"x"


@pytest.mark.parametrize("length", [True, False])
def test_a_trickling_server_is_cut_off_at_the_deadline(tmp_path, length):
    headers = {"Content-Length": "10000"} if length else {}
    server = FakeServer(lambda seen: Reply(body=trickle(), headers=headers, pause=0.2)).start()
    try:
        with MediaFetcher(None, tmp_path / "cache", timeout=5.0, deadline=1.0) as fetcher:
            started = time.monotonic()
            with pytest.raises(MediaError, match="took longer than the 1 s deadline"):
                fetcher.path(f"{server.url}/slow.png")
            assert time.monotonic() - started < 2.5  # the deadline, not the 5 s read timeout
        assert not list((tmp_path / "cache").rglob("*.png"))
    finally:
        server.stop()


class Fetches(LabelStudioModel):
    """Downloads each task's image before predicting."""

    model_version = "fetch-1"

    def predict(self, tasks: list[Task], context: Context) -> list[Any]:
        for task in tasks:
            context.local_path(task.data["image"], task)
        return [None for _ in tasks]


def test_a_trickling_server_does_not_hold_the_predict_slot(serve):
    server = FakeServer(lambda seen: Reply(body=trickle(), pause=0.2)).start()
    try:
        client = serve(Fetches, media_deadline=1.0)
        started = time.monotonic()
        answer = client.post(
            "/predict", json={"tasks": [{"id": 1, "data": {"image": f"{server.url}/a.png"}}]}
        )
        assert answer.status_code == 500
        assert "deadline" in answer.json()["detail"]
        assert time.monotonic() - started < 3
        assert client.get("/health").status_code == 200
    finally:
        server.stop()


def _depth(value: Any) -> int:
    """The nesting depth of arrays and objects, by plain recursion (the reference)."""
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=3),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
        ),
        max_leaves=40,
    )
)
@settings(max_examples=300, deadline=None)
def test_depth_check_agrees_with_plain_recursion(value):
    value = json.loads(json.dumps(value))  # what the server sees: json.loads output
    depth = _depth(value)
    for limit in (max(depth - 1, 0), depth, depth + 1):
        assert depth_exceeds(value, limit) == (depth > limit)


_TRICKY_TEXT = st.text(alphabet='[]{}"\\/ab\u00e9\u4e2d\U0001f600\n', max_size=6)


@given(
    st.recursive(
        st.none() | st.integers() | _TRICKY_TEXT,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(_TRICKY_TEXT, inner, max_size=3)
        ),
        max_leaves=30,
    ),
    st.integers(min_value=0, max_value=12),
    st.booleans(),
    st.sampled_from([None, 1]),
)
@settings(max_examples=400, deadline=None)
def test_the_text_depth_check_is_exact_or_declines(value, wrap, ascii_only, indent):
    """`nests_deeper` reads the depth from the body's text: whatever the strings hold
    (brackets, quotes, backslashes, any script), its answer is the exact one, or None."""
    for _ in range(wrap):
        value = [value]
    body = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
    depth = _depth(value)
    for limit in (max(depth - 1, 0), depth, depth + 1):
        assert nests_deeper(body, limit) in (None, depth > limit)


def test_the_text_depth_check_answers_label_studio_bodies_itself():
    config = '<View>\n  <Text name="text" value="$text"/>\n</View>'  # escaped quotes, \n
    value = {"tasks": [{"id": 1, "data": {"text": "a \\ b"}}], "label_config": config}
    body = json.dumps(value).encode()
    assert nests_deeper(body, 4) is False  # the body, tasks, the task, its data: 4 deep
    assert nests_deeper(body, 3) is True
    ends_in_a_backslash = json.dumps({"a": "x\\", "b": [['\\"', "\\"]]}).encode()
    assert nests_deeper(ends_in_a_backslash, 3) is False
    assert nests_deeper(ends_in_a_backslash, 2) is True
    assert nests_deeper(b'{"s": "a]b"}', 5) is None  # a string holds a bracket: walk instead
    many = json.dumps({"s": "\n" * 300}).encode()
    assert nests_deeper(many, 5) is None  # escapes abound: walk instead
    chains = ("[" + ",".join(["[" * 99 + "]" * 99] * 50) + "]").encode()
    assert nests_deeper(chains, 100) is None  # slow to peel, level by level: walk instead


def test_strings_of_brackets_and_escaped_quotes_cannot_hide_depth(serve):
    """Strings that would lower the depth read from the text, were their escaped quotes
    taken for real ones: 150 levels deep is refused, 95 levels is served."""

    def body(depth: int) -> dict[str, Any]:
        value: Any = ['x\\"' + "]" * 60 + '\\"']  # a string: backslash, quote, brackets
        for _ in range(depth - 5):
            value = [value, '\\"' + "[" * 60 + '\\"']
        padding = "p" * 9000  # past the bracket count of short bodies
        return {"tasks": [{"id": 1, "data": {"deep": value, "pad": padding}}]}

    assert nests_deeper(json.dumps(body(150)).encode(), 100) in (None, True)
    client = serve(Echo)
    answer = client.post("/predict", json=body(150))
    assert answer.status_code == 400
    assert "more than 100 levels deep" in answer.json()["detail"]
    assert client.post("/predict", json=body(95)).status_code == 200


def test_a_long_body_nested_just_past_the_limit_is_refused_and_one_at_it_served(serve):
    def body(depth: int) -> dict[str, Any]:
        value: Any = "leaf"
        for _ in range(depth - 4):  # the body, the tasks list, the task and its data
            value = [value]
        return {"tasks": [{"id": 1, "data": {"deep": value, "pad": "p" * 9000}}]}

    client = serve(Echo)
    assert client.post("/predict", json=body(100)).status_code == 200
    answer = client.post("/predict", json=body(101))
    assert answer.status_code == 400
    assert "more than 100 levels deep" in answer.json()["detail"]


def test_warn_mode_checks_a_sample_within_a_budget_per_second(monkeypatch, caplog):
    """`warn` checks the first 8 predictions of a request and at most 200 a second in all;
    `error` checks every one."""
    from relaxml._server import outputcheck

    config = (
        '<View><Text name="t" value="$t"/>'
        '<Choices name="c" toName="t"><Choice value="a"/></Choices></View>'
    )
    bad = {
        "result": [
            {"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["zzz"]}}
        ],
        "score": 1.0,
        "model_version": "v",
    }
    checked: list[int] = []
    real = outputcheck.check_result

    def counting(config: str, result: Any) -> list[Problem]:
        checked.append(1)
        return real(config, result)

    monkeypatch.setattr(outputcheck, "check_result", counting)
    now = [1000.0]
    monkeypatch.setattr(outputcheck.time, "monotonic", lambda: now[0])
    check = OutputCheck("warn", "M.predict")
    tasks = [Task(i, {}) for i in range(100)]
    check(tasks, [bad] * 100, config)
    assert len(checked) == 8  # a sample of the request
    for _ in range(30):
        check(tasks[:1], [bad], config)
    assert len(checked) == 38  # the budget is not spent yet
    for _ in range(200):
        check(tasks[:1], [bad], config)
    assert len(checked) == 200  # the second's budget is spent
    now[0] += 0.5
    for _ in range(200):
        check(tasks[:1], [bad], config)
    assert len(checked) == 300  # half a second refills half of it
    strict = OutputCheck("error", "M.predict")
    checked.clear()
    with pytest.raises(Exception, match="zzz"):
        strict(tasks, [bad] * 100, config)
    assert len(checked) == 1  # refused at the first problem
