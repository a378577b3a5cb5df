"""Capture the `/predict` bodies Label Studio 1.23.2's editor sends for interactive prompts.

Run by hand, from the repository root, with the dev extra installed and Label Studio set up as
for the end-to-end tests (docs/testing.md):

    python -m tests.support.capture_interactive [--out tests/fixtures/interactive]

It starts a real Label Studio on 127.0.0.1 (SQLite, a throwaway data directory), creates a
project with an uploaded 640x480 image and a config with a smart tool of every kind
(`CONFIG`), connects a recording ML backend (a small HTTP server in this process) with
interactive pre-annotation on, opens the labeling page from the Data Manager in headless
Chromium, turns on Auto-Annotation (the editor's stored setting, which its toggle sets) and
draws with the mouse: a keypoint, a negative keypoint (Alt-click, the editor's negative mode),
a keypoint with the label the config marks `negative="true"`, a rectangle, a brush stroke, an
ellipse, a polygon, and a text prompt. Every `/predict` body the backend receives is written,
verbatim but for secrets, to `<out>/<kind>.json` as `{"requests": [...]}`.

The brush stroke, the ellipse and the polygon are drawn too, but Label Studio 1.23.2 sends
nothing for them on an image: only its keypoint, rectangle and brush tools have a smart copy,
a region on an image notifies the backend only when a smart copy marked it, and the smart
brush does not mark its region. For those kinds the script writes `<kind>.handbuilt.json`: a
live body whose `params.context.result` is the editor's own serialization of the region drawn
(see the README beside the fixtures).

The editor sends a region when the next thing happens on the page, so the bodies are sorted
by the type of their regions, not by when they came. A screenshot of the page at the end is
left as `relaxml-capture-editor.png` in the system's temporary directory.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .browser import IMAGE_TRANSFORM, chromium_page, log_in, png
from .labelstudio import LabelStudio, find_or_install_label_studio
from .processes import LOOPBACK, free_port

WIDTH, HEIGHT = 640, 480
CONFIG = """<View>
  <Image name="image" value="$image"/>
  <KeyPointLabels name="kp" toName="image" smart="true">
    <Label value="Object" background="#ff0000"/>
    <Label value="Background" background="#0000ff" negative="true"/>
  </KeyPointLabels>
  <RectangleLabels name="box" toName="image" smart="true">
    <Label value="Object" background="#00ff00"/>
  </RectangleLabels>
  <BrushLabels name="brush" toName="image" smart="true">
    <Label value="Object" background="#ff00ff"/>
  </BrushLabels>
  <EllipseLabels name="ellipse" toName="image" smart="true">
    <Label value="Object" background="#00ffff"/>
  </EllipseLabels>
  <PolygonLabels name="polygon" toName="image" smart="true">
    <Label value="Object" background="#ffff00"/>
  </PolygonLabels>
  <TextArea name="prompt" toName="image" editable="true" rows="2" maxSubmissions="1"
            showSubmitButton="true"/>
</View>"""

SECRET_KEY = re.compile(r"token|password|secret|login|authorization", re.IGNORECASE)


def redact(value: Any) -> Any:
    """`value` with every non-empty value under a key that names a secret replaced."""
    if isinstance(value, dict):
        return {
            k: ("<redacted>" if SECRET_KEY.search(k) and v else redact(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class Recorder:
    """A minimal ML backend: answers every route, keeps every `/predict` body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def taken(self) -> list[dict[str, Any]]:
        with self.lock:
            bodies, self.bodies = self.bodies, []
        return bodies

    @contextmanager
    def serving(self, port: int) -> Iterator[str]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def answer(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.answer({"status": "UP", "model_version": "capture-1"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/").endswith("/predict"):
                    with recorder.lock:
                        recorder.bodies.append(body)
                    print(f"  {time.strftime('%X')} /predict received", file=sys.stderr)
                    result = {"result": [], "score": 0.0, "model_version": "capture-1"}
                    self.answer({"results": [result]})
                else:
                    self.answer({"model_version": "capture-1"})

        server = ThreadingHTTPServer((LOOPBACK, port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://{LOOPBACK}:{port}"
        finally:
            server.shutdown()
            server.server_close()


SELECT = """
([control, label, dynamic]) => {
  // Select `label` of `control`, then the control's smart (dynamic) tool, or its plain tool.
  const annotation = window.Htx.annotationStore.selected;
  annotation.unselectAll();
  const names = annotation.names;
  const tag = names.get(control);
  if (!label) return 'unselected';
  for (const l of tag.children) { if (l.selected) l.toggleSelected(); }
  tag.children.find((l) => l.value === label).toggleSelected();
  const manager = names.get('image').getToolsManager();
  const tool = manager.allTools().find(
    (t) => t.control && t.control.name === control && Boolean(t.dynamic) === dynamic);
  if (!tool) return 'no tool';
  manager.selectTool(tool, true);
  return tool.toolName + (tool.dynamic ? ' (smart)' : '');
}
"""


class Editor:
    """The labeling page of one task, with Auto-Annotation on."""

    def __init__(self, page: Any) -> None:
        self.page = page
        box = page.locator(".konvajs-content").first.bounding_box()
        t = page.evaluate(IMAGE_TRANSFORM, "image")
        self.origin = (box["x"], box["y"])
        self.t = t

    def at(self, x: float, y: float) -> tuple[float, float]:
        """Page coordinates of image pixel (x, y)."""
        t = self.t
        return (
            self.origin[0] + x * t["scaleX"] + t["offsetX"],
            self.origin[1] + y * t["scaleY"] + t["offsetY"],
        )

    def select(self, control: str, label: str | None, dynamic: bool) -> None:
        chosen = self.page.evaluate(SELECT, [control, label, dynamic])
        print(f"  {time.strftime('%X')} {control}/{label}: {chosen}", file=sys.stderr)

    def click(self, x: float, y: float, alt: bool = False) -> None:
        if alt:
            self.page.keyboard.down("Alt")
        self.page.mouse.click(*self.at(x, y))
        if alt:
            self.page.keyboard.up("Alt")

    def idle(self) -> None:
        """Wait until the editor awaits no suggestion: while it does, it takes no new region."""
        self.page.wait_for_function("() => !window.Htx.awaitingSuggestions", timeout=60_000)

    def drag(self, points: list[tuple[float, float]]) -> None:
        mouse = self.page.mouse
        mouse.move(*self.at(*points[0]))
        mouse.down()
        for point in points[1:]:
            mouse.move(*self.at(*point), steps=4)
        mouse.up()


def wait_for(recorder: Recorder, seconds: float, count: int = 1) -> list[dict[str, Any]]:
    """The bodies received until `count` arrived (then 1 s more) or `seconds` passed.

    Label Studio forwards an interactive call after a few seconds on a busy machine, and the
    editor sends a brush stroke's 1.2 s after the stroke ends.
    """
    deadline = time.monotonic() + seconds
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(got) < count:
        got.extend(recorder.taken())
        time.sleep(0.2)
    time.sleep(1)
    return got + recorder.taken()


REGIONS = """
() => window.Htx.annotationStore.selected.serializeAnnotation().map((r) =>
  `${r.type}:${JSON.stringify(r.value).slice(0, 80)}` +
  ('is_positive' in r ? ` positive=${r.is_positive}` : ''))
"""


TYPES = {
    "keypointlabels": "keypoint",
    "rectanglelabels": "rectangle",
    "brushlabels": "brush",
    "ellipselabels": "ellipse",
    "polygonlabels": "polygon",
    "textarea": "text",
}


def draw_everything(editor: Editor, recorder: Recorder) -> list[dict[str, Any]]:
    """Draw each kind of region; every `/predict` body that came, and then the editor's own
    serialization of every region on the page."""
    page = editor.page
    got: list[dict[str, Any]] = []

    editor.select("kp", "Object", True)
    editor.click(160, 120)
    # The editor sends a region when the next thing happens on the page (here: selecting).
    editor.select("kp", "Object", True)  # drawing a point unselects the label
    got += wait_for(recorder, 30)
    editor.click(480, 360, alt=True)  # Alt-click: a negative point
    editor.select("kp", "Background", True)
    got += wait_for(recorder, 30)
    editor.click(320, 240)

    editor.select("box", "Object", True)
    got += wait_for(recorder, 30)
    editor.drag([(64, 48), (200, 150), (320, 240)])

    editor.select("brush", "Object", True)
    got += wait_for(recorder, 30)
    editor.drag([(100, 400), (150, 410), (200, 420), (260, 430)])
    time.sleep(2)  # the editor commits and selects a first stroke a moment later

    editor.select("ellipse", "Object", False)
    got += wait_for(recorder, 5)
    editor.drag([(400, 100), (450, 150), (500, 200)])

    editor.select("polygon", "Object", False)
    got += wait_for(recorder, 5)
    for x, y in [(500, 300), (600, 300), (600, 400)]:
        editor.click(x, y)
    editor.click(500, 300)  # closes the polygon

    editor.select("prompt", None, False)
    got += wait_for(recorder, 5)
    area = page.locator("textarea").first
    area.fill("a grey cat")
    area.press("Shift+Enter")  # the TextArea's "Add"
    got += wait_for(recorder, 30)
    editor.select("prompt", None, False)
    got += wait_for(recorder, 10)
    page.screenshot(path=str(Path(tempfile.gettempdir()) / "relaxml-capture-editor.png"))
    regions: list[dict[str, Any]] = page.evaluate(
        "() => window.Htx.annotationStore.selected.serializeAnnotation()"
    )
    return [*got, {"serialized": regions}]


def create_project(ls: LabelStudio, backend_url: str) -> int:
    """A project with `CONFIG`, one uploaded grey 640x480 image and the backend at
    `backend_url` connected for interactive pre-annotation; its id."""
    project = ls.create_project("relaxml interactive prompts", CONFIG)
    image = png(WIDTH, HEIGHT, (128, 128, 128))
    ls.api(
        "POST",
        f"/api/projects/{project['id']}/import",
        files={"file": ("cat.png", image, "image/png")},
    )
    ls.register_ml_backend(project["id"], backend_url, is_interactive=True)
    project_id: int = project["id"]
    return project_id


def open_labeling(page: Any, ls: LabelStudio, project_id: int) -> Editor:
    """Log in, turn Auto-Annotation on and open the project's first task from the Data
    Manager (interactive calls are sent only from there)."""
    log_in(page, ls.url, ls.username, ls.password)
    for event, what in (("request", "editor asks"), ("requestfinished", "editor answered")):
        page.on(
            event,
            lambda r, what=what: (
                "interactive-annotating" in r.url
                and print(f"  {time.strftime('%X')} {what}", file=sys.stderr)
            ),
        )
    page.evaluate("() => localStorage.setItem('autoAnnotation', 'true')")
    page.goto(f"{ls.url}/projects/{project_id}/data")
    page.click('[data-testid="table-row"]', timeout=60_000)
    page.wait_for_function(
        "() => window.Htx && window.Htx.annotationStore.names.get('image')", timeout=60_000
    )
    page.wait_for_selector(".konvajs-content canvas", timeout=60_000)
    time.sleep(2)
    if not page.evaluate("() => window.Htx.autoAnnotation"):
        raise RuntimeError("Auto-Annotation did not turn on")
    return Editor(page)


def capture(out: Path, workdir: Path) -> dict[str, int]:
    """Run the whole flow; write one fixture per kind that got a body. Counts by kind."""
    executable = find_or_install_label_studio(progress=lambda m: print(m, file=sys.stderr))
    recorder = Recorder()
    ls = LabelStudio(executable, workdir / "label-studio", free_port())
    with ls, recorder.serving(free_port()) as backend_url:
        project_id = create_project(ls, backend_url)
        with chromium_page(workdir / "chromium") as page:
            editor = open_labeling(page, ls, project_id)
            recorder.taken()  # /setup, and the ordinary /predict of opening the task
            *bodies, last = draw_everything(editor, recorder)
    return write_fixtures(out, bodies, last["serialized"])


def write_fixtures(
    out: Path, bodies: list[dict[str, Any]], regions: list[dict[str, Any]]
) -> dict[str, int]:
    """`<kind>.json` for the kinds that came live; `<kind>.handbuilt.json` for the others: a
    live body whose `params.context.result` is the editor's own serialization of the regions
    of that kind drawn on the page. Counts of live bodies, by kind."""
    out.mkdir(parents=True, exist_ok=True)
    live: dict[str, list[dict[str, Any]]] = {kind: [] for kind in TYPES.values()}
    for body in bodies:
        items = body["params"]["context"]["result"]
        live[TYPES[items[0]["type"]]].append(body)
    for kind, found in live.items():
        if found:
            document = {"source": "Label Studio 1.23.2 editor, live", "requests": redact(found)}
            (out / f"{kind}.json").write_text(json.dumps(document, indent=1) + "\n")
            continue
        items = [item for item in regions if TYPES.get(item.get("type", "")) == kind]
        if not items or not bodies:
            continue
        body = json.loads(json.dumps(bodies[-1]))
        body["params"]["context"] = {"result": items}
        source = (
            "hand-built: a live /predict body whose params.context.result is the Label "
            "Studio 1.23.2 editor's serialization of regions it did not send (see README.md)"
        )
        document = {"source": source, "requests": redact([body])}
        (out / f"{kind}.handbuilt.json").write_text(json.dumps(document, indent=1) + "\n")
    return {kind: len(found) for kind, found in live.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/interactive"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="relaxml-capture-") as workdir:
        counts = capture(args.out, Path(workdir))
    for kind, count in counts.items():
        print(f"{kind}: {count} /predict bodies", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
