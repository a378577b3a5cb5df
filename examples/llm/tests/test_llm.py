"""The LLM example (examples/llm), served, against a fake OpenAI-compatible chat endpoint.

The fake endpoint is a stdlib HTTP server on 127.0.0.1 started by each test. It records every
request it gets and answers each task's text with a scripted reply (content, HTTP status,
delay), so every path of the backend runs offline and deterministically.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from relaxml import check_prediction

from ..model import LLM, Endpoint, target_of

EXAMPLE = Path(__file__).resolve().parents[1]
LABEL_CONFIG = (EXAMPLE / "label_config.xml").read_text()
README = (EXAMPLE / "README.md").read_text()
KEY = "sk-test-0123456789abcdef"
CLASSIFY = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="positive"/>
    <Choice value="negative"/>
  </Choices>
</View>"""
NER = """<View>
  <Text name="text" value="$text"/>
  <Labels name="ner" toName="text">
    <Label value="PER"/>
    <Label value="ORG"/>
  </Labels>
</View>"""


@dataclass(frozen=True)
class Reply:
    """What the fake endpoint answers: the assistant's content, or an HTTP error, maybe late."""

    content: str | None = None
    status: int = 200
    delay: float = 0.0


class FakeLLM:
    """An OpenAI-compatible `/v1/chat/completions` on 127.0.0.1, answering scripted replies.

    `script` maps a task's text (what follows "Text:" in the prompt) to its reply; texts not
    in it get `default`. `requests` holds (JSON body, headers) of every request received.
    """

    def __init__(self) -> None:
        self.script: dict[str, Reply] = {}
        self.default: Callable[[str], Reply] = lambda text: Reply('{"choice": "positive"}')
        self.requests: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def reply(self, body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        text = prompt.split("\nText:\n", 1)[-1]
        return self.script.get(text) or self.default(text)

    def prompts(self) -> list[str]:
        return [body["messages"][-1]["content"] for body, _ in self.requests]

    def close(self) -> None:
        self.closing.set()  # slow replies stop waiting
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.requests.append((body, dict(self.headers)))
            if self.path != "/v1/chat/completions":
                self.answer(404, {"error": "not found"})
                return
            reply = fake.reply(body)
            with fake.lock:
                fake.in_flight += 1
                fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
            closing = reply.delay and fake.closing.wait(reply.delay)
            with fake.lock:
                fake.in_flight -= 1
            if closing:
                return
            if reply.status != 200:  # a careless server echoes the credentials it got
                auth = self.headers.get("Authorization")
                self.answer(reply.status, {"error": f"boom (Authorization: {auth})"})
                return
            message = {"role": "assistant", "content": reply.content}
            self.answer(200, {"object": "chat.completion", "choices": [{"message": message}]})

        def answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    """A fake endpoint, and the environment pointing the model at it with an API key."""
    server = FakeLLM()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "fake-7b")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("LLM_TIMEOUT", "5")
    yield server
    server.close()


def predict(client: Any, config: str, *texts: str) -> Any:
    tasks = [{"id": i + 1, "data": {"text": t}} for i, t in enumerate(texts)]
    return client.post("/predict", json={"project": "3.1", "label_config": config, "tasks": tasks})


def results(answer: Any) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    return list(answer.json()["results"])


def test_classification_prompt_lists_the_choices_and_the_answer_is_stored(serve, fake):
    fake.script["I love it"] = Reply('{"choice": "Positive"}')  # any case maps to the choice
    client = serve(LLM)
    [result] = results(predict(client, CLASSIFY, "I love it"))
    assert result["model_version"] == "llm-fake-7b"
    assert result["result"] == [
        {
            "id": result["result"][0]["id"],
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["positive"]},
        }
    ]
    assert check_prediction(CLASSIFY, result) == []
    [(body, headers)] = fake.requests
    assert body["model"] == "fake-7b"
    assert body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert headers["Authorization"] == f"Bearer {KEY}"
    prompt = body["messages"][-1]["content"]
    assert 'exactly one of "positive", "negative"' in prompt
    assert '{"choice": "<the choice>"}' in prompt
    assert prompt.endswith("Text:\nI love it")
    assert client.get("/health").json()["model_version"] == "llm-fake-7b"


def test_ner_marks_every_whole_word_occurrence_of_each_entity(serve, fake):
    text = "Ada met Ada Lovelace at Acme; Adam works at Acme too."
    entities = [{"label": "PER", "text": "Ada"}, {"label": "org", "text": "Acme"}]
    fake.script[text] = Reply("```json\n" + json.dumps({"entities": entities}) + "\n```")
    [result] = results(predict(serve(LLM), NER, text))
    spans = sorted(
        (r["value"]["start"], r["value"]["end"], *r["value"]["labels"]) for r in result["result"]
    )
    assert spans == [(0, 3, "PER"), (8, 11, "PER"), (24, 28, "ORG"), (44, 48, "ORG")]
    for item in result["result"]:
        assert text[item["value"]["start"] : item["value"]["end"]] == item["value"]["text"]
    assert {(r["from_name"], r["to_name"], r["type"]) for r in result["result"]} == {
        ("ner", "text", "labels")
    }
    assert check_prediction(NER, result) == []
    prompt = fake.prompts()[0]
    assert 'these types in the text: "PER", "ORG"' in prompt
    assert '"entities": [{"label": "<a type>", "text": "<the entity>"}, ...]' in prompt


def test_both_controls_are_asked_for_in_one_call_per_task(serve, fake):
    text = "Ada Lovelace joined Acme Robotics in Geneva as its chief engineer."
    answer = {
        "choice": "business",
        "entities": [{"label": "PER", "text": "Ada Lovelace"}, {"label": "LOC", "text": "Geneva"}],
    }
    fake.script[text] = Reply(json.dumps(answer))
    [result] = results(predict(serve(LLM), LABEL_CONFIG, text))
    assert len(fake.requests) == 1
    assert [
        (r["type"], r["value"].get("choices") or r["value"]["labels"]) for r in result["result"]
    ] == [
        ("choices", ["business"]),
        ("labels", ["PER"]),
        ("labels", ["LOC"]),
    ]
    assert check_prediction(LABEL_CONFIG, result) == []
    assert '"choice": "<the choice>", "entities": [' in fake.prompts()[0]


def test_invalid_answers_are_logged_counted_and_never_stored(serve, fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.script.update(
        {
            "good": Reply('{"entities": [{"label": "PER", "text": "good"}]}'),
            "unknown label": Reply('{"entities": [{"label": "PERSON", "text": "label"}]}'),
            "broken json": Reply('{"entities": [{"label": "PER", "text": "br'),
            "not in the text": Reply('{"entities": [{"label": "ORG", "text": "Globex"}]}'),
            "wrong shape": Reply('{"entities": {"PER": ["wrong"]}}'),
            "prose": Reply("Sure! Here are the entities: none."),
        }
    )
    model = LLM()
    client = serve(model, delivery="inline")
    texts = ["good", "unknown label", "broken json", "not in the text", "wrong shape", "prose"]
    answers = results(predict(client, NER, *texts))
    assert [bool(a["result"]) for a in answers] == [True, False, False, False, False, False]
    assert [a["score"] for a in answers[1:]] == [0.0] * 5
    assert all(check_prediction(NER, a) == [] for a in answers)
    assert model.outcomes == Counter(
        valid=1, unknown_label=1, bad_json=2, text_not_found=1, wrong_shape=1
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for task_id, kind in [
        (2, "unknown_label"),
        (3, "bad_json"),
        (4, "text_not_found"),
        (5, "wrong_shape"),
        (6, "bad_json"),
    ]:
        assert any(
            m.startswith(f"task {task_id}: refused") and f"({kind})" in m for m in warnings
        ), warnings
    assert any("'Globex' is not in the task's text" in m for m in warnings)
    assert any(
        m.endswith(("(5 of 5 answers refused so far)", "(5 of 6 answers refused so far)"))
        for m in warnings
    )
    assert any("'PERSON' is not one of PER, ORG" in m for m in warnings)
    assert KEY not in caplog.text


def test_an_endpoint_error_fails_the_call_clearly_and_the_server_keeps_serving(
    serve, fake, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LLM_PARALLEL", "1")
    fake.script["fails"] = Reply(status=500)
    client = serve(LLM, delivery="inline")
    answer = predict(client, CLASSIFY, "fine", "fails", *(f"later {i}" for i in range(8)))
    assert answer.status_code == 500
    assert len(fake.requests) <= 3  # the calls not started when it failed were cancelled
    error = answer.json()
    assert error["error"] == "model_error"
    assert f"{fake.base_url}/chat/completions answered HTTP 500" in error["detail"]
    assert "Authorization: [redacted]" in error["detail"]  # the endpoint echoed the key
    assert KEY not in answer.text
    assert KEY not in caplog.text
    assert client.get("/health").status_code == 200
    assert results(predict(client, CLASSIFY, "fine again"))[0]["result"]


def test_a_slow_endpoint_times_out_with_a_clear_error(serve, fake, monkeypatch):
    monkeypatch.setenv("LLM_TIMEOUT", "0.3")
    fake.script["slow"] = Reply('{"choice": "positive"}', delay=3)
    client = serve(LLM)
    started = time.monotonic()
    answer = predict(client, CLASSIFY, "slow")
    assert time.monotonic() - started < 2.5
    assert answer.status_code == 500
    assert "did not answer within 0.3 s (LLM_TIMEOUT)" in answer.json()["detail"]
    assert results(predict(client, CLASSIFY, "quick"))[0]["result"]


def test_an_unreachable_endpoint_and_a_config_without_controls_are_clear_errors(serve, fake):
    closed = FakeLLM()
    closed.close()  # nothing listens on its port any more
    model = LLM(Endpoint(base_url=closed.base_url, model="m", timeout=2))
    client = serve(model)
    answer = predict(client, CLASSIFY, "hello")
    assert answer.status_code == 500
    assert f"cannot reach {closed.base_url}/chat/completions" in answer.json()["detail"]
    config = '<View><Text name="t" value="$t"/><TextArea name="a" toName="t"/></View>'
    answer = predict(serve(LLM), config, "hello")
    assert answer.status_code == 500
    assert (
        "no <Choices> or <Labels> with fixed options on a <Text>: add one"
        in answer.json()["detail"]
    )
    with pytest.raises(ValueError, match="set OPENAI_MODEL"):
        Endpoint.from_env({})


def test_multiple_choices_from_a_text_file_with_at_most_llm_parallel_calls_at_once(
    serve, fake, monkeypatch, tmp_path
):
    monkeypatch.setenv("LLM_PARALLEL", "2")
    config = """<View>
  <Text name="doc" value="$doc" valueType="url"/>
  <Choices name="tags" toName="doc" choice="multiple">
    <Choice value="urgent"/>
    <Choice value="billing"/>
    <Choice value="spam"/>
  </Choices>
</View>"""
    for i in range(6):
        (tmp_path / f"mail{i}.txt").write_text(f"Invoice {i} overdue, pay now")
    fake.default = lambda text: Reply('{"choices": ["urgent", "Billing"]}', delay=0.2)
    client = serve(LLM, local_files_root=str(tmp_path), delivery="inline")
    tasks = [{"id": i + 1, "data": {"doc": f"/data/local-files/?d=mail{i}.txt"}} for i in range(6)]
    answer = client.post(
        "/predict", json={"project": "3.1", "label_config": config, "tasks": tasks}
    )
    for result in results(answer):
        assert [r["value"] for r in result["result"]] == [{"choices": ["urgent", "billing"]}]
        assert check_prediction(config, result) == []
    assert fake.most_in_flight == 2
    prompts = fake.prompts()
    assert sorted(p.split("Text:\n")[1] for p in prompts) == [
        f"Invoice {i} overdue, pay now" for i in range(6)
    ]
    assert 'pick every choice that applies among "urgent", "billing", "spam"' in prompts[0]


def test_without_a_key_no_authorization_header_is_sent_and_json_mode_can_be_off(
    serve, fake, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("LLM_JSON_MODE", "false")
    assert results(predict(serve(LLM), CLASSIFY, "hello"))[0]["result"]
    [(body, headers)] = fake.requests
    assert "Authorization" not in headers
    assert "response_format" not in body


# --- the README's numbers: 120 scripted answers in the ways LLMs answer ---------------------

PEOPLE = ["Ada Lovelace", "Marta Silva", "Hank Scorpio", "Priya Raman", "Kenji Mori"]
ORGS = ["Acme Robotics", "Globex", "Initech", "Kestrel Institute", "Lyon Lions"]
PLACES = ["Geneva", "Oslo", "Tokyo", "Austin", "Lagos"]
TEMPLATES = {
    "business": [
        "{PER} signed a supply deal for {ORG} in {LOC}.",
        "{ORG} hired {PER} to run its {LOC} office.",
    ],
    "sports": [
        "{PER} scored twice as {ORG} won the final in {LOC}.",
        "In {LOC}, {ORG} signed the striker {PER}.",
    ],
    "science": [
        "{PER} of {ORG} published a genome study in {LOC}.",
        "A telescope in {LOC} let {ORG} and {PER} find a comet.",
    ],
}
STYLES = {  # how the scripted model answers, and how often (weights)
    "exact": 55,
    "fenced": 10,  # the JSON inside a ```json fence
    "other_case": 10,  # "per", "Sports": mapped to the config's names
    "missed_entity": 8,  # valid, but one entity left out
    "wrong_topic": 5,  # valid, but another topic
    "unknown_label": 8,  # "PERSON" for PER
    "invented_text": 8,  # an entity written differently from the text
    "truncated": 6,  # the JSON cut off
    "prose": 4,  # a sentence instead of JSON
    "wrong_shape": 4,  # "choice" as a list
}
MALFORMED = {"unknown_label", "invented_text", "truncated", "prose", "wrong_shape"}
WRONG = {"missed_entity", "wrong_topic"}  # well-formed answers no check can refuse
MEASURED_TASKS = 120


@dataclass(frozen=True)
class Scripted:
    style: str
    text: str
    topic: str
    entities: tuple[tuple[str, str], ...]  # (label, text)
    reply: str


def scripted_corpus(seed: int = 7) -> list[Scripted]:
    """Texts with known topic and entities, and a seeded mix of answer styles for them."""
    rng = random.Random(seed)
    corpus: list[Scripted] = []
    while len(corpus) < MEASURED_TASKS:
        topic = rng.choice(sorted(TEMPLATES))
        names = {"PER": rng.choice(PEOPLE), "ORG": rng.choice(ORGS), "LOC": rng.choice(PLACES)}
        text = rng.choice(TEMPLATES[topic]).format(**names)
        if any(item.text == text for item in corpus):
            continue  # the fake endpoint finds a task's reply by its text
        entities = tuple(names.items())
        style = rng.choices(list(STYLES), weights=list(STYLES.values()))[0]
        corpus.append(
            Scripted(style, text, topic, entities, answer_in_style(style, topic, entities, rng))
        )
    return corpus


def answer_in_style(
    style: str, topic: str, entities: tuple[tuple[str, str], ...], rng: random.Random
) -> str:
    listed = [{"label": label, "text": text} for label, text in entities]
    answer: dict[str, Any] = {"choice": topic, "entities": listed}
    if style == "other_case":
        answer = {
            "choice": topic.title(),
            "entities": [{**e, "label": e["label"].lower()} for e in listed],
        }
    elif style == "missed_entity":
        missed = rng.choice(["PER", "ORG", "LOC"])
        answer["entities"] = [e for e in listed if e["label"] != missed]
    elif style == "wrong_topic":
        answer["choice"] = rng.choice([t for t in TEMPLATES if t != topic])
    elif style == "unknown_label":
        answer["entities"] = [
            {**e, "label": "PERSON" if e["label"] == "PER" else e["label"]} for e in listed
        ]
    elif style == "invented_text":
        answer["entities"] = [
            {**e, "text": e["text"].upper()} if e["label"] == "ORG" else e for e in listed
        ]
    elif style == "wrong_shape":
        answer["choice"] = [topic]
    content = json.dumps(answer)
    if style == "fenced":
        return f"```json\n{content}\n```"
    if style == "truncated":
        return content[: len(content) * 2 // 3]
    if style == "prose":
        return f"The topic is {topic}, and the text names {listed[0]['text']}."
    return content


def spans_of(text: str, entities: tuple[tuple[str, str], ...]) -> set[tuple[int, int, str]]:
    return {
        (m.start(), m.end(), label)
        for label, name in entities
        for m in re.finditer(re.escape(name), text)
    }


def measure(serve: Any, fake: FakeLLM) -> tuple[dict[str, int], float]:
    """Serve the model against the scripted corpus: the outcome counts, and ms per task."""
    corpus = scripted_corpus()
    fake.script = {item.text: Reply(item.reply) for item in corpus}
    model = LLM()
    client = serve(model, delivery="inline")
    started = time.perf_counter()
    answers = results(predict(client, LABEL_CONFIG, *(item.text for item in corpus)))
    per_task_ms = (time.perf_counter() - started) * 1000 / len(corpus)
    rows = Counter(item.style for item in corpus)
    for item, answer in zip(corpus, answers, strict=True):
        assert check_prediction(LABEL_CONFIG, answer) == []
        assert bool(answer["result"]) == (item.style not in MALFORMED), item
        if not answer["result"]:
            continue
        choices = [r["value"]["choices"] for r in answer["result"] if r["type"] == "choices"]
        spans = {
            (r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
            for r in answer["result"]
            if r["type"] == "labels"
        }
        exact = choices == [[item.topic]] and spans == spans_of(item.text, item.entities)
        assert exact == (item.style not in WRONG), item
        rows["stored, equal to the truth" if exact else "stored, not equal to the truth"] += 1
    refused = {kind: n for kind, n in model.outcomes.items() if kind != "valid"}
    rows.update({f"refused: {kind}": n for kind, n in refused.items()})
    assert sum(rows.values()) == 2 * MEASURED_TASKS
    assert len(fake.requests) == MEASURED_TASKS  # one call per task
    return dict(rows), per_task_ms


def readme_rows() -> dict[str, int]:
    section = README.split("## Measured", 1)[1]
    return {name: int(n) for name, n in re.findall(r"^\| ([a-z_:, ]+) \| (\d+) \|$", section, re.M)}


def test_readme_outcome_counts_are_recomputed(serve, fake):
    rows, per_task_ms = measure(serve, fake)
    print(rows, f"{per_task_ms:.2f} ms per task")
    assert rows == readme_rows()
    # The README's time per task is a measurement of one machine, quoted with it; times are
    # not asserted in tests (a loaded machine is slower), only that the figure is quoted.
    assert re.findall(r"about ([\d.]+) ms per task", README)


def test_readme_shows_the_bundled_config_and_its_links_resolve():
    assert LABEL_CONFIG.strip() in README
    assert CLASSIFY.strip() in README
    assert NER.strip() in README
    for target in re.findall(r"\]\(([^)#:]+\.md)\)", README):
        assert (EXAMPLE / target).is_file(), target
    assert target_of(LABEL_CONFIG).data_key == "text"
