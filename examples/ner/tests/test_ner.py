"""The NER example (examples/ner), served, trained and used interactively through HTTP."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from relaxml import check_prediction
from relaxml.labels import parse_prompts
from relaxml.testing import FakeLabelStudio, ServedModel, make_event, wait_for_training

from ..model import NER, Span, crf_spans, occurrences, tokenize, train_crf

EXAMPLE = Path(__file__).resolve().parents[1]
LABEL_CONFIG = (EXAMPLE / "label_config.xml").read_text()
README = (EXAMPLE / "README.md").read_text()

# --- A generated data set: sentences from templates, names from two disjoint halves ---

NAMES = {
    "PER": (
        "Anna Weber", "Omar Haddad", "Lucia Romano", "Kenji Sato", "Maria Silva", "Tom Baker",
        "Ines Duarte", "Pavel Novak", "Grace Owens", "Ravi Kumar", "Elena Petrova", "Jonas Berg",
    ),
    "ORG": (
        "Acme Corp", "Globex", "Initech", "Northwind Bank", "Umbrella Labs", "Vandelay Industries",
        "Stark Motors", "Blue Harbor", "Kestrel Air", "Orion Media", "Helix Pharma", "Tidewater",
    ),
    "LOC": (
        "Lisbon", "Nairobi", "Osaka", "Toronto", "Krakow", "Lima",
        "Oslo", "Cairo", "Perth", "Denver", "Hanoi", "Bergen",
    ),
}  # fmt: skip
TEMPLATES = (
    "{PER} joined {ORG} last year.",
    "{ORG} opened a new office in {LOC} on Monday.",
    "Yesterday {PER} flew from {LOC} to {LOC} for the summit.",
    "Shares of {ORG} rose after {PER} spoke to investors.",
    "{PER} met {PER} at the {ORG} offices in {LOC}.",
    "The storm closed every school in {LOC}.",
    "According to {PER}, {ORG} will hire two hundred people.",
    "Nothing much happened at the market this week.",
    "Officials in {LOC} praised {ORG} for the new bridge.",
    "Critics asked {PER} why the plan was delayed again.",
)


def generated_sentences(count: int, seed: int, half: int) -> list[tuple[str, list[Span]]]:
    """`count` (text, entities) pairs; names from `half` (0 or 1) of each list only, so a
    model tested on the other half meets names it has never seen."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        template, text, spans = rng.choice(TEMPLATES), "", []
        for literal, slot in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
            text += literal
            if slot:
                pool = NAMES[slot][half * 6 : half * 6 + 6]
                name = rng.choice(pool)
                spans.append(Span(len(text), len(text) + len(name), slot))
                text += name
        pairs.append((text, spans))
    return pairs


def entity_f1(gold: Sequence[Sequence[Span]], found: Sequence[Sequence[Span]]) -> float:
    """Entity-level F1: a found span counts only if start, end and label all match."""
    hits = sum(len(set(g) & set(f)) for g, f in zip(gold, found, strict=True))
    n_gold, n_found = sum(map(len, gold)), sum(map(len, found))
    if not hits:
        return 0.0
    precision, recall = hits / n_found, hits / n_gold
    return 2 * precision * recall / (precision + recall)


# --- HTTP helpers ---


def predict(client: Any, texts: list[str], params: dict[str, Any] | None = None) -> list[Any]:
    tasks = [{"id": i + 1, "data": {"text": t}} for i, t in enumerate(texts)]
    body: dict[str, Any] = {"project": "7.1", "label_config": LABEL_CONFIG, "tasks": tasks}
    if params is not None:
        body["params"] = params
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    results = list(answer.json()["results"])
    for result in results:
        assert check_prediction(LABEL_CONFIG, result) == []
    return results


def spans_of(result: dict[str, Any]) -> list[Span]:
    items = result["result"]
    for item in items:
        assert (item["from_name"], item["to_name"], item["type"]) == ("label", "text", "labels")
    return [Span(i["value"]["start"], i["value"]["end"], i["value"]["labels"][0]) for i in items]


def labels_region(text: str, start: int, end: int, label: str) -> dict[str, Any]:
    """A span as Label Studio 1.23.2's editor sends it in `params.context.result` when the
    annotator labels it with Auto-Annotation on; seen from the editor for "Acme Corp" in the
    last task of tasks.json:
    `{"value": {"start": 0, "end": 9, "text": "Acme Corp", "labels": ["ORG"]},
    "id": "ZN54Ac17Hc", "from_name": "label", "to_name": "text", "type": "labels",
    "origin": "manual"}`."""
    value = {"start": start, "end": end, "text": text[start:end], "labels": [label]}
    return {
        "value": value,
        "id": "ZN54Ac17Hc",
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "origin": "manual",
    }


def annotation_event(task_id: int, text: str, spans: list[Span]) -> dict[str, Any]:
    result = [labels_region(text, s.start, s.end, s.label) for s in spans]
    return {
        "action": "ANNOTATION_CREATED",
        "project": {"id": 7, "label_config": LABEL_CONFIG},
        "task": {"id": task_id, "project": 7, "data": {"text": text}},
        "annotation": {"id": 100 + task_id, "task": task_id, "result": result},
    }


def annotate(client: Any, pairs: list[tuple[str, list[Span]]]) -> str:
    """One annotation event per (text, spans), tasks 1, 2, ...; wait for the run that takes
    the last one, and return the version served then."""
    job = ""
    for task_id, (text, spans) in enumerate(pairs, start=1):
        answer = client.post("/webhook", json=annotation_event(task_id, text, spans))
        assert answer.status_code < 300, answer.text
        job = answer.json()["job"]
    served = ServedModel(client)
    assert wait_for_training(served, job)["state"] == "succeeded"
    return served.model_version


# --- Tests ---

TEXT = "Acme Corp hired Anna Weber. Later Acme Corp moved to Osaka, and Acme Corporation sued."


def test_untrained_model_predicts_no_span_for_ordinary_calls(serve):
    client = serve(NER)
    assert client.get("/health").json()["model_version"] == "crf-0"
    [result] = predict(client, [TEXT])
    assert result == {"result": [], "score": 0.0, "model_version": "crf-0"}


def test_selecting_one_mention_labels_the_other_occurrences_of_the_string(serve):
    client = serve(NER)
    selected = labels_region(TEXT, 0, 9, "ORG")  # "Acme Corp"
    [result] = predict(client, [TEXT], {"context": {"result": [selected]}})
    assert result["model_version"] == "crf-0"
    # The second "Acme Corp", not the selected one again, nor "Acme Corporation".
    assert spans_of(result) == [Span(34, 43, "ORG")]
    assert result["result"][0]["value"]["text"] == "Acme Corp"
    assert result["result"][0]["score"] == 1.0
    # The model reads the selection as relaxml's typed prompt of kind "span".
    [prompt] = parse_prompts({"result": [selected]}, LABEL_CONFIG)
    assert (prompt.kind, prompt.span, prompt.label) == ("span", (0, 9), "ORG")


def test_occurrences_are_whole_words():
    assert occurrences("Oslo, Osloville and Oslo.", "Oslo") == [(0, 4), (20, 24)]
    assert occurrences("anything", " ") == []


def test_training_from_annotation_events_finds_unseen_names_and_survives_restart(serve, tmp_path):
    client = serve(NER, data_dir=str(tmp_path))
    train = generated_sentences(40, seed=1, half=0)
    version = annotate(client, train)
    assert re.fullmatch(r"crf-[1-9]\d*", version)
    texts = [text for text, _ in generated_sentences(6, seed=3, half=1)]
    results = predict(client, texts)
    assert all(r["model_version"] == version for r in results)
    found = [spans_of(r) for r in results]
    assert sum(map(len, found)) >= 4
    for result in results:
        for item in result["result"]:
            assert 0 < item["score"] <= 1
    restarted = serve(NER, data_dir=str(tmp_path))  # load() restores the CRF
    again = predict(restarted, texts)
    assert [spans_of(r) for r in again] == found
    assert all(r["model_version"] == version for r in again)


def test_a_trained_model_answers_a_selection_with_the_matches_and_what_the_crf_finds(serve):
    client = serve(NER)
    annotate(client, generated_sentences(40, seed=1, half=0))
    text = "Zorblax Ltd met Kenji Sato in Hanoi. Zorblax Ltd later left Hanoi."
    selected = labels_region(text, 0, 11, "ORG")  # a name the CRF has never seen
    [result] = predict(client, [text], {"context": {"result": [selected]}})
    spans = spans_of(result)
    assert Span(37, 48, "ORG") in spans  # the other "Zorblax Ltd", from the selection
    assert Span(16, 26, "PER") in spans  # from the CRF
    assert Span(0, 11, "ORG") not in spans  # the selection itself is not suggested again
    scores = {Span(i["value"]["start"], i["value"]["end"], i["value"]["labels"][0]): i["score"]
              for i in result["result"]}  # fmt: skip
    assert scores[Span(37, 48, "ORG")] == 1.0


def test_start_training_refits_on_every_annotated_task_and_only_changes_bring_a_version():
    model = NER()

    def event(studio: FakeLabelStudio, pairs: list[tuple[str, list[Span]]]) -> Any:
        """START_TRAINING while project 7's annotated tasks are `pairs`, tasks 1, 2, ..."""
        studio.tasks.clear()
        project = studio.add_project(LABEL_CONFIG, id=7)
        for task_id, (text, spans) in enumerate(pairs, start=1):
            result = annotation_event(task_id, text, spans)["annotation"]["result"]
            studio.add_task(project, {"text": text}, [result], id=task_id)
        return make_event(LABEL_CONFIG, project_id=project, label_studio=studio)

    nothing = [("Nothing much happened at the market this week.", [])]
    pairs = generated_sentences(20, seed=4, half=0)
    with FakeLabelStudio() as studio:
        assert model.fit(event(studio, nothing)) is None  # no entity at all: nothing to fit
        assert model.crf is None
        assert model.fit(event(studio, pairs)) == "crf-1"
        assert model.examples[1] == pairs[0]
        assert model.fit(event(studio, pairs)) is None  # nothing new: no new version
        assert model.fit(event(studio, pairs[:10])) == "crf-2"
    assert len(model.examples) == 10


def test_unauthenticated_annotation_payloads_are_not_trained_on():
    model = NER()
    hooks = [annotation_event(i, t, s) for i, (t, s) in enumerate(generated_sentences(5, 6, 0))]
    forged = make_event(
        LABEL_CONFIG,
        action="ANNOTATION_CREATED",
        annotations=[hook["annotation"] for hook in hooks],
        tasks=[hook["task"] for hook in hooks],
        authenticated=False,
    )
    assert model.fit(forged) is None
    assert model.examples == {}


def test_a_config_without_labels_on_a_text_is_refused_with_what_to_add(serve):
    client = serve(NER)
    config = '<View><Text name="text" value="$text"/></View>'
    body = {"project": "7.1", "label_config": config, "tasks": [{"id": 1, "data": {"text": "x"}}]}
    answer = client.post("/predict", json=body)
    assert answer.status_code >= 400
    assert "<Labels> on a <Text>" in answer.text


def test_generated_spans_match_their_text_and_tokens():
    for text, spans in generated_sentences(30, seed=1, half=0):
        ends = {end for _, end in tokenize(text)}
        for span in spans:
            assert text[span.start : span.end] in NAMES[span.label]
            assert span.end in ends


def readme_figure(name: str) -> float:
    match = re.search(rf"F1 {name} training: \*\*(\d\.\d\d)\*\*", README)
    assert match, f"README.md quotes no 'F1 {name} training: **0.NN**'"
    return float(match.group(1))


def test_readme_f1_before_and_after_training_is_what_the_model_measures():
    """README: 40 generated sentences (seed 1, names of the first half) to train, 60 others
    (seed 2, names of the second half, never seen in training) to test."""
    test = generated_sentences(60, seed=2, half=1)
    gold = [spans for _, spans in test]
    before = entity_f1(gold, [[] for _ in test])  # untrained: nothing predicted
    crf = train_crf(generated_sentences(40, seed=1, half=0))
    assert crf is not None
    after = entity_f1(gold, [[span for span, _ in crf_spans(crf, text)] for text, _ in test])
    assert round(before, 2) == readme_figure("before")
    assert after == pytest.approx(readme_figure("after"), abs=0.005)
    assert after > 0.5


def test_readme_shows_the_bundled_config_and_its_links_resolve():
    assert LABEL_CONFIG.strip() in README
    for target in re.findall(r"\]\(([^)#:]+\.md)\)", README):
        assert (EXAMPLE / target).is_file(), target
