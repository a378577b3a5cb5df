"""Property-based fuzzing of every route: bad input is a JSON 4xx, never a 5xx or a stall.

Bodies are built from the requests a real Label Studio 1.23.2 sent (tests/fixtures), with one
field at a time replaced by a hostile value (deep nesting, huge integers, Unicode digits,
NaN-ish strings, lone surrogates, wrong types), plus arbitrary JSON and raw bytes; headers
(content type, authorization) and query strings are fuzzed too. Methods and paths, which
Starlette's TestClient would normalise, are sent as raw bytes to a real uvicorn on 127.0.0.1.
Every app runs twice: with Basic Auth off and on.

Properties of every answer: the status is below 500 (the fuzz model never raises), it is JSON,
an error is `{"error": str, "detail": str, ...}`, no answer carries a configured secret, and
`/health` still answers UP afterwards. Outbound calls (background delivery, access checks) go
to a fake Label Studio on loopback only: `LABEL_STUDIO_URL` is set, so no fuzzed hostname is
ever contacted.

Runs are derandomized (the same examples on every run, so that CI is reproducible and a
failure is never a fluke of the seed) and bounded: RELAXML_FUZZ_EXAMPLES sets the examples per
test (default 50), RELAXML_FUZZ_RANDOM=1 draws new examples each run to explore.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from relaxml import Context, LabelStudioModel, Settings, Task, TrainingEvent, create_app
from relaxml.testing import FakeLabelStudio

from .conftest import POST_ROUTES

KEY = "fuzz0ls0api0key0c0ffee0000000001"
USER, PASSWORD = "fuzzuser", "fuzz-basic-pass-7f3a9"
SECRETS = (KEY, PASSWORD)
UID = "1.1795846025"
CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text"><Choice value="positive"/></Choices></View>'
)

EXAMPLES = int(os.environ.get("RELAXML_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("RELAXML_FUZZ_RANDOM", "") != "1",
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

GET_ROUTES = ("/", "/health", "/versions", "/jobs", "/metrics")


class FuzzModel(LabelStudioModel):
    """Predicts one choice per task and trains without error: every 5xx is relaxml's."""

    model_version = "fuzz-1"

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        result = {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["positive"]},
        }
        return [{"result": [result], "score": 0.5} for _ in tasks]

    def fit(self, event: TrainingEvent) -> str | None:
        return None


# --- the apps under test ----------------------------------------------------------------------


@dataclass
class Target:
    """One served app: its TestClient, whether Basic Auth is on, the credentials header."""

    client: TestClient
    auth: bool

    @property
    def good_auth(self) -> dict[str, str]:
        if not self.auth:
            return {}
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def fake_ls() -> Iterator[FakeLabelStudio]:
    fake = FakeLabelStudio(api_key=KEY, accept_unknown_tasks=True)
    yield fake
    fake.close()


def _settings(tmp: Any, fake: FakeLabelStudio, auth: bool) -> Settings:
    values: dict[str, Any] = {
        "data_dir": str(tmp),
        "label_studio_url": fake.url,
        "label_studio_api_key": KEY,
        "delivery": "auto",
    }
    if auth:
        values.update(basic_auth_user=USER, basic_auth_pass=PASSWORD)
    return Settings(**values)


@pytest.fixture(scope="module", params=["auth-off", "auth-on"])
def target(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_ls: FakeLabelStudio,
) -> Iterator[Target]:
    auth = request.param == "auth-on"
    app = create_app(FuzzModel, _settings(tmp_path_factory.mktemp("fuzz"), fake_ls, auth))
    with TestClient(app, raise_server_exceptions=False) as client:
        found = Target(client, auth)
        # A known project, so that mutated bodies reach past "unknown project" answers.
        client.post("/setup", json=_setup_body(), headers=found.good_auth)
        yield found
        assert_alive(found)


def _setup_body() -> dict[str, Any]:
    return {"project": UID, "schema": CONFIG, "hostname": "http://127.0.0.1:9", "access_token": ""}


# --- checking answers -------------------------------------------------------------------------


def assert_json_answer(status: int, headers: Any, text: str, method: str, what: str) -> None:
    """No 5xx; JSON (but a redirect or /metrics); an error has `error` and `detail`; no
    configured secret in it."""
    assert status < 500, f"{what} answered {status}: {text[:400]}"
    for secret in SECRETS:
        assert secret not in text, f"{what}: a configured secret is in the answer"
    if method == "HEAD":
        return
    if status == 200 and what.split()[1].split("?")[0] == "/metrics":
        return  # Prometheus text, by design
    if status in (307, 308) and "location" in headers:
        return  # Starlette's redirect of a trailing slash (/health/ → /health), without a body
    content_type = headers.get("content-type", "")
    assert content_type.startswith("application/json"), f"{what}: {content_type!r} {text[:200]}"
    body = json.loads(text)
    if status >= 400:
        assert isinstance(body, dict), f"{what}: error body {text[:200]}"
        assert isinstance(body.get("error"), str), f"{what}: no 'error' in {text[:200]}"
        assert isinstance(body.get("detail"), str), f"{what}: no 'detail' in {text[:200]}"


def check(target: Target, answer: Any, method: str, path: str) -> None:
    assert_json_answer(answer.status_code, answer.headers, answer.text, method, f"{method} {path}")


def assert_alive(target: Target) -> None:
    answer = target.client.get("/health", headers=target.good_auth)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["status"] == "UP"


# --- hostile values ---------------------------------------------------------------------------


def _deep(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


# Raw JSON fragments, by name; each replaces one field of a real request body.
HOSTILE: dict[str, str] = {
    "deep list 200": _deep(200, "list"),
    "deep list 5000": _deep(5000, "list"),
    "deep object 5000": _deep(5000, "object"),
    "deep list 100000": _deep(100_000, "list"),
    "2**63": str(2**63),
    "2**64": str(2**64),
    "-2**63-1": str(-(2**63) - 1),
    "10**30": str(10**30),
    "5000 digits": "9" * 5000,
    "1e999": "1e999",
    "-1e999": "-1e999",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "-0": "-0",
    "1.5": "1.5",
    "true": "true",
    "false": "false",
    "null": "null",
    "empty string": '""',
    "empty list": "[]",
    "empty object": "{}",
    "list of null": "[null]",
    "superscript two": '"²"',
    "uid with superscript": '"1.²"',
    "arabic-indic digits": '"\u0661\u0662.\u0663"',
    "fullwidth digits": '"\uff11.\uff12"',
    "uid 2**64": f'"{2**64}.1"',
    "uid 2**63": f'"{2**63}"',
    "negative uid": '"-1.5"',
    "uid spaces": '" 1 "',
    "'NaN'": '"NaN"',
    "'inf'": '"inf"',
    "'1e999'": '"1e999"',
    "lone surrogate": '"\\ud800"',
    "nul char": '"a\\u0000b"',
    "crlf ansi": '"x\\r\\nFORGED line\\u001b[31m"',
    "long string": json.dumps("A" * 100_000),
    "hostname without scheme": '"ls.example:8080"',
    "hostname javascript": '"javascript:alert(1)"',
    "hostname userinfo": '"http://evil.example\\\\@127.0.0.1:9"',
    "bad xml": '"<View><Text"',
    "xml entity bomb": json.dumps(
        '<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        "<View>&c;</View>"
    ),
    "task list": '[{"id": 1, "data": {}}]',
    "huge task id": '[{"id": 18446744073709551616, "data": {"text": "x"}}]',
    "job id run-2**64": '"run-99999999999999999999"',
}

# Known top-level shapes per route; routes Label Studio 1.23 never calls have no capture.
TEMPLATES: dict[str, list[dict[str, Any]]] = {
    "/job_status": [{"job": "run-1"}, {"job": 1}],
    "/validate": [{"config": CONFIG}],
    "/delete": [{"project": UID}],
    "/duplicate_model": [{"project_src": UID, "project_dst": "2.1795846026"}],
}
SENTINEL = "\x00relaxml-fuzz\x00"


@pytest.fixture(scope="module")
def bodies(captured: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {r: list(TEMPLATES.get(r, [])) for r in POST_ROUTES}
    for request in captured:
        body = request["body"]
        if request["path"] in found and isinstance(body, dict):
            seen = [json.dumps(b, sort_keys=True) for b in found[request["path"]]]
            if json.dumps(body, sort_keys=True) not in seen:
                found[request["path"]].append(body)
    return found


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) into a JSON value, up to 5 levels deep."""
    out = [prefix] if prefix else []
    if depth >= 5:
        return out
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            out += _paths(item, (*prefix, index), depth + 1)
    return out


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _set(copy[path[0]], path[1:], new)
    return copy


def _delete(value: Any, path: tuple[Any, ...]) -> Any:
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if len(path) == 1:
        del copy[path[0]]
    else:
        copy[path[0]] = _delete(copy[path[0]], path[1:])
    return copy


class Case:
    """One request body and a short description of how it was made (the failure report)."""

    def __init__(self, body: bytes, note: str) -> None:
        self.body = body
        self.note = note

    def __repr__(self) -> str:
        return f"Case({self.note}, {len(self.body)} bytes: {self.body[:160]!r})"


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=25,
)


@st.composite
def mutated(draw: st.DrawFn, originals: list[dict[str, Any]]) -> Case:
    """A real body with one field replaced (by a hostile value or arbitrary JSON) or removed."""
    original = draw(st.sampled_from(originals))
    if draw(st.integers(0, 5)) == 0 and isinstance(original.get("tasks"), list):
        tasks = original["tasks"] or [{"id": 1, "data": {"text": "x"}}]
        many = draw(st.integers(11, 14))  # more than auto_inline_max: background delivery
        first = draw(st.sampled_from([1, 2**31, 2**53, 2**63 - many, 2**63, 2**64]))
        original = {
            **original,
            "tasks": [{**tasks[i % len(tasks)], "id": first + i} for i in range(many)],
        }
    paths = _paths(original)
    path = draw(st.sampled_from(paths)) if paths else ()
    how = draw(st.sampled_from(["hostile", "hostile", "json", "delete"]))
    where = ".".join(map(str, path)) or "<body>"
    if how == "delete" and path:
        return Case(json.dumps(_delete(original, path)).encode(), f"without {where}")
    if how == "json" or not path:
        value = draw(json_values)
        return Case(json.dumps(_set(original, path, value)).encode(), f"{where}={value!r:.60}")
    name = draw(st.sampled_from(sorted(HOSTILE)))
    text = json.dumps(_set(original, path, SENTINEL))
    body = text.replace(json.dumps(SENTINEL), HOSTILE[name], 1)
    return Case(body.encode(), f"{where}={name}")


whole_bodies = st.one_of(
    st.sampled_from(sorted(HOSTILE)).map(lambda n: Case(HOSTILE[n].encode(), f"body={n}")),
    json_values.map(lambda v: Case(json.dumps(v).encode(), f"body={v!r:.60}")),
    st.binary(max_size=200).map(lambda b: Case(b, "raw bytes")),
    st.sampled_from(
        [
            b"\xef\xbb\xbf{}",
            b"\xff\xfe{\x00}\x00",
            b'{"tasks": [',
            b'{"a": 1} {"b": 2}',
            b"\x00" * 64,
            b'{"project": "\xff\xfe"}',
            b" " * 1000,
            b'"' + b"\\" * 3001 + b'"',
        ]
    ).map(lambda b: Case(b, "broken JSON")),
)

content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=latin-1",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/json; charset=nope",
        "",
        "*/*;;;==",
    ]
)
garbage_auth = st.one_of(
    st.sampled_from(
        [
            "Basic",
            "Basic ",
            "Basic !!!!",
            "Basic " + base64.b64encode(b"no-colon").decode(),
            "Basic " + base64.b64encode(f"{USER}:{PASSWORD}x".encode()).decode(),
            "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
            "Basic " + "QQ==" * 5000,
            "Bearer abc",
            "Token " + KEY[:-1],
            "basic " + base64.b64encode(f"{USER}:".encode()).decode(),
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
)


@st.composite
def headers(draw: st.DrawFn, target_auth: bool) -> dict[str, str]:
    """Headers: a content type, and (with auth on) good, missing or garbage credentials."""
    out: dict[str, str] = {}
    content_type = draw(content_types)
    if content_type:
        out["Content-Type"] = content_type
    choice = draw(st.sampled_from(["good", "good", "none", "garbage"]))
    if choice == "good" and target_auth:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        out["Authorization"] = f"Basic {token}"
    elif choice == "garbage":
        out["Authorization"] = draw(garbage_auth)
    return out


def _authorized(target: Target, sent: dict[str, str]) -> bool:
    return not target.auth or sent.get("Authorization") == target.good_auth["Authorization"]


def expect_auth(target: Target, status: int, path: str, sent: dict[str, str]) -> None:
    """With Basic Auth on, every route but /webhook refuses a request without credentials."""
    if target.auth and path != "/webhook" and not _authorized(target, sent):
        assert status == 401, f"{path} without credentials answered {status}"


# --- the properties, in-process ---------------------------------------------------------------


@pytest.mark.parametrize("route", POST_ROUTES)
def test_post_bodies_mutated_from_real_requests_never_answer_5xx(
    target: Target, bodies: dict[str, list[dict[str, Any]]], route: str
) -> None:
    @FUZZ
    @given(case=mutated(bodies[route]), sent=headers(target.auth))
    def post(case: Case, sent: dict[str, str]) -> None:
        sent["Content-Type"] = "application/json"
        answer = target.client.post(route, content=case.body, headers=sent)
        check(target, answer, "POST", route)
        expect_auth(target, answer.status_code, route, sent)
        assert_alive(target)

    post()


@pytest.mark.parametrize("route", POST_ROUTES)
def test_post_arbitrary_bodies_and_headers_never_answer_5xx(target: Target, route: str) -> None:
    @FUZZ
    @given(case=whole_bodies, sent=headers(target.auth))
    def post(case: Case, sent: dict[str, str]) -> None:
        answer = target.client.post(route, content=case.body, headers=sent)
        check(target, answer, "POST", route)
        expect_auth(target, answer.status_code, route, sent)
        assert_alive(target)

    post()


job_ids = st.one_of(
    st.sampled_from(
        [
            "run-99999999999999999999",
            f"run-{2**63}",
            "run--1",
            "run-²",
            "run-\u0661",
            "run-1e5",
            "job-99999999999999999999",
            f"job-{2**63}",
            "job-²",
            "1",
            "0",
            "-1",
            "99999999999999999999",
            "NaN",
            "%00",
            "%0d%0a",
            "a" * 5000,
        ]
    ),
    st.from_regex(r"\A(run|job)-[0-9]{1,25}\Z"),
    st.text(min_size=1, max_size=40).map(lambda s: s.replace("/", "_")),
)


def test_job_routes_answer_4xx_json_for_any_job_id(target: Target) -> None:
    @FUZZ
    @given(job=job_ids, sent=headers(target.auth), other=json_values)
    def ask(job: str, sent: dict[str, str], other: Any) -> None:
        sent.pop("Content-Type", None)
        path = "/jobs/" + _quote(job)
        for method, url in (("GET", path), ("POST", path + "/cancel")):
            answer = target.client.request(method, url, headers=sent)
            check(target, answer, method, url)
            expect_auth(target, answer.status_code, url, sent)
        for value in (job, other):
            answer = target.client.post("/job_status", json={"job": value}, headers=sent)
            check(target, answer, "POST", "/job_status")
        assert_alive(target)

    ask()


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_get_routes_ignore_queries_bodies_and_headers(target: Target) -> None:
    @FUZZ
    @given(
        route=st.sampled_from(GET_ROUTES),
        query=st.text(max_size=60),
        body=st.binary(max_size=100),
        sent=headers(target.auth),
    )
    def get(route: str, query: str, body: bytes, sent: dict[str, str]) -> None:
        url = f"{route}?{_quote(query)}={_quote(query)}" if query else route
        answer = target.client.request("GET", url, content=body or None, headers=sent)
        check(target, answer, "GET", route)
        expect_auth(target, answer.status_code, route, sent)
        if _authorized(target, sent):
            assert answer.status_code == 200, f"GET {url}: {answer.status_code} {answer.text[:200]}"
        assert_alive(target)

    get()


def _tasks(first: int, count: int) -> list[dict[str, Any]]:
    return [{"id": first + i, "data": {"text": "x"}} for i in range(count)]


# Inputs that are known to have answered 500 (issue 9, item 6, and what this fuzzing found),
# each sent on its own so that one defect does not hide the next.
KNOWN: list[tuple[str, str, bytes]] = [
    *((f"deep list 5000 on {r}", r, _deep(5000, "list").encode()) for r in POST_ROUTES),
    *((f"deep object 5000 on {r}", r, _deep(5000, "object").encode()) for r in POST_ROUTES),
    ("setup project uid '²'", "/setup", json.dumps({"project": "²"}).encode()),
    ("setup project uid '1.²'", "/setup", json.dumps({"project": "1.²"}).encode()),
    (
        "predict project uid '²'",
        "/predict",
        json.dumps({"project": "²", "tasks": _tasks(1, 1)}).encode(),
    ),
    ("delete project uid '²'", "/delete", json.dumps({"project": "²"}).encode()),
    (
        "duplicate_model project_dst '²'",
        "/duplicate_model",
        json.dumps({"project_src": UID, "project_dst": "²"}).encode(),
    ),
    (
        "background predict with task ids from 2**63",
        "/predict",
        json.dumps({"project": UID, "tasks": _tasks(2**63, 12)}).encode(),
    ),
    (
        "inline predict with task id 2**64",
        "/predict",
        json.dumps({"project": UID, "tasks": _tasks(2**64, 1)}).encode(),
    ),
    ("job_status run-2**64", "/job_status", b'{"job": "run-99999999999999999999"}'),
    ("job_status run-'²'", "/job_status", json.dumps({"job": "run-²"}).encode()),
    ("validate lone surrogate", "/validate", b'{"config": "\\ud800"}'),
    ("delete lone surrogate", "/delete", b'{"project": "\\ud800"}'),
    ("job_status lone surrogate", "/job_status", b'{"job": "\\ud800"}'),
    ("setup lone surrogate uid", "/setup", b'{"project": "1.\\ud800"}'),
    ("webhook lone surrogate action", "/webhook", b'{"action": "\\ud800"}'),
    ("predict NaN literal score param", "/predict", b'{"tasks": [], "params": NaN}'),
    (
        "predict task id 1e999",
        "/predict",
        b'{"project": "1.1795846025", "tasks": [{"id": 1e999, "data": {}}]}',
    ),
]


@pytest.mark.parametrize(("name", "route", "body"), KNOWN, ids=[k[0] for k in KNOWN])
def test_known_hostile_bodies_answer_4xx_json(
    target: Target, name: str, route: str, body: bytes
) -> None:
    sent = {**target.good_auth, "Content-Type": "application/json"}
    answer = target.client.post(route, content=body, headers=sent)
    check(target, answer, "POST", route)
    assert_alive(target)


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/run-99999999999999999999",
        "/jobs/run-99999999999999999999/cancel",
        f"/jobs/run-{2**63}",
        "/jobs/run-%C2%B2",
        "/jobs/run-%C2%B2/cancel",
        "/jobs/job-99999999999999999999",
        "/jobs/job-%C2%B2/cancel",
    ],
)
def test_known_hostile_job_ids_answer_4xx_json(target: Target, path: str) -> None:
    method = "POST" if path.endswith("/cancel") else "GET"
    answer = target.client.request(method, path, headers=target.good_auth)
    check(target, answer, method, path)
    assert answer.status_code == 404, f"{method} {path}: {answer.status_code} {answer.text[:200]}"
    assert_alive(target)


@pytest.mark.parametrize("auth", [False, True], ids=["auth-off", "auth-on"])
def test_setup_hostname_without_scheme_then_predict_answers_4xx(
    tmp_path_factory: pytest.TempPathFactory, auth: bool
) -> None:
    """Without LABEL_STUDIO_URL, /setup's hostname is used: one without a scheme is a 4xx."""
    values: dict[str, Any] = {"data_dir": str(tmp_path_factory.mktemp("noscheme"))}
    if auth:
        values.update(basic_auth_user=USER, basic_auth_pass=PASSWORD)
    app = create_app(FuzzModel, Settings(**values))
    with TestClient(app, raise_server_exceptions=False) as client:
        target = Target(client, auth)
        body = {"project": "7.1795846025", "hostname": "127.0.0.1:9", "access_token": "t0k3n"}
        answer = client.post("/setup", json=body, headers=target.good_auth)
        check(target, answer, "POST", "/setup")
        for count in (1, 12):  # inline, then a bulk request that auto mode sends to the background
            tasks = {"project": "7.1795846025", "tasks": _tasks(1, count)}
            answer = client.post("/predict", json=tasks, headers=target.good_auth)
            check(target, answer, "POST", "/predict")
        assert_alive(target)


# --- the properties over a real socket: methods, paths, header bytes --------------------------


class _Served:
    """A relaxml app under a real uvicorn on 127.0.0.1, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> _Served:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start in 15 s"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.socket.close()


@dataclass
class Socketed:
    port: int
    auth: bool
    records: list[logging.LogRecord]

    @property
    def good_auth(self) -> bytes:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode())
        return b"Authorization: Basic " + token + b"\r\n" if self.auth else b""


class _Keep(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module", params=["auth-off", "auth-on"])
def socketed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_ls: FakeLabelStudio,
) -> Iterator[Socketed]:
    auth = request.param == "auth-on"
    app = create_app(FuzzModel, _settings(tmp_path_factory.mktemp("fuzz-raw"), fake_ls, auth))
    records: list[logging.LogRecord] = []
    with _Served(app) as served, _kept_logs(records):
        found = Socketed(served.port, auth, records)
        yield found
        status, _, text = raw(found, b"GET /health HTTP/1.1\r\n" + found.good_auth)
        assert status == 200, text


@contextlib.contextmanager
def _kept_logs(records: list[logging.LogRecord]) -> Iterator[None]:
    """Keep every record of relaxml's loggers, whatever earlier tests configured."""
    handler = _Keep(records)
    loggers = [logging.getLogger(name) for name in ("relaxml", "relaxml.access")]
    saved = [(log.level, log.propagate, log.disabled) for log in loggers]
    for log in loggers:
        log.setLevel(logging.DEBUG)
        log.disabled = False
    loggers[1].propagate = True
    loggers[0].addHandler(handler)
    try:
        yield
    finally:
        loggers[0].removeHandler(handler)
        for log, (level, propagate, disabled) in zip(loggers, saved, strict=True):
            log.setLevel(level)
            log.propagate = propagate
            log.disabled = disabled


def raw(target: Socketed, head: bytes, body: bytes = b"") -> tuple[int, Any, str]:
    """Send one request (its head without the final blank line) and read the answer."""
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as sock:
        sock.sendall(head + b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n" + body)
        answer = http.client.HTTPResponse(sock, method=head.split(b" ", 1)[0].decode("latin-1"))
        answer.begin()
        text = answer.read().decode("utf-8", "replace")
        return answer.status, answer.headers, text


def refused_by_parser(status: int, headers: Any, text: str) -> bool:
    """Whether uvicorn's HTTP parser refused the request before the app saw it."""
    return (
        status == 400
        and headers.get("content-type", "").startswith("text/plain")
        and text == "Invalid HTTP request received."
    )


KNOWN_METHODS = frozenset(("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"))
TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
methods = st.one_of(
    st.sampled_from(sorted(KNOWN_METHODS)),
    st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=24),
)
path_prefixes = st.sampled_from(
    ["/", "/health", "/predict", "/setup", "/webhook", "/jobs/", "/jobs/run-1/", "/metrics", ""]
)
path_tails = st.one_of(
    st.binary(max_size=40).map(lambda b: "".join(f"%{x:02X}" for x in b)),
    st.text(max_size=30).map(_quote),
    st.sampled_from(
        [
            "%0d%0aFORGED%20200",
            "%1b[31mred%1b[0m",
            "%00",
            "%2e%2e/%2e%2e/etc/passwd",
            "..%2f..%2f",
            "%ff%fe",
            "x" * 8000,
            "%C2%B2",
            "//double",
            "?a=1&a=2",
        ]
    ),
)
# Any bytes HTTP allows in a header value (RFC 9110 field-value, as h11 parses it): visible
# ASCII, bytes from 0x80 up, and spaces or tabs inside. Control bytes would be refused by
# uvicorn itself (a text/plain 400) before the app sees the request.
header_values = st.binary(max_size=60).map(
    lambda b: bytes(x for x in b if x >= 0x20 and x != 0x7F).strip(b" \t")
)


def test_raw_methods_paths_and_header_bytes_answer_json(socketed: Socketed) -> None:
    @FUZZ
    @given(method=methods, prefix=path_prefixes, tail=path_tails, value=header_values)
    def send(method: str, prefix: str, tail: str, value: bytes) -> None:
        path = ("/" + prefix.lstrip("/") + tail).replace(" ", "%20")
        start = len(socketed.records)
        credentials = (
            socketed.good_auth if value[:1] != b"!" else b"Authorization: " + value + b"\r\n"
        )
        body = b'{"tasks": []}' if method != "HEAD" else b""
        head = (
            f"{method} {path} HTTP/1.1\r\n".encode()
            + b"X-Fuzz: " + value + b"\r\nContent-Type: " + value + b"\r\n"
            + credentials
            + f"Content-Length: {len(body)}\r\n".encode()
        )  # fmt: skip
        status, answer_headers, text = raw(socketed, head, body)
        if method not in KNOWN_METHODS and refused_by_parser(status, answer_headers, text):
            return  # httptools (uvicorn's faster parser) knows only registered methods
        assert_json_answer(status, answer_headers, text, method, f"{method} {path[:80]}")
        for record in socketed.records[start:]:
            line = record.getMessage()
            assert not re.search(r"[\r\n\x1b\x00]", line), f"log line with a control char: {line!r}"
        status, _, text = raw(socketed, b"GET /health HTTP/1.1\r\n" + socketed.good_auth)
        assert status == 200, text

    send()


def test_metrics_series_stay_bounded_under_unknown_methods(socketed: Socketed) -> None:
    for number in range(60):
        raw(socketed, f"FUZZ{number} /health HTTP/1.1\r\n".encode() + socketed.good_auth)
    status, _, text = raw(socketed, b"GET /metrics HTTP/1.1\r\n" + socketed.good_auth)
    assert status == 200
    found = set(re.findall(r'method="([^"]*)"', text))
    assert len(found) <= 20, f"/metrics holds {len(found)} method labels: {sorted(found)[:10]}"


@pytest.mark.parametrize(
    ("declared", "sent", "route"),
    [
        (10**12, b"{}", "/webhook"),
        (10**12, b"{}", "/predict"),
        (2, b'{"tasks": []}', "/predict"),
        (0, b'{"tasks": []}', "/setup"),
    ],
)
def test_content_length_mismatch_answers_4xx_json(
    socketed: Socketed, declared: int, sent: bytes, route: str
) -> None:
    head = f"POST {route} HTTP/1.1\r\nContent-Length: {declared}\r\n".encode() + socketed.good_auth
    head += b"Content-Type: application/json\r\n"
    with contextlib.suppress(ConnectionError):
        status, answer_headers, text = raw(socketed, head, sent)
        assert_json_answer(status, answer_headers, text, "POST", f"POST {route}")
        assert 400 <= status < 500
    status, _, text = raw(socketed, b"GET /health HTTP/1.1\r\n" + socketed.good_auth)
    assert status == 200, text
