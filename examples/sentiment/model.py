"""A small, real, trainable text classifier for Label Studio: naive Bayes over words.

Label config (any Text + Choices pair works; the first Choices on a Text is used):

    <View>
      <Text name="text" value="$text"/>
      <Choices name="sentiment" toName="text" choice="single">
        <Choice value="positive"/>
        <Choice value="negative"/>
      </Choices>
    </View>

Before any training it leans on a tiny seed lexicon. Training:

- "Start Training" (START_TRAINING) refits on every annotated task of the project, fetched
  from Label Studio's API (set LABEL_STUDIO_API_KEY and LABEL_STUDIO_URL);
- annotation events (ANNOTATION_CREATED / UPDATED, the legacy /train) add the annotations they
  carry, without any API call. An event sent without credentials (Basic Auth on, webhook_auth
  events-open) is not trusted: it triggers a full refit from the API, or nothing without one.

Each fit that changes the examples returns a new version (nb-1, nb-2, ...), so Label Studio
re-predicts; `save` and `load` keep the examples, so restarts, other workers and rollbacks
serve the trained model.

Serve it:  relaxml serve examples/sentiment/model.py:NaiveBayesSentiment
README.md (beside this file) says more.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaxml import (
    Context,
    LabelStudioModel,
    Prediction,
    ResultBuilder,
    Task,
    TrainingEvent,
)
from relaxml.labels import Target, find_target

SEED = {
    "positive": "good great love excellent happy nice wonderful best awesome like",
    "negative": "bad awful hate terrible sad poor worst horrible boring dislike",
}
WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return WORD.findall(text.lower())


def target_of(label_config: str) -> Target:
    """The first Choices on a Text (or HyperText) of a label config."""
    return find_target(label_config, "Choices", ("Text", "HyperText"))


def chosen_labels(target: Target, annotations: Iterable[dict[str, Any]]) -> list[str]:
    """The choices annotators made with the target's control, in order."""
    return [
        choice
        for item in target.results_in(annotations)
        for choice in item["value"].get("choices") or []
        if isinstance(choice, str)
    ]


@dataclass
class Counts:
    """Word counts per label: the whole state of a naive Bayes model."""

    words: dict[str, Counter[str]] = field(default_factory=dict)
    docs: Counter[str] = field(default_factory=Counter)

    def add(self, label: str, tokens: list[str], weight: int = 1) -> None:
        """Count `tokens` as one document (or `weight` documents) of `label`."""
        counter = self.words.setdefault(label, Counter())
        counter.update({t: n * weight for t, n in Counter(tokens).items()})
        self.docs[label] += weight


class NaiveBayesSentiment(LabelStudioModel):
    """Multinomial naive Bayes on the words of a Text, predicting a Choices label."""

    model_version = "nb-0"

    def __init__(self) -> None:
        self.examples: dict[int, tuple[str, str]] = {}  # task id -> (text, label)
        self.generation = 0
        self.lock = threading.Lock()
        self.counts = self.fit_counts({})

    @staticmethod
    def fit_counts(examples: dict[int, tuple[str, str]]) -> Counts:
        """The seed lexicon, plus each example counted three times."""
        counts = Counts()
        for label, seed in SEED.items():
            counts.add(label, seed.split())
        for text, label in examples.values():
            counts.add(label, words(text), weight=3)
        return counts

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction | None]:
        if not context.label_config:
            return [None] * len(tasks)
        target = target_of(context.label_config)
        counts = self.counts  # one consistent snapshot, even while fit runs
        return [self.classify(task, target, counts) for task in tasks]

    def classify(self, task: Task, target: Target, counts: Counts) -> Prediction | None:
        """The most likely choice for the task's text, scored by its posterior probability."""
        text = task.data.get(target.data_key)
        if not isinstance(text, str) or not target.labels:
            return None
        tokens = words(text)
        vocab = len({w for c in counts.words.values() for w in c}) or 1
        total_docs = sum(counts.docs.values()) or 1
        scores: dict[str, float] = {}
        for label in target.labels:
            c = counts.words.get(label, Counter())
            size = sum(c.values())
            prior = (counts.docs.get(label, 0) + 1) / (total_docs + len(target.labels))
            scores[label] = math.log(prior) + sum(
                math.log((c[t] + 1) / (size + vocab)) for t in tokens
            )
        best = max(scores, key=lambda k: scores[k])
        top = max(scores.values())
        confidence = 1.0 / sum(math.exp(s - top) for s in scores.values())
        build = ResultBuilder(target.config)
        build.choices(best, from_name=target.from_name, to_name=target.to_name, score=confidence)
        return build.prediction(score=confidence)

    def fit(self, event: TrainingEvent) -> str | None:
        if not event.label_config:
            return None
        target = target_of(event.label_config)
        with self.lock:
            # "Start Training" refits on everything annotated in Label Studio; an annotation
            # event adds what it carries; a payload sent without credentials is never trained
            # on. `event.training_tasks()` applies these rules (docs/training.md).
            examples = {} if event.refits else dict(self.examples)
            for task in event.training_tasks():
                task_id, data = task.get("id"), task.get("data")
                text = data.get(target.data_key) if isinstance(data, dict) else None
                labels = chosen_labels(target, task["annotations"])
                if isinstance(task_id, int) and isinstance(text, str) and labels:
                    examples[task_id] = (text, labels[-1])  # the latest annotation wins
            if event.should_stop() or examples == self.examples:
                return None  # cancelled (the result would be discarded), or nothing new
            self.examples = examples
            self.counts = self.fit_counts(examples)
            self.generation += 1
            return f"nb-{self.generation}"

    def save(self, path: Path) -> None:
        state = {"generation": self.generation, "examples": self.examples}
        (path / "examples.json").write_text(json.dumps(state))

    def load(self, path: Path) -> None:
        state = json.loads((path / "examples.json").read_text())
        self.generation = state["generation"]
        self.examples = {int(k): (v[0], v[1]) for k, v in state["examples"].items()}
        self.counts = self.fit_counts(self.examples)
