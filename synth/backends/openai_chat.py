"""``openai``: any OpenAI-compatible chat-completions endpoint, asked for JSON.

One request asks for ``samples_per_request`` new examples of one label, showing its MMR
exemplars; the reply must be a JSON object ``{"samples": [string | {"text": string}, ...]}``.

- Rate limit: request starts are spaced ``60 / requests_per_minute`` seconds apart.
- Retries: 429, 5xx, timeouts and connection errors are retried with doubling waits
  (``Retry-After`` wins); after ``max_retries`` the run stops with a transient SourceError,
  because the endpoint may come back. Other 4xx (bad model, bad token) stop at once as a
  terminal error: retrying cannot help.
- Malformed replies (not JSON, wrong shape) are retried like errors but, once retries are
  spent, only lose that request: the others' samples stand, and the count is reported.
- A label stops after three requests in a row bring nothing new (a model stuck repeating).
- Tokens: the replies' ``usage`` is summed and goes to the run ledger.

The API token comes from the environment variable the config names, when the request is made;
it is never logged and never part of the lineage params.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, SourceError
from synth.backends import register
from synth.config import OpenAIBackend
from synth.samples import Candidate, GenerationJob, GenerationResult, LabelRequest, Usage

if TYPE_CHECKING:
    import httpx

SYSTEM_PROMPT = (
    "You write synthetic training examples for a text classifier. Reply with one JSON object"
    ' of the form {"samples": ["...", "..."]} and nothing else.'
)
_MAX_STALE = 3  # requests in a row that bring no new sample end a label
_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class _Malformed(Exception):
    """The endpoint answered 200 with something that is not the JSON we asked for."""


@register("openai")
class OpenAIChatGenerator:
    name = "openai"

    def __init__(
        self,
        config: OpenAIBackend,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self._sleep = sleep
        self._clock = clock
        self._next_start = 0.0

    def generate(self, job: GenerationJob) -> GenerationResult:
        import httpx

        usage = Usage()
        candidates: list[Candidate] = []
        headers = {"Content-Type": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        with httpx.Client(
            base_url=self.config.base_url.rstrip("/"),
            headers=headers,
            timeout=self.config.timeout_s,
        ) as client:
            for request in job.requests:
                candidates.extend(self._label(client, job, request, usage))
        return GenerationResult(candidates, usage)

    def _token(self) -> str | None:
        env = self.config.api_key_env
        if env is None:
            return None
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"synth backend openai: environment variable {env} is not set")
        return value

    def _label(
        self, client: httpx.Client, job: GenerationJob, request: LabelRequest, usage: Usage
    ) -> list[Candidate]:
        field = job.task.text_field
        assert field is not None
        exemplars = [str(job.seed.records[i][field]) for i in request.exemplars]
        seed_keys = tuple(sorted(job.seed.keys[i] for i in request.exemplars))
        others = sorted(set(job.context.centroids) - {request.label})
        seen = set(exemplars)
        result: list[Candidate] = []
        number = stale = 0
        # A model that keeps answering with what it already said will not stop by itself.
        while (
            len(result) < request.count
            and usage.requests < self.config.max_requests
            and stale < _MAX_STALE
        ):
            number += 1
            wanted = min(self.config.samples_per_request, request.count - len(result))
            body = self._body(request.label, exemplars, others, wanted)
            texts = self._call(client, body, usage)
            stale = 0 if set(texts) - seen else stale + 1
            for text in texts:
                if text not in seen and len(result) < request.count:
                    seen.add(text)
                    result.append(
                        Candidate(
                            record={field: text, job.task.label_field: request.label},
                            label=request.label,
                            seed_keys=seed_keys,
                            params={"request": number},
                        )
                    )
        return result

    def _body(self, label: str, exemplars: list[str], others: list[str], count: int) -> dict:
        shown = "\n".join(f"{i}. {text}" for i, text in enumerate(exemplars, 1))
        prompt = (
            f"Label: {label}\nReal examples of this label:\n{shown}\n\n"
            f"Write {count} new examples of the label {label!r}, in the same language, register"
            " and length as the examples, varied in wording and situation. Do not copy the"
            " examples. Do not include names, phone numbers, e-mail addresses, account or ID"
            " numbers or any other personal data."
        )
        if others:
            prompt += " The examples must not fit these other labels: " + ", ".join(others) + "."
        if self.config.instructions:
            prompt += "\n" + self.config.instructions
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": prompt},
            ],
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        if self.config.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _call(self, client: httpx.Client, body: dict, usage: Usage) -> list[str]:
        """One logical request with its retries; the sample texts, or [] when the replies
        stayed malformed."""
        import httpx

        wait = self.config.backoff_s
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                usage.retries += 1
            self._throttle()
            usage.requests += 1
            retry_after: float | None = None
            try:
                response = client.post("/chat/completions", json=body)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return self._parse(response, usage)
                    except _Malformed as exc:
                        usage.malformed += 1
                        problem = f"malformed reply: {exc}"
                elif response.status_code in _RETRY_STATUS:
                    problem = f"HTTP {response.status_code}"
                    retry_after = _retry_after(response)
                else:
                    raise SourceError(
                        f"synth backend openai: {self.config.base_url}: HTTP"
                        f" {response.status_code}: {response.text[:200]}",
                        stage="synth",
                    )
            if attempt == self.config.max_retries:
                if problem.startswith("malformed"):
                    return []
                raise SourceError(
                    f"synth backend openai: {self.config.base_url}: {problem} after"
                    f" {attempt + 1} attempts",
                    transient=True,
                    stage="synth",
                )
            self._sleep(retry_after if retry_after is not None else wait)
            wait *= 2
        return []

    def _throttle(self) -> None:
        now = self._clock()
        if now < self._next_start:
            self._sleep(self._next_start - now)
            now = self._next_start
        self._next_start = now + 60.0 / self.config.requests_per_minute

    @staticmethod
    def _parse(response: httpx.Response, usage: Usage) -> list[str]:
        try:
            payload = response.json()
        except ValueError as exc:
            raise _Malformed("the response body is not JSON") from exc
        if not isinstance(payload, dict):
            raise _Malformed("the response body is not an object")
        tokens = payload.get("usage") or {}
        if isinstance(tokens, dict):
            usage.prompt_tokens += int(tokens.get("prompt_tokens") or 0)
            usage.completion_tokens += int(tokens.get("completion_tokens") or 0)
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise _Malformed("no choices[0].message.content") from exc
        try:
            data = json.loads(_strip_fence(str(content)))
        except ValueError as exc:
            raise _Malformed("the message content is not JSON") from exc
        items = data.get("samples") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise _Malformed('no "samples" list in the message')
        texts = []
        for item in items:
            text = item.get("text") if isinstance(item, dict) else item
            if isinstance(text, str) and text.strip():
                texts.append(" ".join(text.split()))
        if not texts:
            raise _Malformed("no sample texts in the message")
        return texts


def _strip_fence(content: str) -> str:
    # Some servers wrap JSON in a Markdown code fence even in JSON mode.
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
