"""A trainable text classifier for Label Studio: TF-IDF features and logistic regression.

Label config (any Text + Choices pair works; the first Choices on a Text is used):

    <View>
      <Text name="text" value="$text"/>
      <Choices name="topic" toName="text" choice="single">
        <Choice value="sports"/>
        <Choice value="politics"/>
        <Choice value="technology"/>
      </Choices>
    </View>

The model is one scikit-learn `Pipeline` (`TfidfVectorizer` then `LogisticRegression`). Each
prediction's `score` is the probability of the chosen class, so sorting Label Studio's Data
Manager by prediction score puts the tasks the model is least sure of first (uncertainty
sampling).

Before it has seen two different classes there is nothing to fit, and it predicts nothing: an
empty prediction of `tfidf-0` for each task, never a guess.

Training:

- "Start Training" (START_TRAINING) refits on every annotated task of the project, fetched from
  Label Studio's API (set LABEL_STUDIO_API_KEY and LABEL_STUDIO_URL);
- annotation events (ANNOTATION_CREATED / UPDATED, the legacy /train) add the annotations they
  carry to everything known and refit, without any API call. An event sent without
  credentials is never trained on: it triggers a refit from the API instead, or nothing.

Each fit that changes the examples returns a new version (tfidf-1, tfidf-2, ...); `save` writes
the fitted pipeline with joblib and the examples as JSON, `load` reads them back.

Serve it:  relaxml serve examples/text_classifier/model.py:TextClassifier
README.md (beside this file) says more.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from relaxml import (
    Context,
    LabelStudioModel,
    Prediction,
    ResultBuilder,
    Task,
    TrainingEvent,
)
from relaxml.labels import Target, find_target

PIPELINE_FILE = "pipeline.joblib"
EXAMPLES_FILE = "examples.json"


def target_of(label_config: str) -> Target:
    """The first Choices on a Text (or HyperText) of a label config."""
    return find_target(label_config, "Choices", ("Text", "HyperText"))


def new_pipeline() -> Pipeline:
    """An unfitted TF-IDF + logistic regression pipeline."""
    return Pipeline(
        [
            ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("logreg", LogisticRegression(C=10.0, max_iter=1000)),
        ]
    )


def train_pipeline(examples: Iterable[tuple[str, str]]) -> Pipeline | None:
    """A pipeline fitted on (text, label) pairs; None while they hold fewer than 2 classes."""
    pairs = list(examples)
    if len({label for _, label in pairs}) < 2:
        return None
    pipeline = new_pipeline()
    pipeline.fit([text for text, _ in pairs], [label for _, label in pairs])
    return pipeline


def classify(
    pipeline: Pipeline | None, texts: Sequence[str], labels: Sequence[str]
) -> list[tuple[str, float] | None]:
    """The most probable of `labels` for each text, with its probability.

    Without a pipeline, or when it knows none of `labels`, every text gets None: no answer.
    Classes the config no longer lists are left out and the remaining probabilities
    renormalized.
    """
    known = [str(c) for c in pipeline.classes_] if pipeline is not None else []
    columns = [i for i, c in enumerate(known) if c in labels]
    if pipeline is None or not columns or not texts:
        return [None] * len(texts)
    answers: list[tuple[str, float] | None] = []
    for row in pipeline.predict_proba(list(texts)):
        kept = {known[i]: float(row[i]) for i in columns}
        total = sum(kept.values()) or 1.0
        best = max(kept, key=lambda c: kept[c])
        answers.append((best, kept[best] / total))
    return answers


class TextClassifier(LabelStudioModel):
    """TF-IDF + logistic regression on the text of a Text, predicting a Choices label."""

    model_version = "tfidf-0"

    def __init__(self) -> None:
        self.examples: dict[int, tuple[str, str]] = {}  # task id -> (text, label)
        self.generation = 0
        self.lock = threading.Lock()
        self.pipeline: Pipeline | None = None

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction | None]:
        if not context.label_config:
            return [None] * len(tasks)
        target = target_of(context.label_config)
        if not target.labels:
            return [None] * len(tasks)
        pipeline = self.pipeline  # one consistent snapshot, even while fit runs
        texts = {i: t.data.get(target.data_key) for i, t in enumerate(tasks)}
        readable = {i: text for i, text in texts.items() if isinstance(text, str)}
        classified = classify(pipeline, list(readable.values()), target.labels)
        answers = dict(zip(readable, classified, strict=True))
        return [
            self.prediction(target, *answer) if (answer := answers.get(i)) else None for i in texts
        ]

    @staticmethod
    def prediction(target: Target, label: str, probability: float) -> Prediction:
        """One Choices prediction; its score (and the item's) is the class probability."""
        build = ResultBuilder(target.config)
        build.choices(label, from_name=target.from_name, to_name=target.to_name, score=probability)
        return build.prediction(score=probability)

    def fit(self, event: TrainingEvent) -> str | None:
        if not event.label_config:
            return None
        target = target_of(event.label_config)
        with self.lock:
            examples = self.collect(event, target)
            if event.should_stop() or examples == self.examples:
                return None  # cancelled (the result would be discarded), or nothing new
            pipeline = train_pipeline(examples.values())
            self.examples = examples
            if pipeline is None:  # still fewer than two classes: nothing new to serve
                return None
            self.pipeline = pipeline
            self.generation += 1
            return f"tfidf-{self.generation}"

    def collect(self, event: TrainingEvent, target: Target) -> dict[int, tuple[str, str]]:
        """The (text, label) examples after this event, by task id.

        "Start Training" refits on everything annotated in Label Studio; an annotation event
        adds what it carries to what is known; a payload sent without credentials is never
        trained on. `event.refits` and `event.training_tasks()` apply these rules.
        """
        examples = {} if event.refits else dict(self.examples)
        for task in event.training_tasks():
            task_id, data = task.get("id"), task.get("data")
            text = data.get(target.data_key) if isinstance(data, dict) else None
            labels = [
                choice
                for item in target.results_in(task["annotations"])
                for choice in item["value"].get("choices") or []
                if isinstance(choice, str)
            ]
            if isinstance(task_id, int) and isinstance(text, str) and labels:
                examples[task_id] = (text, labels[-1])  # the latest annotation wins
        return examples

    def save(self, path: Path) -> None:
        state = {"generation": self.generation, "examples": self.examples}
        (path / EXAMPLES_FILE).write_text(json.dumps(state))
        if self.pipeline is not None:
            joblib.dump(self.pipeline, path / PIPELINE_FILE)

    def load(self, path: Path) -> None:
        state = json.loads((path / EXAMPLES_FILE).read_text())
        self.generation = int(state["generation"])
        self.examples = {int(k): (v[0], v[1]) for k, v in state["examples"].items()}
        fitted = path / PIPELINE_FILE
        self.pipeline = joblib.load(fitted) if fitted.is_file() else None


# --- A generated data set: the tasks of tasks.json, the README's measurement, the tests ---

TOPICS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sports": (
        ("the {} won the {} after a late {}", "fans cheered as the {} scored in the {}"),
        ("team", "match", "goal", "coach", "league", "striker", "final", "season", "stadium"),
    ),
    "politics": (
        ("the {} voted on the {} before the {}", "critics say the {} ignored the {}"),
        ("senate", "bill", "election", "minister", "parliament", "vote", "policy", "mayor"),
    ),
    "technology": (
        ("the new {} ships with a faster {} and {}", "engineers fixed the {} in the {}"),
        ("phone", "chip", "software", "update", "laptop", "battery", "app", "server", "cloud"),
    ),
}
SHARED = ("everyone is talking about the {} and the {}", "a report on the {} mentions the {}")
FILLER = ("today", "yesterday", "reportedly", "again", "finally", "this week", "once more")


def generated_texts(count: int, seed: int) -> list[tuple[str, str]]:
    """`count` (text, topic) pairs from templates, the topics in turn; reproducible by `seed`.

    Noise: half the templates are shared by every topic, each slot takes a word of another
    topic with probability 0.2, and a filler word or two is added, so the topics overlap and
    a classifier has something to learn.
    """
    rng = random.Random(seed)
    names = sorted(TOPICS)
    pairs = []
    for n in range(count):
        topic = names[n % len(names)]
        templates, words = TOPICS[topic]
        template = rng.choice(templates + SHARED)
        slots = []
        for _ in range(template.count("{}")):
            pool = TOPICS[rng.choice(names)][1] if rng.random() < 0.2 else words
            slots.append(rng.choice(pool))
        text = template.format(*slots)
        fillers = rng.sample(FILLER, rng.randint(1, 2))
        pairs.append((f"{text} {' '.join(fillers)}".capitalize(), topic))
    return pairs
