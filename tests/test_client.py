"""LabelStudioClient against a real HTTP server on 127.0.0.1: auth schemes, retries, origins."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import closing

import pytest

from relaxml.labelstudio.client import (
    LabelStudioClient,
    LabelStudioError,
    is_jwt,
    jwt_expiry,
    origin,
)

from .support.httpfakes import FakeServer, Handler, Reply, Seen, make_jwt

LEGACY = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def server() -> Iterator[Callable[[Handler], FakeServer]]:
    started: list[FakeServer] = []

    def start(handler: Handler) -> FakeServer:
        started.append(FakeServer(handler).start())
        return started[-1]

    yield start
    for fake in started:
        fake.stop()


def client_for(url: str, key: str | None, **kw: object) -> tuple[LabelStudioClient, list[float]]:
    delays: list[float] = []
    client = LabelStudioClient(url, key, sleep=delays.append, timeout=5, **kw)  # type: ignore[arg-type]
    return client, delays


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- key detection -----------------------------------------------------------------------------


def test_a_legacy_key_is_not_a_jwt_and_a_pat_is():
    assert not is_jwt(LEGACY)
    assert not is_jwt("a.b.c")
    assert is_jwt(make_jwt(time.time() + 60))
    assert jwt_expiry(make_jwt(1234)) == 1234.0
    assert jwt_expiry("nonsense") is None


def test_repr_names_the_scheme_never_the_key():
    pat = make_jwt(time.time() + 3600)
    assert "auth=token" in repr(LabelStudioClient("http://h", LEGACY))
    assert "auth=pat" in repr(LabelStudioClient("http://h", pat))
    assert "auth=none" in repr(LabelStudioClient("http://h", None))
    assert LEGACY not in repr(LabelStudioClient("http://h", LEGACY))


def test_legacy_key_is_sent_as_token(server):
    ls = server(lambda seen: Reply.json({"ok": True}))
    client, _ = client_for(ls.url, LEGACY)
    with closing(client), client.request("GET", "api/projects/") as response:
        assert response.json() == {"ok": True}
    assert ls.authorizations() == [f"Token {LEGACY}"]


def test_no_key_sends_no_authorization(server):
    ls = server(lambda seen: Reply.json({}))
    client, _ = client_for(ls.url, None)
    with closing(client), client.request("GET", "/api/projects/"):
        pass
    assert ls.authorizations() == [None]


# --- personal access tokens --------------------------------------------------------------------


def pat_server(accesses: list[str], pat: str) -> Handler:
    """Label Studio's refresh endpoint handing out `accesses` in turn; any of them is accepted."""
    valid = {f"Bearer {access}" for access in accesses}

    def handle(seen: Seen) -> Reply:
        if seen.route == "/api/token/refresh/":
            assert seen.headers.get("authorization") is None
            if pat.encode() not in seen.body:
                return Reply.json({"detail": "Token is invalid"}, 401)
            return Reply.json({"access": accesses.pop(0)})
        if seen.headers.get("authorization") in valid:
            return Reply.json({"ok": True})
        return Reply.json({"detail": "Given token not valid"}, 401)

    return handle


def test_pat_is_exchanged_for_a_bearer_token_and_reused_until_near_expiry(server):
    pat = make_jwt(time.time() + 10**9, token_type="refresh")
    access = make_jwt(time.time() + 300, token_type="access")
    ls = server(pat_server([access], pat))
    client, _ = client_for(ls.url, pat)
    with closing(client):
        for _ in range(3):
            client.request("GET", "api/projects/").close()
    assert [s.route for s in ls.seen] == ["/api/token/refresh/"] + ["/api/projects/"] * 3
    assert ls.authorizations()[1:] == [f"Bearer {access}"] * 3
    assert pat not in str([s.headers for s in ls.seen[1:]])


def test_an_access_token_close_to_expiry_is_refreshed_before_use(server):
    pat = make_jwt(time.time() + 10**9)
    soon = make_jwt(time.time() + 10)  # inside the 30 s margin
    fresh = make_jwt(time.time() + 300)
    ls = server(pat_server([soon, fresh], pat))
    client, _ = client_for(ls.url, pat)
    with closing(client):
        client.auth_headers()
        assert client.auth_headers() == {"Authorization": f"Bearer {fresh}"}
    assert [s.route for s in ls.seen] == ["/api/token/refresh/"] * 2


def test_a_401_refreshes_the_access_token_once(server):
    pat = make_jwt(time.time() + 10**9)
    revoked = make_jwt(time.time() + 300, n=1)
    fresh = make_jwt(time.time() + 300, n=2)
    accesses = [revoked, fresh]

    def handle(seen: Seen) -> Reply:
        if seen.route == "/api/token/refresh/":
            return Reply.json({"access": accesses.pop(0)})
        ok = seen.headers.get("authorization") == f"Bearer {fresh}"
        return Reply.json({"ok": ok}, 200 if ok else 401)

    ls = server(handle)
    client, delays = client_for(ls.url, pat)
    with closing(client), client.request("GET", "api/tasks/1/") as response:
        assert response.json() == {"ok": True}
    assert [s.route for s in ls.seen] == [
        "/api/token/refresh/",
        "/api/tasks/1/",
        "/api/token/refresh/",
        "/api/tasks/1/",
    ]
    assert delays == []


def test_a_refused_pat_says_to_create_a_new_one(server):
    ls = server(lambda seen: Reply.json({"detail": "Token is blacklisted"}, 401))
    client, _ = client_for(ls.url, make_jwt(time.time() + 10**9))
    with closing(client), pytest.raises(LabelStudioError, match="create a new one") as caught:
        client.request("GET", "api/projects/")
    assert caught.value.status_code == 401
    assert "LABEL_STUDIO_API_KEY" in str(caught.value)


# --- retries -----------------------------------------------------------------------------------


def test_connection_errors_are_retried_with_exponential_backoff():
    client, delays = client_for(
        f"http://127.0.0.1:{closed_port()}", LEGACY, retries=4, backoff=0.5, connect_timeout=1
    )
    with (
        closing(client),
        pytest.raises(LabelStudioError, match="cannot reach Label Studio") as caught,
    ):
        client.request("GET", "api/projects/")
    assert "LABEL_STUDIO_URL" in str(caught.value)
    assert len(delays) == 4
    for attempt, delay in enumerate(delays):
        assert 0.5 * 0.5 * 2**attempt <= delay <= 0.5 * 2**attempt  # jitter: 50-100 %
    assert delays[3] > delays[0]


def test_backoff_is_capped():
    client, delays = client_for(
        f"http://127.0.0.1:{closed_port()}", None, retries=6, backoff=1.0, max_backoff=3.0
    )
    with closing(client), pytest.raises(LabelStudioError):
        client.request("GET", "api/projects/")
    assert max(delays) <= 3.0


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_then_succeed(server, status):
    answers = [Reply.json({"detail": "busy"}, status)] * 2 + [Reply.json({"ok": True})]
    ls = server(lambda seen: answers.pop(0))
    client, delays = client_for(ls.url, LEGACY)
    with closing(client), client.request("GET", "api/projects/") as response:
        assert response.json() == {"ok": True}
    assert len(ls.seen) == 3
    assert len(delays) == 2


def test_retry_after_is_honoured(server):
    answers = [Reply.json({}, 429, **{"Retry-After": "7"}), Reply.json({"ok": True})]
    ls = server(lambda seen: answers.pop(0))
    client, delays = client_for(ls.url, LEGACY, backoff=0.1)
    with closing(client):
        client.request("GET", "api/projects/").close()
    assert delays == [7.0]


def test_the_last_retryable_answer_becomes_an_error(server):
    ls = server(lambda seen: Reply.json({"detail": "down for maintenance"}, 503))
    client, delays = client_for(ls.url, LEGACY, retries=2)
    with (
        closing(client),
        pytest.raises(LabelStudioError, match=r"503.*down for maintenance") as caught,
    ):
        client.request("GET", "api/projects/")
    assert caught.value.status_code == 503
    assert len(ls.seen) == 3
    assert len(delays) == 2


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_4xx_are_not_retried(server, status):
    ls = server(lambda seen: Reply.json({"detail": "nope"}, status))
    client, delays = client_for(ls.url, LEGACY)
    with (
        closing(client),
        pytest.raises(LabelStudioError, match=f"answered {status} to api/x: nope"),
    ):
        client.request("GET", "api/x")
    assert len(ls.seen) == 1
    assert delays == []


def test_retry_false_makes_one_attempt(server):
    ls = server(lambda seen: Reply.json({}, 503))
    client, delays = client_for(ls.url, LEGACY)
    with closing(client), pytest.raises(LabelStudioError):
        client.request("POST", "api/predictions/", json={}, retry=False)
    assert len(ls.seen) == 1
    assert delays == []


# --- errors ------------------------------------------------------------------------------------


def test_401_with_a_legacy_key_says_to_set_label_studio_api_key(server):
    ls = server(lambda seen: Reply.json({"detail": "Invalid token."}, 401))
    client, _ = client_for(ls.url, LEGACY)
    with (
        closing(client),
        pytest.raises(LabelStudioError, match="set LABEL_STUDIO_API_KEY") as caught,
    ):
        client.request("GET", "api/projects/")
    assert LEGACY not in str(caught.value)


def test_403_says_which_user_to_use(server):
    ls = server(lambda seen: Reply.json({"detail": "no"}, 403))
    client, _ = client_for(ls.url, LEGACY)
    with closing(client), pytest.raises(LabelStudioError, match=r"403.*user with access"):
        client.request("GET", "api/projects/7")


def test_a_non_json_error_body_is_quoted(server):
    ls = server(lambda seen: Reply(418, b"teapot here"))
    client, _ = client_for(ls.url, None)
    with closing(client), pytest.raises(LabelStudioError, match="418 to x: teapot here"):
        client.request("GET", "x")


def test_a_url_without_scheme_is_refused():
    with pytest.raises(ValueError, match="http:// or https://"):
        LabelStudioClient("label-studio:8080", None)


# --- URLs and origins --------------------------------------------------------------------------


def test_sub_path_base_urls_keep_their_prefix():
    client = LabelStudioClient("http://h/label-studio", None)
    assert client.url == "http://h/label-studio/"
    assert client.absolute("api/predictions/") == "http://h/label-studio/api/predictions/"
    assert client.absolute("/api/predictions/") == "http://h/label-studio/api/predictions/"
    assert client.absolute("https://other/x") == "https://other/x"


def test_is_own_compares_scheme_host_and_port():
    client = LabelStudioClient("http://ls.example:80/sub/", None)
    assert client.is_own("http://ls.example/anything")
    assert client.is_own("http://LS.example:80/x")
    assert client.is_own("/data/upload/1/a.png")
    assert not client.is_own("https://ls.example/x")
    assert not client.is_own("http://ls.example:8080/x")
    assert not client.is_own("http://ls.example.evil/x")
    assert not client.is_own("http://evil/ls.example")
    assert origin("https://h") == ("https", "h:443")


def test_request_refuses_urls_off_origin_and_sends_nothing(server):
    ls = server(lambda seen: Reply.json({}))
    other = server(lambda seen: Reply.json({}))
    client, _ = client_for(ls.url, LEGACY)
    with closing(client), pytest.raises(ValueError, match="not on Label Studio's origin"):
        client.request("GET", other.url + "/api/projects/")
    assert ls.seen == []
    assert other.seen == []


def test_redirects_are_returned_not_followed(server):
    other = server(lambda seen: Reply.json({}))
    ls = server(lambda seen: Reply.redirect(other.url + "/elsewhere", 302))
    client, _ = client_for(ls.url, LEGACY)
    with closing(client), client.request("GET", "data/upload/1/a.png") as response:
        assert response.status_code == 302
        assert response.headers["Location"] == other.url + "/elsewhere"
    assert other.seen == []


def test_a_connection_error_after_a_401_is_retried_then_reported(server):
    pat = make_jwt(time.time() + 10**9)

    def handle(seen: Seen) -> Reply:
        if seen.route == "/api/token/refresh/":
            return Reply.json({"access": make_jwt(time.time() + 300)})
        if len(ls.seen) == 2:
            return Reply.json({"detail": "expired"}, 401)
        return Reply(drop=True)  # the re-send after the refresh finds Label Studio gone

    ls = server(handle)
    client, delays = client_for(ls.url, pat, retries=1)
    with closing(client), pytest.raises(LabelStudioError, match="cannot reach Label Studio"):
        client.request("GET", "api/projects/")
    assert len(delays) == 1


def test_a_refresh_answer_that_is_not_json_is_a_clear_error(server):
    pat = make_jwt(time.time() + 10**9)
    ls = server(lambda seen: Reply(200, b"<html>proxy login</html>"))
    client, _ = client_for(ls.url, pat)
    with closing(client), pytest.raises(LabelStudioError, match="sent no access token"):
        client.request("GET", "api/projects/")
