"""Generator backends, chosen by the ``kind`` a task's ``backend:`` names.

Each backend is a class registered under its config kind; a backend takes its validated
config and turns a ``GenerationJob`` (all labels of one task at once, so a model-training
backend trains once) into candidates. The modules import their heavy dependencies (httpx,
torch, faker) inside their methods, so importing the registry is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from synth.samples import GenerationJob, GenerationResult


class Generator(Protocol):
    name: str

    def generate(self, job: GenerationJob) -> GenerationResult: ...


BACKENDS: dict[str, Callable[[Any], Generator]] = {}


def register(kind: str) -> Callable[[type[Any]], type[Any]]:
    def decorate(cls: type[Any]) -> type[Any]:
        BACKENDS[kind] = cls
        return cls

    return decorate


def backend_for(config: Any) -> Generator:
    """The backend for a task's ``backend`` config (a pydantic model with ``kind``)."""
    # The modules register themselves on import.
    from synth.backends import dp_tabular, openai_chat, substitute  # noqa: F401

    return BACKENDS[config.kind](config)
