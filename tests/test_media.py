"""MediaFetcher against real HTTP servers on 127.0.0.1: a fake Label Studio, bucket and site.

The bucket and the third-party site record the headers they receive, so each test can assert
that Label Studio's credentials never left Label Studio's origin.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from relaxml.labelstudio._urls import redact_url, resolve_url
from relaxml.labelstudio.client import LabelStudioClient
from relaxml.labelstudio.media import MediaError, MediaFetcher

from .support.httpfakes import FakeServer, Reply, Seen, make_jwt

KEY = "k"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PHOTO = b"\xff\xd8\xff" + b"jpeg" * 300


class World:
    """A fake Label Studio (`ls`), a bucket its resolve endpoint redirects to, and a third party.

    Label Studio requires `Token k` (or the Bearer access token its refresh endpoint hands out)
    on everything but `/api/token/refresh/`.
    """

    def __init__(self) -> None:
        self.files: dict[str, Reply] = {
            "/data/upload/1/abc123-cat.png": Reply(body=PNG, headers={"Content-Type": "image/png"}),
        }
        self.local_files: dict[str, bytes] = {"set/dog.jpg": PHOTO}
        self.resolve: Callable[[str, str], Reply] = self.presign
        self.access = make_jwt(time.time() + 300, token_type="access")
        self.bucket_files: dict[str, Reply] = {"/bucket/img/1.png": Reply(body=PNG)}
        self.third_files: dict[str, Reply] = {"/pic.png": Reply(body=PNG)}
        self.ls = FakeServer(self.label_studio).start()
        self.bucket = FakeServer(lambda seen: self.serve(self.bucket_files, seen)).start()
        self.third = FakeServer(lambda seen: self.serve(self.third_files, seen)).start()

    def stop(self) -> None:
        for server in (self.ls, self.bucket, self.third):
            server.stop()

    def label_studio(self, seen: Seen) -> Reply:
        if seen.route == "/api/token/refresh/":
            return Reply.json({"access": self.access})
        if seen.headers.get("authorization") not in (f"Token {KEY}", f"Bearer {self.access}"):
            return Reply.json({"detail": "Authentication credentials were not provided."}, 401)
        if seen.route == "/data/local-files/":
            d = seen.query.get("d", [""])[0]
            return Reply(body=self.local_files[d]) if d in self.local_files else Reply(404)
        parts = seen.route.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "tasks" and parts[2] == "resolve":
            uri = base64.urlsafe_b64decode(seen.query["fileuri"][0]).decode()
            return self.resolve(parts[1], uri)
        return self.serve(self.files, seen)

    def presign(self, task_id: str, uri: str) -> Reply:
        """Like storage.presign=true: a 303 to a signed URL that changes on every call."""
        key = uri.split("://", 1)[1]
        signature = f"X-Amz-Signature=secret{time.monotonic_ns()}"
        return Reply.redirect(f"{self.bucket.url}/bucket/{key.split('/', 1)[1]}?{signature}")

    @staticmethod
    def serve(files: dict[str, Reply], seen: Seen) -> Reply:
        return files.get(seen.route) or Reply(404, b"not found")

    def client(self, key: str | None = KEY, **kw: Any) -> LabelStudioClient:
        return LabelStudioClient(self.ls.url, key, sleep=lambda _: None, **kw)

    def no_credentials_left_label_studio(self) -> bool:
        return self.bucket.authorizations() + self.third.authorizations() == [None] * (
            len(self.bucket.seen) + len(self.third.seen)
        )


@pytest.fixture
def world() -> Iterator[World]:
    world = World()
    yield world
    assert world.no_credentials_left_label_studio()
    world.stop()


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., MediaFetcher]]:
    made: list[tuple[MediaFetcher, LabelStudioClient | None]] = []

    def build(client: LabelStudioClient | None, **kw: Any) -> MediaFetcher:
        kw.setdefault("timeout", 5)
        fetcher = MediaFetcher(client, tmp_path / "cache", **kw)
        made.append((fetcher, client))
        return fetcher

    yield build
    for fetcher, client in made:
        fetcher.close()
        if client is not None:
            client.close()


# --- every URL shape ---------------------------------------------------------------------------


def test_an_upload_is_fetched_from_label_studio_with_the_token(world, make):
    path = make(world.client()).path("/data/upload/1/abc123-cat.png")
    assert path.read_bytes() == PNG
    assert path.suffix == ".png"
    assert world.ls.authorizations() == [f"Token {KEY}"]


def test_a_personal_access_token_is_exchanged_and_sent_as_bearer(world, make):
    pat = make_jwt(time.time() + 10**9, token_type="refresh")
    path = make(world.client(pat)).path("/data/upload/1/abc123-cat.png")
    assert path.read_bytes() == PNG
    assert [s.route for s in world.ls.seen] == [
        "/api/token/refresh/",
        "/data/upload/1/abc123-cat.png",
    ]
    assert world.ls.authorizations() == [None, f"Bearer {world.access}"]


def test_a_401_says_to_set_label_studio_api_key(world, make):
    with pytest.raises(MediaError, match="set LABEL_STUDIO_API_KEY") as caught:
        make(world.client(None)).path("/data/upload/1/abc123-cat.png")
    assert caught.value.status_code == 401
    assert "/data/upload/1/abc123-cat.png" in str(caught.value)


@pytest.mark.parametrize("absolute", [False, True])
def test_local_files_are_downloaded_from_label_studio_without_a_root(world, make, absolute):
    value = ("" if not absolute else world.ls.url) + "/data/local-files/?d=set%2Fdog.jpg"
    path = make(world.client()).path(value)
    assert path.read_bytes() == PHOTO
    assert path.suffix == ".jpg"
    assert world.ls.seen[0].query == {"d": ["set/dog.jpg"]}
    assert world.ls.authorizations() == [f"Token {KEY}"]


def test_local_files_are_read_from_disk_under_the_root(world, make, tmp_path):
    root = tmp_path / "root"
    (root / "set 1").mkdir(parents=True)
    (root / "set 1" / "dog.jpg").write_bytes(PHOTO)
    fetcher = make(world.client(), local_files_root=root)
    for value in (
        "/data/local-files/?d=set%201/dog.jpg",
        world.ls.url + "/data/local-files/?d=set%201%2Fdog.jpg",
    ):
        assert fetcher.path(value) == (root / "set 1" / "dog.jpg").resolve()
    assert world.ls.seen == []


def test_local_files_work_from_disk_without_label_studio(make, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.png").write_bytes(PNG)
    assert make(None, local_files_root=root).path("/data/local-files/?d=a.png").read_bytes() == PNG


def test_a_local_file_missing_on_disk_is_downloaded_from_label_studio(world, make, tmp_path):
    (tmp_path / "root").mkdir()
    path = make(world.client(), local_files_root=tmp_path / "root").path(
        "/data/local-files/?d=set/dog.jpg"
    )
    assert path.read_bytes() == PHOTO
    assert path.is_relative_to(tmp_path / "cache")


def test_local_files_without_root_or_label_studio_say_what_to_set(make):
    with pytest.raises(MediaError, match=r"LOCAL_FILES_DOCUMENT_ROOT.*LABEL_STUDIO_URL"):
        make(None).path("/data/local-files/?d=a.png")


def test_an_absolute_local_files_url_on_another_host_goes_to_our_label_studio(world, make):
    # Label Studio wrote its LABEL_STUDIO_HOST (say http://localhost:8080) into the URL; from
    # a container that host is not Label Studio: ask the one we know, never that host.
    value = world.third.url + "/data/local-files/?d=set/dog.jpg"
    assert make(world.client()).path(value).read_bytes() == PHOTO
    assert world.third.seen == []
    assert world.ls.authorizations() == [f"Token {KEY}"]


@pytest.mark.parametrize("scheme", ["s3", "gs", "azure-blob"])
def test_cloud_uris_are_resolved_and_the_presigned_url_gets_no_credentials(world, make, scheme):
    path = make(world.client()).path(f"{scheme}://bucket/img/1.png", task_id=42)
    assert path.read_bytes() == PNG
    assert path.suffix == ".png"
    (resolve,) = world.ls.seen
    assert resolve.route == "/tasks/42/resolve/"
    assert (
        base64.urlsafe_b64decode(resolve.query["fileuri"][0]).decode()
        == f"{scheme}://bucket/img/1.png"
    )
    assert resolve.headers["authorization"] == f"Token {KEY}"
    assert world.bucket.authorizations() == [None]
    assert world.bucket.seen[0].query["X-Amz-Signature"][0].startswith("secret")


def test_a_resolve_that_proxies_the_bytes_works(world, make):
    world.resolve = lambda task_id, uri: Reply(body=PHOTO, headers={"Content-Type": "image/jpeg"})
    assert make(world.client()).path("gs://b/photo", task_id=1).read_bytes() == PHOTO
    assert world.bucket.seen == []


def test_cloud_uris_need_a_task_id(world, make):
    with pytest.raises(MediaError, match=r"task_id is needed to resolve s3:// URIs"):
        make(world.client()).path("s3://bucket/img/1.png")
    assert world.ls.seen == []


def test_a_cloud_uri_no_storage_covers_says_so(world, make):
    world.resolve = lambda task_id, uri: Reply.json({}, 404)
    with pytest.raises(MediaError, match="no cloud storage") as caught:
        make(world.client()).path("s3://elsewhere/x.png", task_id=3)
    assert caught.value.status_code == 404


def test_an_expired_presigned_url_is_reported_without_its_signature(world, make):
    world.bucket_files.clear()
    world.bucket_files["/bucket/img/1.png"] = Reply(403, b"Request has expired")
    with pytest.raises(MediaError, match="presign_ttl") as caught:
        make(world.client()).path("s3://bucket/img/1.png", task_id=1)
    assert "secret" not in str(caught.value)
    assert caught.value.status_code == 403


def test_a_plain_url_is_fetched_without_credentials(world, make):
    assert make(world.client()).path(world.third.url + "/pic.png").read_bytes() == PNG
    assert world.ls.seen == []
    assert world.third.authorizations() == [None]


def test_a_plain_url_works_without_label_studio(world, make):
    assert make(None).path(world.third.url + "/pic.png").read_bytes() == PNG


# --- redirects and credentials -----------------------------------------------------------------


def test_a_redirect_from_label_studio_to_another_host_carries_no_credentials(world, make):
    world.files["/data/upload/1/moved.png"] = Reply.redirect(world.third.url + "/pic.png", 302)
    assert make(world.client()).path("/data/upload/1/moved.png").read_bytes() == PNG
    assert world.third.authorizations() == [None]


def test_a_redirect_within_label_studio_keeps_credentials(world, make):
    world.files["/data/upload/old.png"] = Reply.redirect("/data/upload/1/abc123-cat.png", 301)
    assert make(world.client()).path("/data/upload/old.png").read_bytes() == PNG
    assert world.ls.authorizations() == [f"Token {KEY}"] * 2


def test_credentials_are_not_sent_once_a_chain_has_left_label_studio(world, make):
    world.third_files["/bounce.png"] = Reply.redirect(
        world.ls.url + "/data/upload/1/abc123-cat.png", 302
    )
    with pytest.raises(MediaError, match="answered 401") as caught:
        make(world.client()).path(world.third.url + "/bounce.png")
    assert world.ls.authorizations() == [None]
    assert "once a redirect has left Label Studio" in str(caught.value)


def test_a_401_from_another_host_suggests_label_studio_url(world, make):
    world.third_files["/data/upload/1/a.png"] = Reply(401, b"who are you")
    with pytest.raises(MediaError, match="set LABEL_STUDIO_URL") as caught:
        make(world.client()).path(world.third.url + "/data/upload/1/a.png")
    assert caught.value.status_code == 401
    assert world.third.authorizations() == [None]


def test_redirect_loops_stop(world, make):
    world.third_files["/loop"] = Reply.redirect("/loop", 302)
    with pytest.raises(MediaError, match="too many redirects"):
        make(world.client(), max_redirects=3).path(world.third.url + "/loop")
    assert len(world.third.seen) == 4


def test_a_redirect_to_another_scheme_is_refused(world, make):
    world.third_files["/ftp"] = Reply.redirect("file:///etc/passwd", 302)
    with pytest.raises(MediaError, match="not http"):
        make(world.client()).path(world.third.url + "/ftp")


# --- path traversal ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d",
    [
        "../../etc/passwd",
        "set/../../outside.png",
        "%2e%2e/outside.png",
        "/etc/passwd",
        "a\\..\\b",
        "",
    ],
)
@pytest.mark.parametrize("with_root", [True, False])
def test_path_traversal_is_refused_before_any_request(world, make, tmp_path, d, with_root):
    root = tmp_path / "root" / "inner"
    root.mkdir(parents=True)
    (tmp_path / "root" / "outside.png").write_bytes(PNG)
    fetcher = make(world.client(), local_files_root=root if with_root else None)
    with pytest.raises(MediaError, match="refused"):
        fetcher.path(f"/data/local-files/?d={d}")
    assert world.ls.seen == []


def test_a_symlink_out_of_the_root_is_refused(world, make, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (root / "link.png").symlink_to(secret)
    (root / "dir").symlink_to(tmp_path)
    fetcher = make(world.client(), local_files_root=root)
    for d in ("link.png", "dir/secret.txt"):
        with pytest.raises(MediaError, match="outside LOCAL_FILES_DOCUMENT_ROOT"):
            fetcher.path(f"/data/local-files/?d={d}")
    assert world.ls.seen == []


def test_a_symlink_inside_the_root_is_followed(make, tmp_path):
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.png").write_bytes(PNG)
    (root / "alias.png").symlink_to(root / "real" / "a.png")
    path = make(None, local_files_root=root).path("/data/local-files/?d=alias.png")
    assert path == (root / "real" / "a.png").resolve()


# --- size limits -------------------------------------------------------------------------------


def leftovers(tmp_path: Path) -> list[str]:
    cache = tmp_path / "cache"
    return sorted(os.listdir(cache / "tmp")) + sorted(os.listdir(cache / "blobs"))


def test_content_length_over_the_limit_is_refused_before_reading(world, make, tmp_path):
    world.third_files["/big"] = Reply(body=b"x" * 5000)
    with pytest.raises(
        MediaError, match=r"larger than the 4 KiB limit \(4.88 KiB\): raise max_bytes"
    ):
        make(None, max_bytes=4096).path(world.third.url + "/big")
    assert leftovers(tmp_path) == []


def test_a_stream_without_content_length_is_cut_at_the_limit(world, make, tmp_path):
    world.third_files["/endless"] = Reply(body=(b"x" * 1024 for _ in range(10_000)))
    with pytest.raises(MediaError, match="larger than"):
        make(None, max_bytes=8192).path(world.third.url + "/endless")
    assert leftovers(tmp_path) == []


def test_a_file_exactly_at_the_limit_is_accepted(world, make):
    world.third_files["/exact"] = Reply(body=b"y" * 4096, length=False)
    assert make(None, max_bytes=4096).path(world.third.url + "/exact").stat().st_size == 4096


# --- the cache ---------------------------------------------------------------------------------


def test_a_second_fetch_is_a_cache_hit_without_network(world, make):
    fetcher = make(world.client())
    first = fetcher.path("/data/upload/1/abc123-cat.png")
    assert fetcher.path("/data/upload/1/abc123-cat.png") == first
    assert len(world.ls.seen) == 1


def test_the_cache_key_is_the_uri_not_the_presigned_url(world, make):
    fetcher = make(world.client())
    first = fetcher.path("s3://bucket/img/1.png", task_id=1)
    assert fetcher.path("s3://bucket/img/1.png", task_id=2) == first
    assert len(world.ls.seen) == 1
    assert len(world.bucket.seen) == 1


def test_the_cache_survives_a_new_fetcher(world, make):
    first = make(world.client()).path("/data/upload/1/abc123-cat.png")
    assert make(world.client()).path("/data/upload/1/abc123-cat.png") == first
    assert len(world.ls.seen) == 1


def test_identical_content_is_stored_once(world, make, tmp_path):
    fetcher = make(world.client())
    a = fetcher.path("/data/upload/1/abc123-cat.png")
    b = fetcher.path(world.third.url + "/pic.png")
    assert a == b
    assert len(os.listdir(tmp_path / "cache" / "blobs")) == 1


def test_a_suffix_comes_from_the_content_type_when_the_url_has_none(world, make):
    world.third_files["/photo"] = Reply(body=PHOTO, headers={"Content-Type": "image/jpeg"})
    assert make(None).path(world.third.url + "/photo").suffix == ".jpg"


def test_eviction_keeps_the_cache_under_its_cap_least_recently_used_first(world, make):
    for name in "abcd":
        world.third_files[f"/{name}"] = Reply(body=name.encode() * 1000)
    fetcher = make(None, cache_bytes=2500)
    url = world.third.url
    a = fetcher.path(url + "/a")
    os.utime(a, (time.time() - 100, time.time() - 100))
    b = fetcher.path(url + "/b")
    os.utime(b, (time.time() - 50, time.time() - 50))
    fetcher.path(url + "/a")  # a hit: now the most recently used
    fetcher.path(url + "/c")  # 3000 bytes > 2500: b goes
    assert fetcher.cache.size() <= 2500
    assert a.exists()
    assert not b.exists()
    before = len(world.third.seen)
    fetcher.path(url + "/b")  # evicted: downloaded again
    assert len(world.third.seen) == before + 1
    assert fetcher.cache.size() <= 2500


def test_a_file_bigger_than_the_cap_is_still_returned(world, make):
    world.third_files["/huge"] = Reply(body=b"h" * 3000)
    path = make(None, cache_bytes=1000).path(world.third.url + "/huge")
    assert path.read_bytes() == b"h" * 3000


def test_a_cache_that_cannot_be_written_is_a_media_error(world, make, tmp_path):
    fetcher = make(world.client())
    (tmp_path / "cache" / "tmp").rmdir()
    (tmp_path / "cache" / "tmp").write_text("not a directory")
    with pytest.raises(MediaError, match="into the cache at"):
        fetcher.path("/data/upload/1/abc123-cat.png")


def test_a_wiped_cache_directory_is_recreated(world, make, tmp_path):
    fetcher = make(world.client())
    fetcher.path("/data/upload/1/abc123-cat.png")
    shutil.rmtree(tmp_path / "cache")
    assert fetcher.path("/data/upload/1/abc123-cat.png").read_bytes() == PNG
    assert len(world.ls.seen) == 2


def test_a_tampered_index_entry_is_ignored(world, make, tmp_path):
    fetcher = make(world.client())
    fetcher.path("/data/upload/1/abc123-cat.png")
    (entry,) = (tmp_path / "cache" / "index").iterdir()
    entry.write_text("../../../etc/passwd")
    assert fetcher.path("/data/upload/1/abc123-cat.png").read_bytes() == PNG
    assert len(world.ls.seen) == 2


def test_concurrent_fetches_of_one_value_download_it_once(world, make):
    world.files["/data/upload/slow.png"] = Reply(body=[PNG[:100], PNG[100:]], pause=0.2)
    fetcher = make(world.client())
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(fetcher.path("/data/upload/slow.png")))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert len(results) == 6
    assert len(world.ls.seen) == 1


# --- timeouts ----------------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def test_a_silent_server_times_out_quickly(make, silent_port):
    started = time.monotonic()
    with pytest.raises(MediaError, match="timed out"):
        make(None, timeout=0.3).path(f"http://127.0.0.1:{silent_port}/a.png")
    assert time.monotonic() - started < 3


def test_a_silent_label_studio_times_out_quickly(make, silent_port):
    client = LabelStudioClient(
        f"http://127.0.0.1:{silent_port}", KEY, retries=1, sleep=lambda _: None
    )
    started = time.monotonic()
    with pytest.raises(MediaError, match="cannot reach Label Studio"):
        make(client, timeout=0.3).path("/data/upload/1/a.png")
    assert time.monotonic() - started < 3


def test_a_download_that_stalls_midway_times_out_and_leaves_nothing(world, make, tmp_path):
    def stall() -> Iterator[bytes]:
        yield b"x" * 100
        time.sleep(1.5)
        yield b"y"

    world.third_files["/stall"] = Reply(body=stall(), length=False)
    with pytest.raises(
        MediaError, match=r"broke off after \d+ bytes: ConnectionError \(read timeout 0.3 s\)"
    ):
        make(None, timeout=0.3).path(world.third.url + "/stall")
    assert leftovers(tmp_path) == []


# --- URLs and messages -------------------------------------------------------------------------


def test_sub_path_deployments_resolve_relative_values_once():
    with closing(LabelStudioClient("http://h/label-studio/", None)) as client:
        for value in ("/data/upload/1/a.png", "/label-studio/data/upload/1/a.png"):
            assert resolve_url(value, client) == "http://h/label-studio/data/upload/1/a.png"
        assert resolve_url("s3://b/k", client, 5).startswith(
            "http://h/label-studio/tasks/5/resolve/?fileuri="
        )


def test_relative_values_need_label_studio(make):
    with pytest.raises(MediaError, match="set LABEL_STUDIO_URL"):
        make(None).path("/data/upload/1/a.png")


@pytest.mark.parametrize(
    "value", ["ftp://h/a.png", "data/upload/1/a.png", "//evil/a.png", "C:\\a.png"]
)
def test_unsupported_values_are_refused_with_the_shapes_we_accept(world, make, value):
    with pytest.raises(MediaError, match=r"expected a Label Studio path|backslash"):
        make(world.client()).path(value)
    assert world.ls.seen == []


def test_redact_drops_signatures_and_user_info_but_keeps_label_studio_parameters():
    assert (
        redact_url("https://u:p@b.s3.amazonaws.com/k.png?X-Amz-Signature=s")
        == "https://b.s3.amazonaws.com/k.png?…"
    )
    assert (
        redact_url("http://ls/data/local-files/?d=a%2Fb.png")
        == "http://ls/data/local-files/?d=a%2Fb.png"
    )
    assert redact_url("s3://bucket/key") == "s3://bucket/key"


# --- text behind a URL (valueType="url") --------------------------------------------------------


def test_read_text_fetches_a_text_through_the_media_rules(world, make):
    from relaxml import Context
    from relaxml.projects import Project

    world.files["/data/upload/1/review.txt"] = Reply(
        body="Très bien — 5★\n".encode() + b"\xff end", headers={"Content-Type": "text/plain"}
    )
    world.third_files["/page.html"] = Reply(body=b"<p>hello</p>")
    context = Context(project=Project(uid="1.1"), media=make(world.client()))
    assert context.read_text("/data/upload/1/review.txt", 7) == "Très bien — 5★\n\ufffd end"
    assert world.ls.authorizations() == [f"Token {KEY}"]
    assert context.read_text(world.third.url + "/page.html") == "<p>hello</p>"
    assert world.third.authorizations() == [None]  # no credentials for another host


def test_read_text_needs_the_server_like_local_path():
    from relaxml import Context
    from relaxml.projects import Project

    with pytest.raises(RuntimeError, match="no media fetcher"):
        Context(project=Project(uid="1.1")).read_text("/data/upload/1/review.txt")
