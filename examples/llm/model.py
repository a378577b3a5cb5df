"""Prompted classification and NER through any OpenAI-compatible chat endpoint.

For each task the backend builds a prompt from the label config (the options of a `<Choices>`,
the label names of a `<Labels>`, on the same `<Text>`), sends it to
`POST {OPENAI_BASE_URL}/chat/completions` with `temperature=0` and asks for one JSON object:

    {"choice": "positive"}                                    a single-choice <Choices>
    {"choices": ["sports", "politics"]}                       choice="multiple"
    {"entities": [{"label": "PER", "text": "Ada Lovelace"}]}  a <Labels> (NER)

A config with both controls gets one call per task asking for both keys. The answer is checked
against the label config (JSON, shape, known labels, entity text present in the task text) and
the result built with relaxml's `ResultBuilder`. An answer that fails a check is logged as a
warning naming the task and the problem, counted in `LLM.outcomes`, and never stored: the task
gets an empty prediction. An endpoint that cannot be reached, times out or answers an HTTP
error fails the call with an `EndpointError` (a JSON 500 naming the endpoint; background jobs
retry task by task), so a passing outage is never recorded as "no prediction".

Environment: OPENAI_BASE_URL, OPENAI_MODEL (required), OPENAI_API_KEY (optional, never
logged), LLM_TIMEOUT, LLM_PARALLEL, LLM_JSON_MODE; README.md describes them.

Serve it:  OPENAI_MODEL=<name> relaxml serve examples/llm/model.py:LLM
README.md (beside this file) says more.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import requests

from relaxml import (
    Context,
    ControlTag,
    LabelConfig,
    LabelStudioModel,
    Prediction,
    ResultBuilder,
    ResultError,
    Task,
    UnknownLabelError,
    check_prediction,
    parse_label_config,
)
from relaxml.logs import remember

logger = logging.getLogger("examples.llm")

SYSTEM = "You label data for Label Studio. Answer with one JSON object and nothing else."
FENCE = re.compile(r"^```[a-zA-Z]*\s*\n(.*?)\n?```$", re.DOTALL)
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class EndpointError(RuntimeError):
    """The chat endpoint could not be reached, timed out, or answered an HTTP error."""


class InvalidAnswer(ValueError):
    """The model answered, but not something the label config accepts."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def _env_number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:
        raise ValueError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: an OpenAI-compatible `/chat/completions` endpoint."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    json_mode: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Endpoint:
        """Read OPENAI_BASE_URL, OPENAI_MODEL, OPENAI_API_KEY, LLM_TIMEOUT and LLM_JSON_MODE."""
        model = env.get("OPENAI_MODEL", "").strip()
        if not model:
            raise ValueError(
                "set OPENAI_MODEL to the name of the model your endpoint serves "
                "(e.g. OPENAI_MODEL=qwen2.5:7b-instruct for Ollama)"
            )
        json_mode = env.get("LLM_JSON_MODE", "true").strip().lower()
        if json_mode not in TRUE + FALSE:
            raise ValueError(f"LLM_JSON_MODE must be true or false, got {json_mode!r}")
        return cls(
            base_url=env.get("OPENAI_BASE_URL", "").strip() or "http://127.0.0.1:8000/v1",
            model=model,
            api_key=env.get("OPENAI_API_KEY", "").strip() or None,
            timeout=_env_number(env, "LLM_TIMEOUT", 60.0, 0.001),
            json_mode=json_mode in TRUE,
        )

    @property
    def url(self) -> str:
        """The chat completions URL."""
        return self.base_url.rstrip("/") + "/chat/completions"

    def scrub(self, text: str) -> str:
        """`text` without the API key (an endpoint may echo the headers it got)."""
        return text.replace(self.api_key, "[redacted]") if self.api_key else text

    def ask(self, session: requests.Session, messages: list[dict[str, str]]) -> str:
        """The assistant's message for `messages`; `EndpointError` when there is none."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0}
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = session.post(self.url, json=body, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise EndpointError(
                f"{self.url} did not answer within {self.timeout:g} s (LLM_TIMEOUT)"
            ) from None
        except requests.RequestException as exc:
            reason = self.scrub(" ".join(str(exc).split()))[:300]
            raise EndpointError(f"cannot reach {self.url}: {reason}") from None
        if response.status_code >= 400:
            text = self.scrub(" ".join(response.text.split()))[:200]
            raise EndpointError(f"{self.url} answered HTTP {response.status_code}: {text}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, LookupError, TypeError):
            raise EndpointError(
                f"{self.url} did not answer in the chat completions format "
                '({"choices": [{"message": {"content": ...}}]})'
            ) from None
        if not isinstance(content, str):
            raise InvalidAnswer("no_content", f"the message content is {content!r}")
        return content


@dataclass(frozen=True)
class Target:
    """What the config asks for: the Text, its data key, and its Choices and/or Labels."""

    config: LabelConfig
    to_name: str
    data_key: str
    choices: ControlTag | None
    labels: ControlTag | None
    url: bool = False
    """The task data holds the text's URL (`valueType="url"`), not the text."""


def target_of(label_config: str) -> Target:
    """The first `<Text>` labelled by a `<Choices>` or a `<Labels>` with fixed options."""
    config = parse_label_config(label_config)
    for obj in config.objects_of_type("text"):
        controls = [c for c in config.controls_for(obj.name) if c.labels and not c.per_region]
        choices = next((c for c in controls if c.type == "choices"), None)
        labels = next((c for c in controls if c.type == "labels"), None)
        if obj.value_key is not None and (choices or labels):
            url = obj.attrs.get("valueType") == "url"
            return Target(config, obj.name, obj.value_key, choices, labels, url)
    raise ValueError(
        "the label config has no <Choices> or <Labels> with fixed options on a <Text>: "
        'add one, e.g. <Choices name="topic" toName="text"><Choice value="sports"/>...</Choices>'
    )


def messages_for(target: Target, text: str) -> list[dict[str, str]]:
    """The chat messages asking for `target`'s labels of `text`."""
    asks, shape = [], []
    if target.choices is not None:
        options = ", ".join(json.dumps(label.value) for label in target.choices.labels)
        if target.choices.multiple:
            asks.append(f"Classify the text: pick every choice that applies among {options}.")
            shape.append('"choices": ["<a choice>", ...]')
        else:
            asks.append(f"Classify the text: pick exactly one of {options}.")
            shape.append('"choice": "<the choice>"')
    if target.labels is not None:
        names = ", ".join(json.dumps(label.value) for label in target.labels.labels)
        asks.append(
            f"Find every named entity of these types in the text: {names}. "
            "Copy each entity's text exactly as it is written in the text."
        )
        shape.append('"entities": [{"label": "<a type>", "text": "<the entity>"}, ...]')
    ask = " ".join(asks) + "\nAnswer with JSON of this shape: {" + ", ".join(shape) + "}"
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{ask}\n\nText:\n{text}"},
    ]


def parse_answer(content: str) -> dict[str, Any]:
    """The JSON object of an answer (a ```json fence around it is accepted)."""
    stripped = content.strip()
    fenced = FENCE.match(stripped)
    try:
        answer = json.loads(fenced.group(1) if fenced else stripped)
    except ValueError:
        raise InvalidAnswer("bad_json", f"not JSON: {stripped[:60]!r}") from None
    if not isinstance(answer, dict):
        raise InvalidAnswer("wrong_shape", f"a JSON {type(answer).__name__}, not an object")
    return answer


def occurrences(text: str, needle: str) -> list[int]:
    """Starts of every whole-word occurrence of `needle` in `text`; if there is none (text
    without spaces, a word cut inside), of every occurrence."""
    escaped = re.escape(needle)
    whole = [m.start() for m in re.finditer(rf"(?<!\w){escaped}(?!\w)", text)]
    return whole or [m.start() for m in re.finditer(escaped, text)]


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidAnswer("wrong_shape", f"{what} must be a list of strings, got {value!r}")
    return value


def build_prediction(target: Target, text: str, answer: dict[str, Any]) -> Prediction:
    """The checked prediction for a parsed answer; `InvalidAnswer` says what is wrong."""
    build = ResultBuilder(target.config)
    try:
        if target.choices is not None:
            control = target.choices
            key = "choices" if control.multiple else "choice"
            picked = answer.get(key)
            if control.multiple:
                picked = _strings(picked, '"choices"')
            elif not isinstance(picked, str):
                raise InvalidAnswer("wrong_shape", f'"choice" must be a string, got {picked!r}')
            if picked or not control.multiple:  # no choice applies: an empty list
                build.choices(picked, from_name=control.name, to_name=target.to_name)
        if target.labels is not None:
            add_spans(build, target, target.labels, text, answer.get("entities"))
    except UnknownLabelError as exc:
        raise InvalidAnswer("unknown_label", str(exc).split(". Add")[0]) from None
    except ResultError as exc:
        raise InvalidAnswer("wrong_shape", str(exc)) from None
    prediction = build.prediction()
    problems = check_prediction(target.config, prediction)
    if problems:
        raise InvalidAnswer("invalid_result", "; ".join(map(str, problems)))
    return prediction


def add_spans(
    build: ResultBuilder, target: Target, control: ControlTag, text: str, entities: object
) -> None:
    """One span per occurrence of each entity's text, labelled with the entity's label."""
    if not isinstance(entities, list):
        raise InvalidAnswer("wrong_shape", f'"entities" must be a list, got {entities!r}')
    seen: set[tuple[int, int, str]] = set()
    for entity in entities:
        label, needle = (
            (entity.get(k) for k in ("label", "text")) if isinstance(entity, dict) else (None, None)
        )
        if not (isinstance(label, str) and isinstance(needle, str) and needle.strip()):
            raise InvalidAnswer(
                "wrong_shape", f'an entity needs a "label" and a "text": {entity!r}'
            )
        starts = occurrences(text, needle)
        if not starts:
            raise InvalidAnswer("text_not_found", f"entity {needle!r} is not in the task's text")
        known = control.match_label(label)
        if known is None:
            names = ", ".join(control.label_names)
            raise InvalidAnswer("unknown_label", f"{label!r} is not one of {names}")
        for start in starts:
            span = (start, start + len(needle), known.name)
            if span not in seen:
                seen.add(span)
                build.span(*span, text=needle, from_name=control.name, to_name=target.to_name)


class LLM(LabelStudioModel):
    """Classification and NER by prompting an OpenAI-compatible chat endpoint."""

    model_version = "llm"

    def __init__(self, endpoint: Endpoint | None = None, parallel: int | None = None) -> None:
        self.endpoint = endpoint or Endpoint.from_env()
        remember(self.endpoint.api_key)  # relaxml's log filter and error details hide it
        self.model_version = "llm-" + re.sub(r"[^A-Za-z0-9._-]+", "-", self.endpoint.model)
        self.parallel = parallel or int(_env_number(os.environ, "LLM_PARALLEL", 4, 1))
        self.pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="llm")
        self.sessions = threading.local()  # one connection pool per worker thread
        self.outcomes: Counter[str] = Counter()
        """How many answers were stored ("valid") or refused, by kind of problem."""
        self.lock = threading.Lock()

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction | None]:
        if not context.label_config:
            return [None] * len(tasks)
        target = target_of(context.label_config)
        futures = [self.pool.submit(self.label_task, task, target, context) for task in tasks]
        try:
            return [future.result() for future in futures]
        except BaseException:  # the endpoint failed: so does the call
            for future in futures:
                future.cancel()  # those not started yet; wait for the running ones
            wait(futures)
            raise

    def label_task(self, task: Task, target: Target, context: Context) -> Prediction | None:
        """Ask about one task; None (and a warning) when its answer is refused."""
        text = task.data.get(target.data_key)
        if isinstance(text, str) and target.url:
            text = context.read_text(text, task)
        if not isinstance(text, str) or not text.strip():
            self.count("no_text")
            logger.warning("task %s: no text under $%s", task.id, target.data_key)
            return None
        try:
            content = self.endpoint.ask(self.session(), messages_for(target, text))
            prediction = build_prediction(target, text, parse_answer(content))
        except InvalidAnswer as bad:
            refused = self.count(bad.kind)
            logger.warning(
                "task %s: refused the answer of %s (%s): %s; no prediction stored "
                "(%d of %d answers refused so far)",
                task.id,
                self.endpoint.model,
                bad.kind,
                self.endpoint.scrub(bad.detail),
                *refused,
            )
            return None
        self.count("valid")
        return prediction

    def session(self) -> requests.Session:
        """This thread's HTTP session (kept-alive connections to the endpoint)."""
        session: requests.Session | None = getattr(self.sessions, "session", None)
        if session is None:
            session = self.sessions.session = requests.Session()
        return session

    def count(self, outcome: str) -> tuple[int, int]:
        """Count one task's outcome in `outcomes`; the answers refused and received so far."""
        with self.lock:
            self.outcomes[outcome] += 1
            received = self.outcomes.total() - self.outcomes["no_text"]
            return received - self.outcomes["valid"], received
