"""Named entities for Label Studio: a CRF over token features, trained from your annotations,
that also labels the other mentions of a string as soon as the annotator labels one.

Label config (any Labels on a Text works; the first such pair is used):

    <View>
      <Labels name="label" toName="text">
        <Label value="PER"/>
        <Label value="ORG"/>
        <Label value="LOC"/>
      </Labels>
      <Text name="text" value="$text"/>
    </View>

Predictions are `labels` spans (`start`, `end`, `text`, the label). The model is a linear-chain
CRF (sklearn-crfsuite) over BIO tags of tokens, each token described by its word, shape,
affixes and neighbours. Before any training it predicts nothing for ordinary calls.

Interactive: with Auto-Annotation on, labeling a span in the editor sends it to the backend
(`params.context.result`, a `labels` region). The model answers with every other occurrence of
the same string in the text, as whole words, with the same label (score 1.0), plus, once
trained, the spans the CRF finds that overlap none of those.

Training: "Start Training" refits on every annotated task, fetched from Label Studio's API;
annotation events add the annotations they carry to everything known and refit; an event
without credentials is never trained on (a refit from the API instead, or nothing). A fit that
changes the examples returns a new version (crf-1, crf-2, ...); `save` writes the CRF with
joblib and the examples as JSON.

Serve it:  relaxml serve examples/ner/model.py:NER
README.md (beside this file) says more.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import joblib
import sklearn_crfsuite

from relaxml import (
    Context,
    LabelStudioModel,
    Prediction,
    ResultBuilder,
    Task,
    TrainingEvent,
)
from relaxml.labels import Prompt, Target, find_target

TOKEN = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]")
CRF_FILE = "crf.joblib"
EXAMPLES_FILE = "examples.json"
Features = dict[str, str | bool]


class Span(NamedTuple):
    """An entity: characters `start` (inclusive) to `end` (exclusive) of a text, and its label."""

    start: int
    end: int
    label: str


def target_of(label_config: str) -> Target:
    """The first Labels on a Text of a label config."""
    return find_target(label_config, "Labels", "Text")


# --- Tokens, features and BIO tags ---


def tokenize(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the words and punctuation marks of `text`."""
    return [match.span() for match in TOKEN.finditer(text)]


def shape(word: str) -> str:
    """The word's shape with runs collapsed: "McDonald" -> "XxXx", "2024" -> "d"."""
    out = re.sub(r"[A-Z]+", "X", word)
    out = re.sub(r"[a-z]+", "x", out)
    return re.sub(r"\d+", "d", out)


def word_features(word: str, prefix: str) -> Features:
    """What a CRF sees of one word, its keys prefixed (`-1:` for the word before, ...)."""
    return {
        f"{prefix}lower": word.lower(),
        f"{prefix}shape": shape(word),
        f"{prefix}title": word.istitle(),
        f"{prefix}upper": word.isupper(),
        f"{prefix}suffix3": word[-3:].lower(),
    }


def sentence_features(text: str, tokens: Sequence[tuple[int, int]]) -> list[Features]:
    """One feature dict per token: the token itself, its two neighbours on each side."""
    words = [text[start:end] for start, end in tokens]
    rows = []
    for i, word in enumerate(words):
        row: Features = {"bias": True, "prefix2": word[:2].lower(), **word_features(word, "")}
        for offset in (-2, -1, 1, 2):
            j = i + offset
            if 0 <= j < len(words):
                row.update(word_features(words[j], f"{offset:+d}:"))
            else:
                row[f"{offset:+d}:edge"] = True
        rows.append(row)
    return rows


def bio_tags(tokens: Sequence[tuple[int, int]], spans: Iterable[Span]) -> list[str]:
    """B-/I-/O tags of the tokens: a token inside a span is tagged with its label."""
    tags = ["O"] * len(tokens)
    for span in spans:
        inside = [i for i, (s, e) in enumerate(tokens) if s >= span.start and e <= span.end]
        for n, i in enumerate(inside):
            tags[i] = f"{'B' if n == 0 else 'I'}-{span.label}"
    return tags


def tagged_spans(
    tokens: Sequence[tuple[int, int]], tags: Sequence[str], confidence: Sequence[float]
) -> list[tuple[Span, float]]:
    """The spans a tag sequence marks, each scored by the mean confidence of its tags."""
    found: list[tuple[Span, float]] = []
    open_at: int | None = None
    for i, tag in enumerate([*tags, "O"]):
        continues = open_at is not None and tag == f"I-{tags[open_at][2:]}"
        if open_at is not None and not continues:
            label = tags[open_at][2:]
            score = sum(confidence[open_at:i]) / (i - open_at)
            found.append((Span(tokens[open_at][0], tokens[i - 1][1], label), score))
            open_at = None
        if open_at is None and tag != "O":
            open_at = i
    return found


def train_crf(examples: Iterable[tuple[str, Sequence[Span]]]) -> sklearn_crfsuite.CRF | None:
    """A CRF fitted on (text, spans) examples; None while they hold no span at all."""
    xs, ys = [], []
    for text, spans in examples:
        tokens = tokenize(text)
        xs.append(sentence_features(text, tokens))
        ys.append(bio_tags(tokens, spans))
    if not any(tag != "O" for tags in ys for tag in tags):
        return None
    crf = sklearn_crfsuite.CRF(
        algorithm="lbfgs", c1=0.05, c2=0.05, max_iterations=200, all_possible_transitions=True
    )
    crf.fit(xs, ys)
    return crf


def crf_spans(crf: sklearn_crfsuite.CRF, text: str) -> list[tuple[Span, float]]:
    """The entities the CRF finds in `text`, each with the mean marginal probability of its
    tags."""
    tokens = tokenize(text)
    if not tokens:
        return []
    features = sentence_features(text, tokens)
    tags = [str(tag) for tag in crf.predict_single(features)]
    marginals = crf.predict_marginals_single(features)
    confidence = [float(marginals[i][tag]) for i, tag in enumerate(tags)]
    return tagged_spans(tokens, tags, confidence)


def occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    """Where `needle` occurs in `text` as whole words (not inside a longer word)."""
    if not needle.strip():
        return []
    pattern = rf"(?<!\w){re.escape(needle)}(?!\w)"
    return [match.span() for match in re.finditer(pattern, text)]


def overlaps(span: tuple[int, int], taken: Iterable[tuple[int, int]]) -> bool:
    """Whether `span` shares a character with any of `taken`."""
    return any(span[0] < end and start < span[1] for start, end in taken)


def spans_in(items: object, from_name: str, text: str) -> list[Span]:
    """The `labels` spans of control `from_name` among result items, as Label Studio stores
    them (`value`: `start`, `end`, `labels`); items that are not such a span of `text` are
    skipped."""
    spans = []
    for item in items if isinstance(items, list) else []:
        value = item.get("value") if isinstance(item, Mapping) else None
        if not isinstance(value, Mapping) or item.get("from_name") != from_name:
            continue
        start, end, labels = value.get("start"), value.get("end"), value.get("labels")
        if not (type(start) is int and type(end) is int and 0 <= start < end <= len(text)):
            continue
        if isinstance(labels, list) and labels and isinstance(labels[0], str):
            spans.append(Span(start, end, labels[0]))
    return spans


class NER(LabelStudioModel):
    """A CRF named-entity tagger for a Labels-on-Text config, with interactive string matching."""

    model_version = "crf-0"

    def __init__(self) -> None:
        self.examples: dict[int, tuple[str, list[Span]]] = {}  # task id -> (text, spans)
        self.generation = 0
        self.lock = threading.Lock()
        self.crf: sklearn_crfsuite.CRF | None = None

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction | None]:
        if not context.label_config:
            return [None] * len(tasks)
        target = target_of(context.label_config)
        crf = self.crf  # one consistent snapshot, even while fit runs
        selected = [p for p in context.prompts.of_kind("span") if p.from_name == target.from_name]
        return [self.entities(task, target, crf, selected) for task in tasks]

    def entities(
        self,
        task: Task,
        target: Target,
        crf: sklearn_crfsuite.CRF | None,
        prompts: Sequence[Prompt],
    ) -> Prediction | None:
        """The spans for one task: the selected strings' other mentions, then the CRF's."""
        text = task.data.get(target.data_key)
        if not isinstance(text, str):
            return None
        selected = [  # the spans just labelled in the editor (`context.prompts`)
            Span(p.span[0], p.span[1], p.label)
            for p in prompts
            if p.span and p.label and 0 <= p.span[0] < p.span[1] <= len(text)
        ]
        if crf is None and not selected:
            return None  # untrained, and nothing selected: nothing to say
        taken = [(s.start, s.end) for s in selected]
        found: list[tuple[Span, float]] = []
        for span in selected:
            for where in occurrences(text, text[span.start : span.end]):
                if not overlaps(where, taken):
                    found.append((Span(*where, span.label), 1.0))
                    taken.append(where)
        for span, score in crf_spans(crf, text) if crf is not None else []:
            if span.label in target.labels and not overlaps((span.start, span.end), taken):
                found.append((span, score))
                taken.append((span.start, span.end))
        build = ResultBuilder(target.config)
        for span, score in sorted(found):
            build.span(
                span.start,
                span.end,
                span.label,
                text=text[span.start : span.end],
                from_name=target.from_name,
                to_name=target.to_name,
                score=score,
            )
        return build.prediction()

    def fit(self, event: TrainingEvent) -> str | None:
        if not event.label_config:
            return None
        target = target_of(event.label_config)
        with self.lock:
            examples = self.collect(event, target)
            if event.should_stop() or examples == self.examples:
                return None  # cancelled (the result would be discarded), or nothing new
            crf = train_crf(examples.values())
            self.examples = examples
            if crf is None:  # no entity annotated yet: nothing new to serve
                return None
            self.crf = crf
            self.generation += 1
            return f"crf-{self.generation}"

    def collect(self, event: TrainingEvent, target: Target) -> dict[int, tuple[str, list[Span]]]:
        """The (text, spans) examples after this event, by task id.

        A task's latest non-cancelled annotation counts, even with no span (no entity there).
        "Start Training" refits on everything annotated in Label Studio; an annotation event
        adds what it carries; a payload sent without credentials is never trained on
        (`event.refits` and `event.training_tasks()` apply these rules).
        """
        examples = {} if event.refits else dict(self.examples)
        for task in event.training_tasks():
            task_id, data = task.get("id"), task.get("data")
            text = data.get(target.data_key) if isinstance(data, dict) else None
            if isinstance(task_id, int) and isinstance(text, str):
                items = task["annotations"][-1].get("result")
                examples[task_id] = (text, spans_in(items, target.from_name, text))
        return examples

    def save(self, path: Path) -> None:
        examples = {
            k: (text, [list(s) for s in spans]) for k, (text, spans) in self.examples.items()
        }
        state = {"generation": self.generation, "examples": examples}
        (path / EXAMPLES_FILE).write_text(json.dumps(state))
        if self.crf is not None:
            joblib.dump(self.crf, path / CRF_FILE)

    def load(self, path: Path) -> None:
        state = json.loads((path / EXAMPLES_FILE).read_text())
        self.generation = int(state["generation"])
        self.examples = {
            int(k): (text, [Span(int(s), int(e), str(label)) for s, e, label in spans])
            for k, (text, spans) in state["examples"].items()
        }
        fitted = path / CRF_FILE
        self.crf = joblib.load(fitted) if fitted.is_file() else None
