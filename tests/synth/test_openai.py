"""The ``openai`` backend against a local HTTP server that speaks chat completions.

Only the external endpoint is stood in for: the server below answers ``POST
/v1/chat/completions`` from a script (good replies, malformed ones, 429, 5xx, 401), and records
what it was sent. Everything on our side (httpx, retries, parsing, accounting) runs for real.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.errors import SourceError
from pipelines.lake import Lake
from pipelines.ledger import RunLedger
from synth.backends import backend_for
from synth.backends.openai_chat import OpenAIChatGenerator
from synth.config import OpenAIBackend, SynthTask
from synth.generate import generate_task
from synth.samples import GenerationContext, GenerationJob, LabelRequest, SeedSet

Reply = tuple[int, dict[str, str], Any]  # status, headers, body (dict → JSON, str → raw)


def completion(samples: Any, prompt: int = 50, completion_tokens: int = 20) -> Reply:
    content = samples if isinstance(samples, str) else json.dumps({"samples": samples})
    return (
        200,
        {},
        {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens},
        },
    )


class ChatServer:
    """A chat-completions endpoint answering from a list of scripted replies (the last one
    repeats), recording each request's headers and body."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                server.requests.append((dict(self.headers), body))
                if self.path != "/v1/chat/completions":
                    status, headers, payload = 404, {}, {"error": "not found"}
                else:
                    index = min(len(server.requests), len(server.replies)) - 1
                    status, headers, payload = server.replies[index]
                raw = payload if isinstance(payload, str) else json.dumps(payload)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw.encode())))
                self.end_headers()
                self.wfile.write(raw.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as s:
        yield s


def _config(server: ChatServer, **overrides: Any) -> OpenAIBackend:
    values: dict[str, Any] = {
        "base_url": server.url,
        "model": "local-model",
        "samples_per_request": 2,
        "max_retries": 2,
        "backoff_s": 0.0,
        "requests_per_minute": 60_000,
        "timeout_s": 5,
    }
    return OpenAIBackend(**(values | overrides))


def _job(count: int = 2) -> GenerationJob:
    task = SynthTask(name="t", dataset="d", text_field="text", label_field="intent")
    seed = SeedSet(
        keys=["k1", "k2", "k3"],
        records=[
            {"text": "the lamp arrived broken", "intent": "damaged_item"},
            {"text": "my kettle is cracked", "intent": "damaged_item"},
            {"text": "where is my order", "intent": "track_order"},
        ],
        labels=["damaged_item", "damaged_item", "track_order"],
        vectors=np.zeros((3, 2), np.float32),
    )
    centroids = {"damaged_item": np.zeros(2), "track_order": np.zeros(2)}
    context = GenerationContext(None, centroids, Path("."), "run")
    return GenerationJob(task, seed, [LabelRequest("damaged_item", count, [0, 1])], context)


def test_prompt_json_mode_token_and_accounting(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTH_TEST_TOKEN", "s3cret")
    server.replies = [
        completion(["The mug came chipped.", {"text": "My chair  arrived with a bent leg."}]),
        completion(["The mug came chipped.", "Box crushed, screen cracked."], 40, 10),
    ]
    backend = backend_for(_config(server, api_key_env="SYNTH_TEST_TOKEN"))
    result = backend.generate(_job(count=3))

    texts = [c.record["text"] for c in result.candidates]
    assert texts == [
        "The mug came chipped.",
        "My chair arrived with a bent leg.",
        "Box crushed, screen cracked.",
    ]
    assert all(c.label == "damaged_item" and c.seed_keys == ("k1", "k2") for c in result.candidates)
    usage = result.usage
    assert (usage.requests, usage.retries, usage.malformed) == (2, 0, 0)
    assert (usage.prompt_tokens, usage.completion_tokens) == (90, 30)
    headers, body = server.requests[0]
    assert headers["Authorization"] == "Bearer s3cret"
    assert body["model"] == "local-model" and body["response_format"] == {"type": "json_object"}
    prompt = body["messages"][1]["content"]
    assert "the lamp arrived broken" in prompt and "track_order" in prompt
    assert "s3cret" not in json.dumps([c.params for c in result.candidates])


def test_malformed_replies_and_429_are_retried(server: ChatServer) -> None:
    server.replies = [
        completion("Sure! Here are some examples: 1. broken"),  # not JSON
        (200, {}, "<html>gateway</html>"),  # not even a JSON body
        (429, {"Retry-After": "0"}, {"error": "slow down"}),
        completion('```json\n{"samples": ["Lid snapped off on arrival."]}\n```'),
        completion({"wrong": "shape"}),
        completion([{"text": "The frame is warped."}]),
    ]
    result = backend_for(_config(server, max_retries=3)).generate(_job(count=2))
    assert [c.record["text"] for c in result.candidates] == [
        "Lid snapped off on arrival.",
        "The frame is warped.",
    ]
    assert (result.usage.requests, result.usage.retries, result.usage.malformed) == (6, 4, 3)


def test_malformed_after_retries_loses_only_that_request(server: ChatServer) -> None:
    server.replies = [completion("nope"), completion("still nope"), completion(["Torn bag."])]
    result = backend_for(_config(server, max_retries=1, max_requests=3)).generate(_job(count=2))
    assert [c.record["text"] for c in result.candidates] == ["Torn bag."]
    assert result.usage.malformed == 2


def test_server_errors_become_transient_and_auth_errors_terminal(server: ChatServer) -> None:
    server.replies = [(503, {}, {"error": "overloaded"})]
    with pytest.raises(SourceError, match="HTTP 503 after 3 attempts") as caught:
        backend_for(_config(server)).generate(_job())
    assert caught.value.transient and len(server.requests) == 3

    server.requests.clear()
    server.replies = [(401, {}, {"error": "bad token"})]
    with pytest.raises(SourceError, match="HTTP 401") as caught:
        backend_for(_config(server)).generate(_job())
    assert not caught.value.transient and len(server.requests) == 1


def test_unreachable_endpoint_is_transient() -> None:
    config = OpenAIBackend(
        base_url="http://127.0.0.1:9/v1", model="m", max_retries=1, backoff_s=0, timeout_s=1
    )
    with pytest.raises(SourceError, match="ConnectError") as caught:
        backend_for(config).generate(_job())
    assert caught.value.transient


def test_requests_are_spaced_by_the_rate_limit(server: ChatServer) -> None:
    server.replies = [completion(["A dented pan."]), completion(["A cracked plate."])]
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    backend = OpenAIChatGenerator(
        _config(server, requests_per_minute=30, samples_per_request=1),
        sleep=sleep,
        clock=lambda: now[0],
    )
    backend.generate(_job(count=2))
    assert waits == [2.0]


def test_generate_task_with_openai_filters_and_ledger(
    server: ChatServer, lake: Lake, task: SynthTask, encoder
) -> None:
    server.replies = [
        completion(
            [
                "My new blender arrived with a shattered jug, the box was soaked.",
                "Call me on 13800138000 about the broken lamp.",
                "The backpack I got has a ripped strap and a broken zip.",
            ]
        ),
        completion(
            [
                "I returned the headphones two weeks ago, where is my money?",
                "Please send back the 60 dollars for the jacket I sent back.",
            ]
        ),
    ]
    openai_task = task.model_copy(
        update={
            "backend": _config(server, samples_per_request=3),
            "per_label": 3,
            "labels": ["damaged_item", "refund_request"],
        }
    )
    ledger = RunLedger(lake.config.ledger)
    with ledger.run("synth", "test") as run:
        report = generate_task(lake, openai_task, encoder, run_id=run.run_id, run=run)
    assert report.filters.dropped["pii:CN_MOBILE"] == 1
    assert report.usage["usage:prompt_tokens"] > 0
    stages = {s["stage"]: s for s in ledger.show_run(report.run_id)["stages"]}
    assert stages["synth.generate"]["reasons"]["usage:completion_tokens"] > 0
    assert report.filters.kept == report.queued >= 3
