"""The treatment policy of one dataset (a YAML file), validated once at the edge.

```yaml
version: "3"
dataset: customers
key: {env: STEWARD_PSEUDONYM_KEY}     # or {file: /run/secrets/pseudonym.key}
types:                                # what to do with PII found in free text
  CN_MOBILE: redact
  BANK_CARD: {action: mask, keep_last: 4}
  EMAIL: pseudonymize
default_action: redact                # detected types not listed above
fields:                               # column-level declarations, applied regardless of pattern
  phone: {type: CN_MOBILE}            # "this column is a phone number": types.CN_MOBILE applies
  customer_id: {action: pseudonymize, domain: customer}
  birth_date: {action: generalize, to: year}
  salary: {action: noise, mechanism: laplace, epsilon: 1.0, lower: 0, upper: 200000}
budget: {privacy_unit: customer_id, epsilon: 3.0, delta: 1.0e-6, accountant: rdp}
```

Columns not named under ``fields`` (and not lineage columns, which start with ``_``) are
scanned for PII when they hold strings, unless ``scan_fields`` lists the ones to scan: the
default fails closed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    model_validator,
)

from pipelines.config_types import StrictModel
from pipelines.yaml_models import load_yaml_model
from privacy.entities import ENTITY_REGISTRY
from privacy.generalize import GENERALIZERS
from privacy.keys import PseudonymKey


def _entity_name(value: str) -> str:
    if value not in ENTITY_REGISTRY:
        raise ValueError(f"unknown PII type {value!r}; known: {', '.join(ENTITY_REGISTRY)}")
    return value


EntityName = Annotated[str, AfterValidator(_entity_name)]


class KeySource(StrictModel):
    """Where the pseudonymisation key lives: an environment variable or a file."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> KeySource:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def load(self) -> PseudonymKey:
        if self.env is not None:
            return PseudonymKey.from_env(self.env)
        assert self.file is not None
        return PseudonymKey.from_file(self.file)


class Redact(StrictModel):
    """Replace with ``<TYPE>`` (or ``<FIELD>`` for an undeclared field)."""

    action: Literal["redact"]


class Mask(StrictModel):
    """Keep the last ``keep_last`` characters, replace the rest with ``char``."""

    action: Literal["mask"]
    keep_last: int = Field(default=4, ge=0, le=8)
    char: str = Field(default="*", min_length=1, max_length=1)


class Pseudonymize(StrictModel):
    """Keyed HMAC token. Values in one ``domain`` join; default domain is the PII type."""

    action: Literal["pseudonymize"]
    domain: str | None = None


class Drop(StrictModel):
    """Remove the value: a span is cut from the text, a field becomes null."""

    action: Literal["drop"]


class Quarantine(StrictModel):
    """Send the whole row to quarantine (with the type and field, never the value)."""

    action: Literal["quarantine"]


class Keep(StrictModel):
    """Leave as is: an explicit, reviewable decision (e.g. server IPs in logs)."""

    action: Literal["keep"]


class Generalize(StrictModel):
    """Coarsen a field: birth date → year, age → band, address → city."""

    action: Literal["generalize"]
    to: str
    width: int = Field(default=10, ge=1, description="band width for to: band")

    @model_validator(mode="after")
    def _known(self) -> Generalize:
        if self.to not in GENERALIZERS:
            raise ValueError(
                f"unknown generalization {self.to!r}; known: {', '.join(GENERALIZERS)}"
            )
        return self


class Noise(StrictModel):
    """Differentially private noise on a numeric field, after clipping to [lower, upper].

    Each row's value is released once with ``epsilon`` (Laplace) or (``epsilon``,
    ``delta``) (Gaussian); the guarantee is per row, so it is per privacy unit when each
    unit has one row (the clean zone keeps one row per source key).
    """

    action: Literal["noise"]
    mechanism: Literal["laplace", "gaussian"]
    epsilon: float = Field(gt=0, le=50)
    delta: float | None = Field(default=None, gt=0, lt=1)
    lower: float
    upper: float

    @model_validator(mode="after")
    def _consistent(self) -> Noise:
        if self.upper <= self.lower:
            raise ValueError("upper must be greater than lower")
        if (self.mechanism == "gaussian") != (self.delta is not None):
            raise ValueError("delta is required for gaussian and not allowed for laplace")
        return self


def _shorthand(value: Any) -> Any:
    # "redact" is short for {action: redact}; a field given only {type: X} is declared.
    if isinstance(value, str):
        return {"action": value}
    if isinstance(value, dict) and "action" not in value:
        return {**value, "action": "declared"}
    return value


SpanTreatment = Annotated[
    Redact | Mask | Pseudonymize | Drop | Quarantine | Keep,
    Field(discriminator="action"),
    BeforeValidator(_shorthand),
]


class Declared(StrictModel):
    """A field declared to hold a PII type: the type's treatment applies to the whole value."""

    action: Literal["declared"]
    type: EntityName


class _Typed(StrictModel):
    # A field may name its type and still choose its own treatment.
    type: EntityName | None = None


class TypedRedact(Redact, _Typed): ...


class TypedMask(Mask, _Typed): ...


class TypedPseudonymize(Pseudonymize, _Typed): ...


FieldTreatment = Annotated[
    Declared
    | TypedRedact
    | TypedMask
    | TypedPseudonymize
    | Drop
    | Quarantine
    | Keep
    | Generalize
    | Noise,
    Field(discriminator="action"),
    BeforeValidator(_shorthand),
]

Accountant = Literal["rdp", "prv"]


class Budget(StrictModel):
    """The privacy budget of one dataset for one privacy unit (e.g. per customer)."""

    privacy_unit: str
    epsilon: float = Field(gt=0, le=100)
    delta: float = Field(gt=0, lt=1e-2)
    accountant: Accountant = "rdp"


class PrivacyPolicy(StrictModel):
    """One dataset's treatment policy (see the module docstring for the YAML shape)."""

    version: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    key: KeySource | None = None
    threshold: float = Field(default=0.5, gt=0, le=1)
    types: dict[EntityName, SpanTreatment] = {}
    default_action: SpanTreatment = Redact(action="redact")
    fields: dict[str, FieldTreatment] = {}
    scan_fields: list[str] | None = None
    budget: Budget | None = None

    @model_validator(mode="after")
    def _key_when_needed(self) -> PrivacyPolicy:
        if self.needs_key and self.key is None:
            raise ValueError("pseudonymize is used, so key (env or file) is required")
        overlap = sorted(set(self.scan_fields or ()) & set(self.fields))
        if overlap:
            raise ValueError(f"fields both declared and scanned: {', '.join(overlap)}")
        return self

    @property
    def needs_key(self) -> bool:
        treatments = [
            *self.types.values(),
            self.default_action,
            *(self.field_treatment(name) for name in self.fields),
        ]
        return any(isinstance(t, Pseudonymize) for t in treatments)

    def span_treatment(self, entity: str) -> SpanTreatmentModel:
        """What to do with a detected ``entity`` in free text."""
        return self.types.get(entity, self.default_action)

    def field_treatment(self, field: str) -> FieldTreatmentModel:
        """The treatment of a declared field, resolving ``{type: X}`` through ``types``."""
        treatment = self.fields[field]
        if isinstance(treatment, Declared):
            return self.span_treatment(treatment.type)
        return treatment

    def field_type(self, field: str) -> str | None:
        """The PII type a field is declared to hold, if any."""
        treatment = self.fields[field]
        return getattr(treatment, "type", None)

    @property
    def fingerprint(self) -> str:
        """Hash of the validated policy: any edit changes it, even without a version bump."""
        canonical = self.model_dump_json(exclude_none=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    @property
    def version_tag(self) -> str:
        """What ``_privacy_policy_version`` holds: declared version and content hash."""
        return f"{self.version}+{self.fingerprint}"


SpanTreatmentModel = Redact | Mask | Pseudonymize | Drop | Quarantine | Keep
FieldTreatmentModel = SpanTreatmentModel | Generalize | Noise


def load_policy(path: Path) -> PrivacyPolicy:
    """Load and validate a policy YAML; errors name ``file:line: field: message``.

    A relative key file is anchored at the policy's folder, so a policy runs from anywhere.
    """
    policy = load_yaml_model(path, PrivacyPolicy)
    if policy.key is not None and policy.key.file is not None and not policy.key.file.is_absolute():
        anchored = (path.resolve().parent / policy.key.file).resolve()
        policy = policy.model_copy(update={"key": KeySource(file=anchored)})
    return policy
