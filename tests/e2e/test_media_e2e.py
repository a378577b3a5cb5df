"""MediaFetcher against a real Label Studio 1.23.2: uploads and Local Files storage, both keys."""

from __future__ import annotations

import secrets
import struct
import zlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relaxml.labelstudio.client import LabelStudioClient
from relaxml.labelstudio.media import MediaError, MediaFetcher

from ..support.labelstudio import LabelStudio

LABEL_CONFIG = """
<View>
  <Image name="image" value="$image"/>
  <Choices name="kind" toName="image">
    <Choice value="cat"/>
    <Choice value="dog"/>
  </Choices>
</View>
"""


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid RGB PNG of one colour, built with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width  # filter type 0, then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@dataclass
class MediaProject:
    """A project with one uploaded PNG and PNGs in a Local Files storage."""

    task_id: int  # the upload's task
    uploaded: str  # the task-data value of the upload: /data/upload/...
    uploaded_png: bytes
    local_absolute: str  # written by the storage sync: http://127.0.0.1:P/data/local-files/?d=...
    local_relative: str  # imported by hand: /data/local-files/?d=...
    local_path: Path
    local_png: bytes


def task_values(ls: LabelStudio, project_id: int) -> dict[int, str]:
    tasks = ls.api("GET", "/api/tasks", params={"project": project_id}).json()["tasks"]
    return {task["id"]: next(iter(task["data"].values())) for task in tasks}


@pytest.fixture(scope="module")
def media_project(label_studio: LabelStudio) -> MediaProject:
    ls = label_studio
    project_id = ls.create_project("relaxml media", LABEL_CONFIG)["id"]

    uploaded_png = png(7, 5, (200, 30, 30))
    ls.api(
        "POST",
        f"/api/projects/{project_id}/import",
        files={"file": ("cat.png", uploaded_png, "image/png")},
    )
    ((task_id, uploaded),) = task_values(ls, project_id).items()

    folder = ls.local_files_root / f"media-{secrets.token_hex(4)}"
    (folder / "sub dir").mkdir(parents=True)
    local_path = folder / "sub dir" / "dog.png"
    local_png = png(4, 9, (30, 200, 30))
    local_path.write_bytes(local_png)
    storage = ls.api(
        "POST",
        "/api/storages/localfiles/",
        json={
            "project": project_id,
            "title": "relaxml media",
            "path": str(folder),
            "regex_filter": r".*\.png",
            "use_blob_urls": True,
            "recursive_scan": True,
        },
    ).json()
    ls.api("POST", f"/api/storages/localfiles/{storage['id']}/sync")
    (local_absolute,) = (v for v in task_values(ls, project_id).values() if "local-files" in v)

    relative = local_path.relative_to(ls.local_files_root).as_posix()
    local_relative = f"/data/local-files/?d={relative}"
    ls.import_tasks(project_id, [{"data": {"image": local_relative}}])
    return MediaProject(
        task_id, uploaded, uploaded_png, local_absolute, local_relative, local_path, local_png
    )


@pytest.fixture(params=["token", "pat"])
def client(
    request: pytest.FixtureRequest, label_studio: LabelStudio
) -> Iterator[LabelStudioClient]:
    key = label_studio.token if request.param == "token" else label_studio.personal_access_token()
    with closing(LabelStudioClient(label_studio.url, key)) as client:
        yield client


@pytest.fixture
def connect(label_studio: LabelStudio) -> Iterator[Any]:
    """Build clients for this Label Studio (with the legacy token by default); closed at the end."""
    made: list[LabelStudioClient] = []

    def build(
        key: str | None = label_studio.token, url: str = label_studio.url
    ) -> LabelStudioClient:
        made.append(LabelStudioClient(url, key))
        return made[-1]

    yield build
    for client in made:
        client.close()


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    made: list[MediaFetcher] = []

    def build(client: LabelStudioClient | None, **kw: Any) -> MediaFetcher:
        made.append(MediaFetcher(client, tmp_path / "cache", timeout=30, **kw))
        return made[-1]

    yield build
    for fetcher in made:
        fetcher.close()


def test_label_studio_writes_the_shapes_we_expect(media_project, label_studio):
    assert media_project.uploaded.startswith("/data/upload/")
    assert media_project.local_absolute.startswith(label_studio.url + "/data/local-files/?d=")
    assert "sub%20dir/dog.png" in media_project.local_absolute


def test_an_upload_is_downloaded_with_either_key(media_project, client, make):
    path = make(client).path(media_project.uploaded)
    assert path.read_bytes() == media_project.uploaded_png
    assert path.suffix == ".png"


@pytest.mark.parametrize("shape", ["local_absolute", "local_relative"])
def test_local_files_are_downloaded_through_label_studio(media_project, client, make, shape):
    path = make(client).path(getattr(media_project, shape))
    assert path.read_bytes() == media_project.local_png
    assert path != media_project.local_path.resolve()


@pytest.mark.parametrize("shape", ["local_absolute", "local_relative"])
def test_local_files_are_read_from_disk_under_the_root(media_project, label_studio, make, shape):
    fetcher = make(None, local_files_root=label_studio.local_files_root)
    assert fetcher.path(getattr(media_project, shape)) == media_project.local_path.resolve()


def test_a_second_fetch_comes_from_the_cache(media_project, client, make, monkeypatch):
    fetcher = make(client)
    first = fetcher.path(media_project.uploaded)
    calls: list[Any] = []
    monkeypatch.setattr(client, "request", lambda *args, **kw: calls.append(args))
    assert fetcher.path(media_project.uploaded) == first
    assert calls == []


def test_a_label_studio_host_unreachable_from_here_is_bypassed(
    media_project, label_studio, connect, make
):
    # Like Docker: Label Studio wrote http://127.0.0.1:P into the task, relaxml reaches it as
    # http://localhost:P. The fetcher asks the Label Studio it knows, not the host in the URL.
    client = connect(url=label_studio.url.replace("127.0.0.1", "localhost"))
    path = make(client).path(media_project.local_absolute)
    assert path.read_bytes() == media_project.local_png


def test_without_a_key_the_error_says_to_set_one(media_project, connect, make):
    with pytest.raises(MediaError, match="set LABEL_STUDIO_API_KEY") as caught:
        make(connect(None)).path(media_project.uploaded)
    assert caught.value.status_code == 401


def test_a_file_outside_every_storage_is_not_found(label_studio, connect, make):
    (label_studio.local_files_root / "stray.png").write_bytes(png(1, 1, (0, 0, 0)))
    with pytest.raises(MediaError, match="inside a Local Files storage") as caught:
        make(connect()).path("/data/local-files/?d=stray.png")
    assert caught.value.status_code == 404


def test_a_cloud_uri_without_a_storage_is_not_found(media_project, connect, make):
    with pytest.raises(MediaError, match="no cloud storage") as caught:
        make(connect()).path("s3://no-such-bucket/a.png", task_id=media_project.task_id)
    assert caught.value.status_code == 404


def test_a_served_model_downloads_and_predicts_on_the_images(
    media_project, label_studio, backend_factory, free_port, tmp_path
):
    """Upload (red) and Local Files (green) images, fetched by a model behind `relaxml serve`."""
    from .test_serving import serve

    ls = label_studio
    project_id = ls.get_task(media_project.task_id)["project"]
    backend = serve(
        backend_factory,
        free_port,
        "tests/support/image_model.py:ColourOfImage",
        env={
            "RELAXML_DATA_DIR": str(tmp_path),
            "LABEL_STUDIO_API_KEY": ls.token,
            "LABEL_STUDIO_URL": ls.url,
        },
    )
    ls.register_ml_backend(project_id, backend.url)
    ls.retrieve_predictions(project_id)
    predictions = [
        p for p in ls.list_predictions(project_id=project_id) if p["model_version"] == "colour-1"
    ]
    labels = {p["task"]: p["result"][0]["value"]["choices"][0] for p in predictions}
    values = task_values(ls, project_id)
    assert len(labels) == len(values) == 3
    for task_id, value in values.items():
        assert labels[task_id] == ("cat" if "upload" in value else "dog"), value
    assert any((tmp_path / "media").rglob("*.png"))  # downloads went through the cache
