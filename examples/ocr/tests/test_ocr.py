"""The OCR example (examples/ocr), served, trained and measured on pages rendered here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from examples.conftest import wait_for
from relaxml import ResultBuilder, check_prediction
from relaxml.testing import FakeLabelStudio, make_event

from ..model import OCR, Lexicon, Pair, iou, read_lines, target_of
from .pages import BENCHMARK, Page, abbreviated_pages, benchmark_pages, render_page

EXAMPLE = Path(__file__).resolve().parents[1]
LABEL_CONFIG = (EXAMPLE / "label_config.xml").read_text()

TRAIN_PAGE = ["Invoice 2041", "Qty 3 Amt 12.50", "Signed Jane Smith"]
WRITTEN = ["Invoice 2041", "Quantity 3 Amount 12.50", "Signed Jane Smith"]
LABELS = ["Text", "Text", "Handwriting"]
NEW_PAGE = ["Qty 8 Amt 99.00", "Approved Jane Smith"]


def write_page(folder: Path, name: str, lines: list[str]) -> Page:
    page = render_page(lines)
    page.image.save(folder / name)
    return page


def predict(client: Any, *names: str) -> list[dict[str, Any]]:
    tasks = [task(i + 1, name) for i, name in enumerate(names)]
    body = {"project": "7.1", "label_config": LABEL_CONFIG, "tasks": tasks}
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["results"])


def task(task_id: int, name: str) -> dict[str, Any]:
    return {"id": task_id, "data": {"ocr": f"/data/local-files/?d={name}"}}


def regions(prediction: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(box item, transcription item) per region, checking they share the region's id."""
    items = prediction["result"]
    boxes = [i for i in items if i["type"] != "textarea"]
    texts = {i["id"]: i for i in items if i["type"] == "textarea"}
    assert len(boxes) == len(texts)
    return [(box, texts[box["id"]]) for box in boxes]


def transcriptions(prediction: dict[str, Any]) -> list[str]:
    return [text["value"]["text"][0] for _, text in regions(prediction)]


def annotation(page: Page, written: list[str], labels: list[str]) -> list[dict[str, Any]]:
    """An annotator's result: a box per line with its label and corrected transcription."""
    build = ResultBuilder(LABEL_CONFIG)
    size = page.image.size
    for box, text, label in zip(page.boxes, written, labels, strict=True):
        region = build.rectangle(box, label, image_size=size)
        build.textarea(text, from_name="transcription", region=region)
    return build.result


def annotation_event(task_id: int, name: str, result: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "action": "ANNOTATION_CREATED",
        "project": {"id": 7, "label_config": LABEL_CONFIG},
        "task": {"project": 7, **task(task_id, name)},
        "annotation": {"id": 100 + task_id, "task": task_id, "result": result},
    }


def test_predicts_a_box_label_and_transcription_per_line(serve, tmp_path):
    pages = {name: write_page(tmp_path, name, lines) for name, lines in SAMPLE.items()}
    client = serve(OCR, local_files_root=str(tmp_path))
    assert client.get("/health").json()["model_version"] == "ocr-0"
    results = predict(client, *pages)
    config = target_of(LABEL_CONFIG).config
    for result, page in zip(results, pages.values(), strict=True):
        assert result["model_version"] == "ocr-0"
        assert check_prediction(config, result) == []
        assert transcriptions(result) == page.lines
        for (box, text), truth in zip(regions(result), page.boxes, strict=True):
            assert (box["from_name"], box["type"]) == ("label", "rectanglelabels")
            assert box["value"]["rectanglelabels"] == ["Text"]  # the first label, untrained
            assert text["from_name"] == "transcription"
            assert 0.5 < box["score"] == text["score"] <= 1.0
            width, height = page.image.size
            found = percent_box(box["value"], width, height)
            assert iou(found, truth) > 0.8


SAMPLE = {"a.png": ["Receipt 77", "Card paid 4.20", "Thank you"], "b.png": ["Order 12 shipped"]}


def percent_box(value: dict[str, Any], width: int, height: int) -> tuple[float, ...]:
    x, y = value["x"] * width / 100, value["y"] * height / 100
    return (x, y, x + value["width"] * width / 100, y + value["height"] * height / 100)


def test_annotation_event_learns_corrections_and_labels_which_survive_a_restart(serve, tmp_path):
    media, data = tmp_path / "media", tmp_path / "data"
    media.mkdir()
    train = write_page(media, "train.png", TRAIN_PAGE)
    write_page(media, "new.png", NEW_PAGE)
    client = serve(OCR, local_files_root=str(media), data_dir=str(data))
    before = predict(client, "new.png")[0]
    assert transcriptions(before) == NEW_PAGE  # Tesseract reads the page as printed
    event = annotation_event(3, "train.png", annotation(train, WRITTEN, LABELS))
    for _ in range(2):  # the same annotation twice changes nothing the second time
        assert client.post("/webhook", json=event).status_code < 300
    wait_for(lambda: client.get("/health").json()["model_version"] == "ocr-1")
    for served in (client, serve(OCR, local_files_root=str(media), data_dir=str(data))):
        after = predict(served, "new.png")[0]  # the restarted app load()s ocr-1
        assert after["model_version"] == "ocr-1"
        assert check_prediction(target_of(LABEL_CONFIG).config, after) == []
        assert transcriptions(after) == ["Quantity 8 Amount 99.00", "Approved Jane Smith"]
        labels = [box["value"]["rectanglelabels"] for box, _ in regions(after)]
        assert labels == [["Text"], ["Handwriting"]]


def start_training(
    studio: FakeLabelStudio, folder: Path, annotated: list[tuple[int, str, list[dict[str, Any]]]]
) -> Any:
    """START_TRAINING while project 7's tasks are (id, image file, annotations), the images
    served from `folder` as Local Files."""
    project = studio.add_project(LABEL_CONFIG, id=7)
    for task_id, name, stored in annotated:
        studio.add_task(project, task(task_id, name)["data"], id=task_id)
        for given in stored:
            studio.annotate(task_id, **given)
    return make_event(
        LABEL_CONFIG, project_id=project, label_studio=studio, local_files_root=folder
    )


def test_start_training_refits_on_every_annotated_task_and_skips_cancelled_ones(tmp_path):
    page = write_page(tmp_path, "train.png", TRAIN_PAGE)
    done = {"result": annotation(page, WRITTEN, LABELS)}
    cancelled = {"was_cancelled": True, "result": annotation(page, [*NEW_PAGE, "x"], LABELS)}
    model = OCR()
    with FakeLabelStudio() as studio:
        annotated = [(6, "train.png", [done]), (4, "train.png", [cancelled])]
        event = start_training(studio, tmp_path, annotated)
        assert model.fit(event) == "ocr-1"
        assert list(model.pairs) == [6]
        assert model.lexicon.corrections == {"Qty": "Quantity", "Amt": "Amount"}
        assert model.fit(event) is None  # nothing new: no new version


def test_unauthenticated_annotation_payloads_are_not_trained_on(tmp_path):
    page = write_page(tmp_path, "train.png", TRAIN_PAGE)
    hook = annotation_event(3, "train.png", annotation(page, WRITTEN, LABELS))
    forged = make_event(
        LABEL_CONFIG,
        action="ANNOTATION_CREATED",
        annotations=[hook["annotation"]],
        tasks=[hook["task"]],
        authenticated=False,
    )
    model = OCR()
    assert model.fit(forged) is None
    assert model.pairs == {}
    assert model.lexicon.corrections == {}


OTHER_CONFIGS = {
    "RectangleLabels": """<View><Image name="scan" value="$image"/>
      <RectangleLabels name="lines" toName="scan"><Label value="Printed"/></RectangleLabels>
      <TextArea name="text" toName="scan" perRegion="true"/></View>""",
    "bare Rectangle": """<View><Image name="scan" value="$image"/>
      <Rectangle name="box" toName="scan"/>
      <TextArea name="text" toName="scan" perRegion="true"/></View>""",
}


@pytest.mark.parametrize("kind", OTHER_CONFIGS)
def test_other_configs_get_their_own_names_and_labels(serve, tmp_path, kind):
    config = OTHER_CONFIGS[kind]
    page = write_page(tmp_path, "page.png", ["Order 12 shipped"])
    client = serve(OCR, local_files_root=str(tmp_path))
    tasks = [{"id": 1, "data": {"image": "/data/local-files/?d=page.png"}}]
    answer = client.post("/predict", json={"label_config": config, "tasks": tasks})
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert check_prediction(target_of(config).config, result) == []
    box, text = result["result"]
    assert (box["to_name"], text["from_name"], text["value"]["text"]) == (
        "scan",
        "text",
        page.lines,
    )
    if kind == "RectangleLabels":
        assert (box["from_name"], box["value"]["rectanglelabels"]) == ("lines", ["Printed"])
    else:
        assert (box["from_name"], box["type"]) == ("box", "rectangle")


def test_corrections_follow_the_most_frequent_writing_and_ties_keep_the_word_as_read():
    def pair(read: str, written: str) -> Pair:
        return Pair(tuple(read.split()), tuple(written.split()), None)

    lexicon = Lexicon.learn(
        [
            pair("Qty 3 Amt 1.00", "Quantity 3 Amount 1.00"),
            pair("Qty 4 Amt 2.00", "Quantity 4 Amt 2.00"),  # Amt: once each way, a tie
            pair("Qty 5", "Qty. 5"),
            pair("Tota1 due", "Total amount due"),  # an insertion: nothing aligned word by word
        ]
    )
    assert lexicon.corrections == {"Qty": "Quantity"}
    assert lexicon.correct(["Qty", "9", "Amt"]) == ["Quantity", "9", "Amt"]


def test_a_config_without_a_per_region_textarea_is_refused_with_what_to_add():
    config = '<View><Image name="image" value="$ocr"/><Rectangle name="b" toName="image"/></View>'
    with pytest.raises(ValueError, match=r'<TextArea perRegion="true">'):
        target_of(config)


# --- the README's measured numbers ----------------------------------------------------------


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def measure(pages: list[Page]) -> list[tuple[float, float, float]]:
    """Per page: mean character accuracy (1 - edit distance / length, at least 0) of the
    recognised line that overlaps each printed line most, mean IoU of those boxes, and the
    share of printed lines found at IoU >= 0.5."""
    measured = []
    for page in pages:
        lines = read_lines(page.image)
        scores = []
        for text, box in zip(page.lines, page.boxes, strict=True):
            best = max(lines, key=lambda line: iou(line.box, box), default=None)
            overlap = iou(best.box, box) if best is not None else 0.0
            read = " ".join(best.words) if best is not None and overlap > 0 else ""
            accuracy = max(0.0, 1 - edit_distance(read, text) / len(text))
            scores.append((accuracy, overlap, float(overlap >= 0.5)))
        measured.append(tuple(sum(s[k] for s in scores) / len(scores) for k in range(3)))
    return measured  # type: ignore[return-value]


def readme_rows() -> dict[str, tuple[float, float, float]]:
    """The README's table: `| <condition> | <accuracy> | <IoU> | <found> |`."""
    readme = (EXAMPLE / "README.md").read_text()
    pattern = r"^\| ([^|]+?) \| (\d\.\d\d) \| (\d\.\d\d) \| (\d\.\d\d) \|$"
    rows = re.findall(pattern, readme, flags=re.MULTILINE)
    return {name: (float(a), float(b), float(c)) for name, a, b, c in rows}


def condition(size: int, noise: float, blur: float) -> str:
    return f"{size} px, noise {noise:g}, blur {blur:g}"


TOLERANCE = 0.03
"""Tesseract and FreeType versions may read a few characters differently (README, Measured)."""


def test_readme_numbers_are_recomputed_from_the_rendered_pages():
    measured = measure(benchmark_pages())
    groups = {
        condition(*c): [m for i, m in enumerate(measured) if i % 4 == k]
        for k, c in enumerate(BENCHMARK)
    }
    expected = {name: mean(rows) for name, rows in groups.items()}
    expected["all pages"] = mean(measured)
    assert readme_rows().keys() == expected.keys()
    for name, figures in readme_rows().items():
        assert figures == pytest.approx(expected[name], abs=TOLERANCE), (name, expected[name])


def learning_curve(tmp_path: Path) -> tuple[float, float]:
    """Character accuracy, against the annotators' transcriptions, on three pages printed with
    abbreviations: before and after `fit` on three other annotated pages."""
    annotated = []
    for n, (page, written) in enumerate(abbreviated_pages(seed=1)):
        page.image.save(tmp_path / f"train-{n}.png")
        done = {"result": annotation(page, written, ["Text"] * len(written))}
        annotated.append((n + 1, f"train-{n}.png", [done]))
    model, accuracy = OCR(), []
    for step in ("before", "after"):
        if step == "after":
            with FakeLabelStudio() as studio:
                assert model.fit(start_training(studio, tmp_path, annotated)) == "ocr-1"
        scores = []
        for page, written in abbreviated_pages(seed=2):
            lines = read_lines(page.image)
            for text, box in zip(written, page.boxes, strict=True):
                best = max(lines, key=lambda line: iou(line.box, box))
                read = " ".join(model.lexicon.correct(best.words))
                scores.append(max(0.0, 1 - edit_distance(read, text) / len(text)))
        accuracy.append(sum(scores) / len(scores))
    return accuracy[0], accuracy[1]


def test_readme_learning_numbers_are_recomputed(tmp_path):
    readme = (EXAMPLE / "README.md").read_text()
    found = re.search(r"before training: (\d\.\d\d), after training: (\d\.\d\d)", readme)
    assert found is not None
    before, after = learning_curve(tmp_path)
    assert float(found[1]) == pytest.approx(before, abs=TOLERANCE)
    assert float(found[2]) == pytest.approx(after, abs=TOLERANCE)
    assert after > before


def mean(rows: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    return (
        sum(r[0] for r in rows) / len(rows),
        sum(r[1] for r in rows) / len(rows),
        sum(r[2] for r in rows) / len(rows),
    )


def test_readme_shows_the_bundled_config_and_its_links_resolve():
    readme = (EXAMPLE / "README.md").read_text()
    assert LABEL_CONFIG.strip() in readme
    for target in re.findall(r"\]\(([^)#:]+\.md)\)", readme):
        assert (EXAMPLE / target).is_file(), target
