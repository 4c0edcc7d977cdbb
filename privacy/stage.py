"""The privacy stage of the transform chain: detect PII, treat it, stamp the policy version.

Pure Python over Arrow (``pipelines/chain.py``'s ``Stage``): Spark and Flink run it as is.
Declared fields get their treatment whatever they contain; other string columns are scanned
and each finding is treated by its type. A row with a finding (or a declared field) whose
treatment is ``quarantine`` leaves the batch untreated, with ``privacy.<TYPE>`` as rule and
the field and offsets (never the value) as reason. Kept rows carry
``_privacy_policy_version``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from pipelines.chain import StageResult, rejected_table
from pipelines.errors import ConfigError
from privacy.accounting import GaussianMechanism, LaplaceMechanism
from privacy.detect import Detector, Finding
from privacy.keys import PseudonymKey
from privacy.policy import PrivacyPolicy
from privacy.treat import Treatment, TreatmentContext, build_treatment

POLICY_VERSION_FIELD = pa.field("_privacy_policy_version", pa.string())


class PrivacyStage:
    """Apply one dataset's ``PrivacyPolicy`` to Arrow batches.

    The key is loaded from the policy's key source when the policy pseudonymises (and the
    stage refuses to start without it); pass ``key`` to supply it another way. ``rng`` is for
    tests: production noise draws fresh OS entropy.
    """

    name = "privacy"
    added_fields: Sequence[pa.Field] = (POLICY_VERSION_FIELD,)

    def __init__(
        self,
        policy: PrivacyPolicy,
        *,
        key: PseudonymKey | None = None,
        rng: np.random.Generator | None = None,
    ):
        self.policy = policy
        if key is None and policy.needs_key and policy.key is not None:
            key = policy.key.load()
        accountant = policy.budget.accountant if policy.budget is not None else "rdp"
        context = TreatmentContext(key=key, rng=rng, accountant=accountant)
        self.key_id = key.key_id if key is not None else None
        self.version = policy.version_tag
        self.detector = Detector(threshold=policy.threshold)
        self._span: dict[str, Treatment] = {
            entity: build_treatment(policy.span_treatment(entity), context)
            for entity in self.detector.types
        }
        self._fields: dict[str, Treatment] = {
            field: build_treatment(policy.field_treatment(field), context)
            for field in policy.fields
        }

    def mechanisms(self) -> list[LaplaceMechanism | GaussianMechanism]:
        """What one release of data treated by this stage charges to the privacy budget."""
        return [m for t in self._fields.values() for m in t.mechanisms()]

    def scanned_fields(self, schema: pa.Schema) -> list[str]:
        """The columns scanned for PII: listed ones, or every undeclared string column."""
        if self.policy.scan_fields is not None:
            missing = sorted(set(self.policy.scan_fields) - set(schema.names))
            if missing:
                raise ConfigError(
                    f"policy {self.policy.dataset}: scan_fields not in the batch: "
                    + ", ".join(missing)
                )
            return list(self.policy.scan_fields)
        return [
            f.name
            for f in schema
            if not f.name.startswith("_")
            and f.name not in self.policy.fields
            and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
        ]

    def process(self, batch: pa.Table) -> StageResult:
        n = batch.num_rows
        reasons: list[tuple[str, str] | None] = [None] * n
        columns = {name: batch.column(name) for name in batch.column_names}
        for field, treatment in self._fields.items():
            if field in columns:
                columns[field] = self._treat_field(field, batch, treatment, reasons)
        for field in self.scanned_fields(batch.schema):
            columns[field] = self._treat_text(field, batch.column(field), reasons)

        keep_mask = pa.array([r is None for r in reasons], pa.bool_())
        treated = pa.Table.from_arrays(list(columns.values()), schema=batch.schema)
        kept = treated.filter(keep_mask)
        kept = kept.append_column(
            POLICY_VERSION_FIELD, pa.array([self.version] * kept.num_rows, pa.string())
        )
        # Quarantined rows are the rows as they came in: a reviewer needs the original, and
        # the quarantine zone is as closed as the raw zone it mirrors.
        flagged = [r for r in reasons if r is not None]
        quarantined = rejected_table(
            batch.filter(pa.compute.invert(keep_mask)),
            [rule for rule, _ in flagged],
            [reason for _, reason in flagged],
        )
        return StageResult(kept, quarantined, batch.slice(0, 0))

    def _treat_field(
        self,
        field: str,
        batch: pa.Table,
        treatment: Treatment,
        reasons: list[tuple[str, str] | None],
    ) -> pa.ChunkedArray:
        column = batch.column(field)
        is_string = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        if treatment.string_only and not is_string:
            raise ConfigError(
                f"policy {self.policy.dataset}: field {field} is {column.type}; "
                f"{type(treatment).__name__.lower()} needs a string column"
            )
        entity = self.policy.field_type(field)
        values = column.to_pylist()
        if treatment.quarantines:
            rule = f"privacy.{entity or 'field'}"
            for i, value in enumerate(values):
                if value is not None and reasons[i] is None:
                    reasons[i] = (rule, f"{field}: declared {entity or 'sensitive'} field")
        return pa.chunked_array([pa.array(treatment.column(values, entity, field), column.type)])

    def _treat_text(
        self, field: str, column: pa.ChunkedArray, reasons: list[tuple[str, str] | None]
    ) -> pa.ChunkedArray:
        values = column.to_pylist()
        found = self.detector.scan_many(values)
        out: list[str | None] = []
        for i, (text, findings) in enumerate(zip(values, found, strict=True)):
            if not findings:
                out.append(text)
                continue
            for f in findings:
                if self._span[f.type].quarantines and reasons[i] is None:
                    reasons[i] = (f"privacy.{f.type}", f"{field}[{f.start}:{f.end}]: {f.type}")
            out.append(self._rewrite(text, findings))
        return pa.chunked_array([pa.array(out, column.type)])

    def _rewrite(self, text: str, findings: Sequence[Finding]) -> str:
        parts = []
        cursor = 0
        for f in findings:
            parts.append(text[cursor : f.start])
            replacement = self._span[f.type].span(text[f.start : f.end], f.type)
            parts.append(replacement or "")
            cursor = f.end
        parts.append(text[cursor:])
        return "".join(parts)
