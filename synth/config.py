"""The synth config (the ``synth:`` section of ``pipeline.yaml``), validated at the edge.

A task names a curated dataset, the field that holds the text (text backends) or the columns
(``dp-tabular``), the label field, how many samples each label should have waiting or
approved, and the backend that makes them. Backends are a discriminated union on ``kind``,
so a typo in a backend option is refused with its line instead of being ignored.

    synth:
      tasks:
        - name: refund_intent
          dataset: support_tickets
          text_field: text
          label_field: intent
          labels: [refund_request]
          per_label: 40
          backend: {kind: substitute, seed: 7}
          review: {auto_approve: true, spot_check_rate: 0.1}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from pipelines.config_types import Identifier, StrictModel
from pipelines.errors import ConfigError
from privacy.policy import Budget


class ExemplarConfig(StrictModel):
    """Few-shot exemplars per label, chosen by maximal marginal relevance (MMR)."""

    k: int = Field(default=8, ge=1, le=64)
    # 1.0 = only closeness to the label centroid (typical, repetitive); 0.0 = only spread.
    diversity_lambda: float = Field(default=0.5, ge=0, le=1)


class SubstituteBackend(StrictModel):
    """Offline: slot/entity substitution, clause recombination and light edits."""

    kind: Literal["substitute"] = "substitute"
    seed: int = 0
    # Candidates drawn per sample wanted; the embedding guide keeps the best of them.
    oversample: int = Field(default=4, ge=1, le=20)
    # Faker locales for slot values: zh_CN for text with Han characters, en otherwise.
    locales: tuple[str, str] = ("zh_CN", "en_US")


class OpenAIBackend(StrictModel):
    """Any OpenAI-compatible chat-completions endpoint (vLLM, TGI, Ollama, OpenAI)."""

    kind: Literal["openai"] = "openai"
    base_url: str = Field(min_length=1, description="e.g. http://localhost:8000/v1")
    model: str = Field(min_length=1)
    # The token is read from this environment variable when the request is made, never
    # from the file; None for local servers that need no token.
    api_key_env: str | None = None
    temperature: float = Field(default=0.9, ge=0, le=2)
    max_tokens: int = Field(default=1024, ge=16, le=32768)
    samples_per_request: int = Field(default=8, ge=1, le=50)
    max_requests: int = Field(default=50, ge=1)
    max_retries: int = Field(default=4, ge=0, le=20)
    # First wait before a retry; doubles each time (a Retry-After header wins).
    backoff_s: float = Field(default=1.0, ge=0, le=60)
    requests_per_minute: float = Field(default=60, gt=0)
    timeout_s: float = Field(default=60, gt=0)
    # The endpoint's JSON mode; "none" for servers that refuse response_format.
    response_format: Literal["json_object", "none"] = "json_object"
    instructions: str | None = None


class TabularColumn(StrictModel):
    """One column of a structured record. Bounds and categories are public knowledge given
    here, not read from the data: taking them from the data would leak outside DP-SGD."""

    name: Identifier
    kind: Literal["numeric", "categorical"]
    min: float | None = None
    max: float | None = None
    bins: int = Field(default=16, ge=2, le=256)
    decimals: int = Field(default=0, ge=0, le=6)
    values: list[str] | None = None

    @model_validator(mode="after")
    def _domain(self) -> TabularColumn:
        if self.kind == "numeric":
            if self.min is None or self.max is None or not self.max > self.min:
                raise ValueError("a numeric column needs min < max")
        elif not self.values or len(set(self.values)) != len(self.values):
            raise ValueError("a categorical column needs distinct values")
        return self


class DpTabularBackend(StrictModel):
    """A small autoregressive model over structured records, trained with opacus DP-SGD."""

    kind: Literal["dp-tabular"] = "dp-tabular"
    columns: list[TabularColumn] = Field(min_length=1)
    budget: Budget
    # Cap on this training's epsilon (history included); None spends up to the budget.
    epsilon: float | None = Field(default=None, gt=0)
    epochs: int = Field(default=20, ge=1, le=1000)
    batch_size: int = Field(default=64, ge=2)
    learning_rate: float = Field(default=0.05, gt=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    hidden: int = Field(default=32, ge=4, le=1024)
    seed: int = 0


Backend = Annotated[
    SubstituteBackend | OpenAIBackend | DpTabularBackend, Field(discriminator="kind")
]
TEXT_BACKENDS = ("substitute", "openai")


class MemorisationConfig(StrictModel):
    """Drop samples too close to a real record."""

    max_cosine: float = Field(default=0.95, gt=0, le=1)
    # A shared run of this many tokens (words; Han characters count one each) with any real
    # text is a copy, whatever the embedding says.
    max_ngram: int = Field(default=8, ge=2)


class FilterConfig(StrictModel):
    rule_packs: list[str] = ["common"]
    # The entity and field name the packs' selectors know this text by (default: the task's
    # dataset and text field), so a new dataset can borrow an existing domain's rules.
    entity: Identifier | None = None
    field: Identifier | None = None
    pii_threshold: float = Field(default=0.5, gt=0, le=1)
    memorisation: MemorisationConfig = MemorisationConfig()
    dedup_cosine: float = Field(default=0.97, gt=0, le=1)
    # A sample whose nearest label centroid is another label: flagged for the reviewer, or
    # dropped outright.
    label_check: Literal["flag", "drop"] = "flag"


class ReviewConfig(StrictModel):
    """Human review. With auto-approval, unflagged samples are approved by ``auto`` except a
    spot-check share that stays pending for a person, so the auto-approver is audited."""

    auto_approve: bool = False
    spot_check_rate: float = Field(default=0.1, ge=0, le=1)


class SynthTask(StrictModel):
    name: Identifier
    dataset: Identifier
    text_field: Identifier | None = None
    label_field: Identifier
    key_field: Identifier = "_source_key"
    # Labels to augment; None: every label in the seed data.
    labels: list[str] | None = None
    # Samples wanted per label, pending or approved; a re-run only tops up the shortfall.
    per_label: int = Field(default=20, ge=1, le=100_000)
    exemplars: ExemplarConfig = ExemplarConfig()
    backend: Backend = SubstituteBackend()
    filters: FilterConfig = FilterConfig()
    review: ReviewConfig = ReviewConfig()

    @model_validator(mode="after")
    def _fields_fit_backend(self) -> SynthTask:
        if self.backend.kind in TEXT_BACKENDS and self.text_field is None:
            raise ValueError(f"backend {self.backend.kind} needs text_field")
        if isinstance(self.backend, DpTabularBackend):
            names = [c.name for c in self.backend.columns]
            if self.label_field not in names:
                raise ValueError("dp-tabular: label_field must be one of backend.columns")
            label = next(c for c in self.backend.columns if c.name == self.label_field)
            if label.kind != "categorical":
                raise ValueError("dp-tabular: the label column must be categorical")
        return self

    @property
    def entity(self) -> str:
        return self.filters.entity or self.dataset

    @property
    def is_text(self) -> bool:
        return self.backend.kind in TEXT_BACKENDS


class SynthConfig(StrictModel):
    """The ``synth:`` section."""

    tasks: list[SynthTask] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> SynthConfig:
        names = [t.name for t in self.tasks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"task names must be unique: {', '.join(duplicates)}")
        return self

    def task(self, name: str) -> SynthTask:
        for task in self.tasks:
            if task.name == name:
                return task
        known = ", ".join(t.name for t in self.tasks) or "none"
        raise ConfigError(f"no synth task {name!r} (configured: {known})")
