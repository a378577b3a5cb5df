"""The Label Studio key never leaves: URL confusions, /setup hostnames, redaction, log lines.

An "evil" server on 127.0.0.1 answers everything (so a leak would succeed) and records what it
receives; every test asserts it never saw an `Authorization` header, the key, the PAT (also in
a token-refresh body) or an access token.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from relaxml import Context, LabelStudioModel, Prediction, Settings, Task, cli
from relaxml._metrics import MAX_SERIES, Metrics
from relaxml._redaction import REDACTED, escape, redact, remember
from relaxml._server.auth import BasicAuthMiddleware
from relaxml.errors import HTTPError, describe
from relaxml.labelstudio._pool import ClientPool
from relaxml.labelstudio.client import LabelStudioClient, LabelStudioError
from relaxml.labelstudio.media import MediaError
from relaxml.testing import FakeLabelStudio

from .conftest import wait_for
from .support.httpfakes import FakeServer, Reply, Seen, make_jwt
from .support.models import Echo

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
LEGACY = "f00dfeed0123456789abcdef0123456789abcdef"
PAT = make_jwt(time.time() + 86400, token_type="refresh", jti="pat-under-test")
ACCESS = make_jwt(time.time() + 300, token_type="access", jti="access-under-test")
SETUP_TOKEN = "setup-token-5ecret-0123456789"


class World:
    """A fake Label Studio (`ls`) that wants a credential, and an `evil` host that wants one."""

    def __init__(self) -> None:
        self.ls = FakeServer(self.label_studio).start()
        self.evil = FakeServer(self.attacker).start()
        self.L = self.ls.url.removeprefix("http://")
        self.E = self.evil.url.removeprefix("http://")

    def stop(self) -> None:
        self.ls.stop()
        self.evil.stop()

    def label_studio(self, seen: Seen) -> Reply:
        if seen.route == "/api/token/refresh/":
            return Reply.json({"access": ACCESS})
        allowed = (f"Token {LEGACY}", f"Bearer {ACCESS}", f"Token {SETUP_TOKEN}")
        if seen.headers.get("authorization") not in allowed:
            return Reply.json({"detail": "no"}, 401)
        if seen.route.startswith("/data/upload/redirect-"):
            index = int(seen.route.rsplit("-", 1)[1])
            return Reply.redirect(self.redirects()[index], 302)
        return Reply(body=PNG, headers={"Content-Type": "image/png"})

    def redirects(self) -> list[str]:
        return [f"http://{self.E}/x.png", f"http://{self.E}\\@{self.L}/x.png", f"//{self.E}/x"]

    def attacker(self, seen: Seen) -> Reply:
        if seen.method == "POST":
            return Reply.json({"access": ACCESS, "created": 1}, 201)
        return Reply(body=PNG, headers={"Content-Type": "image/png"})

    def leaks(self, *secrets: str) -> list[Seen]:
        """What the evil host received that carries a credential."""
        found = []
        for seen in self.evil.seen:
            text = seen.path + repr(seen.headers) + seen.body.decode("latin-1")
            words = (LEGACY, PAT, ACCESS, SETUP_TOKEN, "Token ", "Bearer ", *secrets)
            if "authorization" in seen.headers or any(word in text for word in words):
                found.append(seen)
        return found


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.stop()


# Every URL-parser confusion we know of: (name, template). {L} is Label Studio's host:port,
# {E} the evil one's, {EP} the evil port.
CONFUSIONS = [
    ("backslash before @", "http://{E}\\@{L}/data/upload/1/x.png"),
    ("backslash before @, reversed", "http://{L}\\@{E}/data/upload/1/x.png"),
    ("encoded backslash", "http://{E}%5C@{L}/data/upload/1/x.png"),
    ("encoded slash", "http://{E}%2F@{L}/data/upload/1/x.png"),
    ("encoded at", "http://{E}%40{L}/data/upload/1/x.png"),
    ("encoded NUL", "http://{E}%00@{L}/data/upload/1/x.png"),
    ("user info looking like Label Studio", "http://{L}@{E}/data/upload/1/x.png"),
    ("user info", "http://user:pass@{L}/data/upload/1/x.png"),
    ("tab in the host", "http://{E}\t@{L}/data/upload/1/x.png"),
    ("CRLF in the host", "http://{E}\r\n@{L}/data/upload/1/x.png"),
    ("space in the host", "http://{E} @{L}/data/upload/1/x.png"),
    ("fragment before @", "http://{E}#@{L}/data/upload/1/x.png"),
    ("query before @", "http://{E}?@{L}/data/upload/1/x.png"),
    ("fullwidth solidus", "http://{E}\uff0f@{L}/data/upload/1/x.png"),
    ("ideographic full stops", "http://127\u30020\u30020\u30021:{EP}/data/upload/1/x.png"),
    ("scheme-relative", "//{E}/data/upload/1/x.png"),
    ("absolute URL joined onto the base", "/http://{E}/data/upload/1/x.png"),
    ("absolute URL as a relative path", "http:{E}/data/upload/1/x.png"),
    ("upper-case scheme", "HTTP://{E}/data/upload/1/x.png"),
    ("leading backslashes", "\\\\{E}/data/upload/1/x.png"),
    ("slash backslash", "/\\{E}/data/upload/1/x.png"),
    ("local files on another host", "http://{E}/data/local-files/?d=set/x.png"),
    ("local files with a second d", "/data/local-files/?d=set/x.png&d=../../etc/passwd"),
    ("local files with an encoded second d", "/data/local-files/?d=ok.png&%64=../../etc/passwd"),
    ("redirect to another host", "/data/upload/redirect-0"),
    ("redirect to a backslash URL", "/data/upload/redirect-1"),
    ("redirect scheme-relative", "/data/upload/redirect-2"),
]


def _value(world: World, template: str) -> str:
    return template.format(L=world.L, E=world.E, EP=world.E.rsplit(":", 1)[1])


def _no_traversal_reached_label_studio(world: World) -> None:
    for seen in world.ls.seen:
        assert ".." not in seen.path, seen.path
        assert "passwd" not in seen.path, seen.path


@pytest.mark.parametrize("key", [LEGACY, PAT], ids=["legacy", "pat"])
@pytest.mark.parametrize(("name", "template"), CONFUSIONS, ids=[c[0] for c in CONFUSIONS])
def test_url_confusions_never_send_the_key_elsewhere_through_the_client(
    world: World, key: str, name: str, template: str
) -> None:
    client = LabelStudioClient(world.ls.url, key, retries=0, timeout=5)
    value = _value(world, template)
    with contextlib.suppress(ValueError, LabelStudioError):
        client.request("GET", value, retry=False).close()
    assert world.leaks() == []
    _no_traversal_reached_label_studio(world)


class LocalPath(LabelStudioModel):
    """Downloads each task's image through `context.local_path` and reports what happened."""

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        out = []
        for task in tasks:
            try:
                context.local_path(task.data["image"], task)
                outcome = "fetched"
            except MediaError:
                outcome = "refused"
            out.append(Prediction(result=[], score=1.0 if outcome == "fetched" else 0.0))
        return out


@pytest.mark.parametrize("auth", ["legacy", "pat", "setup-token"])
@pytest.mark.parametrize(("name", "template"), CONFUSIONS, ids=[c[0] for c in CONFUSIONS])
def test_url_confusions_never_send_the_key_elsewhere_through_local_path(
    serve: Any, world: World, auth: str, name: str, template: str
) -> None:
    if auth == "setup-token":
        app = serve(LocalPath)
        setup = {"project": "3.1", "hostname": world.ls.url, "access_token": SETUP_TOKEN}
        assert app.post("/setup", json=setup).status_code == 200
    else:
        key = LEGACY if auth == "legacy" else PAT
        app = serve(LocalPath, label_studio_url=world.ls.url, label_studio_api_key=key)
    task = {"id": 1, "data": {"image": _value(world, template)}, "project": 3}
    answer = app.post("/predict", json={"project": "3.1", "tasks": [task]})
    assert answer.status_code == 200, answer.text
    assert world.leaks() == []
    _no_traversal_reached_label_studio(world)


def test_the_issue_url_is_refused_and_label_studio_urls_still_work(world: World) -> None:
    client = LabelStudioClient(world.ls.url, LEGACY, retries=0)
    with pytest.raises(ValueError, match="backslash"):
        client.request("GET", f"http://{world.E}\\@{world.L}/data/upload/1/x.png")
    assert client.request("GET", "/data/upload/1/x.png").content == PNG
    assert client.request("GET", f"{world.ls.url}/data/upload/1/x.png").content == PNG
    assert world.evil.seen == []


def test_a_relative_path_never_leaves_the_origin() -> None:
    client = LabelStudioClient("http://ls.example:8080/sub/", LEGACY)
    for path in ("/http://evil/x", "//evil/x", "http:evil/x", "javascript:x", "../../../x"):
        assert client.is_own(client.absolute(path)), path
    assert not client.is_own("http://evil/x")


def test_a_duplicate_d_is_refused_and_the_vetted_d_is_what_is_sent(serve: Any, world: World):
    app = serve(LocalPath, label_studio_url=world.ls.url, label_studio_api_key=LEGACY)
    tasks = [
        {"id": 1, "data": {"image": "/data/local-files/?d=ok.png&d=../../etc/passwd"}},
        {"id": 2, "data": {"image": f"{world.ls.url}/data/local-files/?d=set/x.png&x=1"}},
    ]
    answer = app.post("/predict", json={"project": "3.1", "tasks": tasks})
    assert [r["score"] for r in answer.json()["results"]] == [0.0, 1.0]
    assert [s.query for s in world.ls.seen] == [{"d": ["set/x.png"]}]


# --- item 2: a configured key only goes to the configured URL -----------------------------------


def test_a_configured_key_needs_label_studio_url() -> None:
    with pytest.raises(ValueError, match=r"LABEL_STUDIO_API_KEY.*LABEL_STUDIO_URL"):
        Settings(label_studio_api_key=LEGACY)
    with pytest.raises(ValueError, match="LABEL_STUDIO_URL"):
        Settings.from_env({"LABEL_STUDIO_API_KEY": LEGACY})
    with pytest.raises(ValueError, match="LABEL_STUDIO_URL"):
        ClientPool(None, LEGACY)
    Settings(label_studio_api_key=LEGACY, label_studio_url="http://ls:8080")


def test_serve_with_a_key_but_no_url_is_a_usage_error(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", LEGACY)
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    result = CliRunner().invoke(
        cli.main, ["serve", "tests.support.models:Echo"], prog_name="relaxml"
    )
    assert result.exit_code == 2, result.output
    assert "LABEL_STUDIO_URL" in result.output
    assert "Traceback" not in result.output
    assert LEGACY not in result.output


class Background(Echo):
    delivery = "background"


@pytest.mark.parametrize("key", ["good-token-123", PAT], ids=["legacy", "pat"])
def test_setup_naming_an_attacker_never_gets_the_configured_key(
    serve: Any, world: World, key: str
) -> None:
    fake = FakeLabelStudio(api_key="good-token-123", accept_unknown_tasks=True)
    try:
        app = serve(Background, label_studio_url=fake.url, label_studio_api_key=key)
        setup = {"project": "7.1", "hostname": world.evil.url, "access_token": None}
        assert app.post("/setup", json=setup).status_code == 200
        tasks = [{"id": i, "data": {"text": str(i)}, "project": 7} for i in range(1, 6)]
        answer = app.post("/predict", json={"project": "7.1", "tasks": tasks})
        assert answer.status_code == 200
        if key == "good-token-123":
            wait_for(
                lambda: len(fake.predictions_by_task()) == 5
            )  # delivered to the configured one
        else:
            time.sleep(0.5)  # the fake refuses a PAT; only the evil host matters here
        assert world.leaks(key) == []
    finally:
        fake.close()


def test_a_setup_token_never_goes_to_another_setups_hostname(serve: Any, world: World) -> None:
    fake = FakeLabelStudio(api_key=SETUP_TOKEN, accept_unknown_tasks=True)
    try:
        app = serve(Background)
        # the attacker names its host first, and a bulk job is queued for it
        attacker = {"project": "7.1", "hostname": world.evil.url}
        assert app.post("/setup", json=attacker).status_code == 200
        # then Label Studio's own /setup brings the real token for its own host
        tasks = [{"id": i, "data": {"text": str(i)}, "project": 7} for i in range(1, 4)]
        assert app.post("/predict", json={"project": "7.1", "tasks": tasks}).status_code == 200
        real = {"project": "7.1", "hostname": fake.url, "access_token": SETUP_TOKEN}
        assert app.post("/setup", json=real).status_code == 200
        wait_for(lambda: world.evil.seen)
        time.sleep(0.3)
        assert world.leaks() == []
    finally:
        fake.close()


# --- items 3 and 4: redaction on the wire and in the log ---------------------------------------


BASIC_PASS = "basic-pass-0123"
DB_PASSWORD = "db-hunter2-secret"
PARAMS_PASSWORD = "task-data-pass-77"


class Blabbermouth(LabelStudioModel):
    """Raises with every secret it can find, as bare values (no name for a pattern to catch)."""

    def predict(self, tasks: list[Task], context: Context) -> Any:
        logging.getLogger("user.model").warning(
            "secrets %s %s %s %s %s",
            LEGACY,
            BASIC_PASS,
            SETUP_TOKEN,
            DB_PASSWORD,
            PARAMS_PASSWORD,
        )
        raise RuntimeError(
            f"failed with {LEGACY} / {BASIC_PASS} / {SETUP_TOKEN} / {DB_PASSWORD} / "
            f"{PARAMS_PASSWORD} / {{'client_secret': 'cs-abcdef'}} X-Api-Key: xk-123456"
        )


def test_a_model_error_answer_carries_no_secret(serve: Any, log_output: io.StringIO) -> None:
    app = serve(
        Blabbermouth,
        label_studio_url="http://127.0.0.1:9",
        label_studio_api_key=LEGACY,
        basic_auth_user="ml",
        basic_auth_pass=BASIC_PASS,
    )
    auth = ("ml", BASIC_PASS)
    setup = {
        "project": "4.1",
        "hostname": "http://127.0.0.1:9",
        "access_token": SETUP_TOKEN,
        "extra_params": {"db": {"db_password": DB_PASSWORD}},
    }
    assert app.post("/setup", json=setup, auth=auth).status_code == 200
    body = {
        "project": "4.1",
        "tasks": [{"id": 1, "data": {"text": "x"}}],
        "params": {"login": "u", "password": PARAMS_PASSWORD},
    }
    answer = app.post("/predict", json=body, auth=auth)
    assert answer.status_code == 500
    assert answer.json()["error"] == "model_error"
    assert "RuntimeError" in answer.json()["detail"]
    log = log_output.getvalue()
    for secret in (LEGACY, BASIC_PASS, SETUP_TOKEN, DB_PASSWORD, PARAMS_PASSWORD, "cs-abcdef"):
        assert secret not in answer.text, secret
        assert secret not in log, secret
    assert "xk-123456" not in answer.text
    assert "xk-123456" not in log
    assert REDACTED in answer.json()["detail"]


@pytest.mark.parametrize(
    "text",
    [
        "db_password=hunter2secret",
        "{'client_secret': 'hunter2secret'}",
        '"refresh_token": "hunter2secret"',
        "AWS_SECRET_ACCESS_KEY=hunter2secret",
        "X-Api-Key: hunter2secret",
        "secret_key=hunter2secret",
        "private-key: hunter2secret",
        "https://b.s3.amazonaws.com/k.png?X-Amz-Signature=hunter2secret&X-Amz-Date=1",
        "https://cdn/x.png?Expires=1&Signature=hunter2secret",
        "https://acct.blob.core.windows.net/c/x.png?sv=1&sig=hunter2secret",
        "https://storage.googleapis.com/b/x?X-Goog-Signature=hunter2secret",
        "X-Amz-Security-Token=hunter2secret",
        "session_token: hunter2secret",
    ],
)
def test_log_redaction_covers_common_secret_names(text: str, log_output: io.StringIO) -> None:
    assert "hunter2secret" not in redact(text)
    logging.getLogger("user.model").warning(text)
    logging.getLogger("relaxml").debug("at debug: %s", text)
    assert "hunter2secret" not in log_output.getvalue()
    assert REDACTED in log_output.getvalue()


def test_internal_errors_and_label_studio_errors_are_redacted_too() -> None:
    remember(SETUP_TOKEN)
    assert SETUP_TOKEN not in describe(KeyError(f"no {SETUP_TOKEN} here"))
    assert (
        SETUP_TOKEN not in HTTPError(500, "internal_error", f"at {SETUP_TOKEN}").to_dict()["detail"]
    )
    assert SETUP_TOKEN not in str(LabelStudioError(f"Label Studio answered 400: {SETUP_TOKEN}"))
    assert SETUP_TOKEN not in str(MediaError(f"cannot download /x/{SETUP_TOKEN}.png"))


def test_known_secrets_are_redacted_by_value_and_short_ones_are_not() -> None:
    remember("value-only-5ecret")
    remember("short")
    assert redact("plain prose value-only-5ecret here") == f"plain prose {REDACTED} here"
    assert redact("a short word") == "a short word"


# --- item 9: no forged log lines ---------------------------------------------------------------


def test_control_characters_cannot_forge_log_lines(serve: Any, log_output: io.StringIO) -> None:
    app = serve(Echo)
    app.get("/health%0d%0aFORGED%20200%1b[2J")
    app.request("GET\r\nFORGED", "/health")
    app.post("/webhook", json={"action": "X\r\nFORGED\x1b[31m", "project": {"id": 1}})
    logging.getLogger("user.model").warning("tab\tkept, CR\r, LF\n, ESC\x1b, NEL\x85 escaped")
    lines = log_output.getvalue().splitlines()
    assert lines
    assert not any(line.startswith("FORGED") for line in lines)
    assert "\x1b" not in log_output.getvalue()
    assert "\r" not in log_output.getvalue()
    assert any("/health\\r\\nFORGED 200\\x1b[2J" in line for line in lines)
    assert "tab\tkept, CR\\r, LF\\n, ESC\\x1b, NEL\\x85 escaped" in log_output.getvalue()


def test_the_access_record_itself_is_escaped_for_any_handler(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = serve(Echo)
    with caplog.at_level(logging.INFO, logger="relaxml.access"):  # pytest's handler, not ours
        app.get("/x%00%1d%0d%0aFORGED")
        app.request("G\x01T", "/health")
        app.post("/webhook", json={"action": "A\r\nFORGED", "project": {"id": 1}})
    messages = [r.getMessage() for r in caplog.records if r.name == "relaxml.access"]
    assert len(messages) == 3
    for message in messages:
        assert not any(ord(c) < 0x20 for c in message), message
    assert "/x\\x00\\x1d\\r\\nFORGED 404" in messages[0]


def test_a_traceback_keeps_its_lines_but_escapes_the_rest(log_output: io.StringIO) -> None:
    try:
        raise ValueError("bad\x1b[2Jvalue\rforged")
    except ValueError:
        logging.getLogger("relaxml").exception("failed")
    out = log_output.getvalue()
    assert "Traceback (most recent call last):\n" in out
    assert "bad\\x1b[2Jvalue\\rforged" in out
    assert escape("a\nb", keep_newlines=True) == "a\nb"
    assert escape("a\nb") == "a\\nb"


# --- item 10: bounded metric labels ------------------------------------------------------------


def test_unknown_methods_and_paths_do_not_grow_the_metrics(serve: Any) -> None:
    app = serve(Echo)
    for i in range(60):
        app.request(f"M{i}", "/health")
        app.get(f"/no-such-route-{i}")
    text = app.get("/metrics").text
    series = [line for line in text.splitlines() if line.startswith("relaxml_requests_total{")]
    assert 'method="OTHER"' in text
    assert 'route="other"' in text
    assert not any('method="M' in line or "no-such-route" in line for line in series)
    assert len(series) < 10


def test_a_metric_never_holds_more_than_max_series() -> None:
    metrics = Metrics()
    for i in range(MAX_SERIES + 50):
        metrics.inc("x_total", route=f"/r{i}")
        metrics.observe("x_seconds", 0.1, route=f"/r{i}")
    text = metrics.render()
    assert sum(line.startswith("x_total{") for line in text.splitlines()) == MAX_SERIES + 1
    assert metrics.value("x_total", route="other") == 50


# --- item 11: the client pool is bounded -------------------------------------------------------


def test_the_client_pool_keeps_only_the_most_recent_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed: list[LabelStudioClient] = []
    monkeypatch.setattr(LabelStudioClient, "close", lambda self: closed.append(self))
    pool = ClientPool(max_clients=3)
    clients = [pool.get("http://ls:8080", f"token-number-{i}") for i in range(10)]
    assert len(pool) == 3
    assert closed == clients[:7]
    assert pool.get("http://ls:8080", "token-number-9") is clients[9]
    with pytest.raises(LabelStudioError, match="http"):
        pool.get("ls-without-scheme:8080", "token-number-x")


# --- Basic Auth: UTF-8 or latin-1 ----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_a_non_ascii_basic_auth_password_works_in_utf8_and_latin1(
    serve: Any, encoding: str
) -> None:
    app = serve(Echo, basic_auth_user="ml", basic_auth_pass="pässwörd-ü")

    def header(user: str, password: str, enc: str) -> dict[str, str]:
        raw = base64.b64encode(f"{user}:{password}".encode(enc)).decode()
        return {"Authorization": f"Basic {raw}"}

    assert app.get("/health", headers=header("ml", "pässwörd-ü", encoding)).status_code == 200
    assert app.get("/health", headers=header("ml", "passwörd-ü", encoding)).status_code == 401
    assert app.get("/health").status_code == 401


def test_a_password_latin1_cannot_encode_still_works_in_utf8() -> None:
    middleware = BasicAuthMiddleware(Echo, user="ml", password="пароль-密码")  # type: ignore[arg-type]
    raw = base64.b64encode("ml:пароль-密码".encode()).decode()
    scope = {"headers": [(b"authorization", f"Basic {raw}".encode())]}
    assert middleware._check(scope)
