"""The cleaning stage of the transform chain: a rule set applied to an Arrow batch.

Pure Python over Arrow, so the same object runs inside Spark's ``mapInArrow`` and Flink's
Python operators. Only the columns the packs name for the batch's entity are converted to
Python values; every other column passes through as Arrow. The rows of a batch go through the
rule set together (:meth:`RuleSet.apply_batch`): each distinct value of a column is cleaned
once, and each rule runs over many values per regex call.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from cleaning_rules.engine import RuleSet
from pipelines.chain import StageResult, per_entity, rejected_table

RULES_VERSION_FIELD = pa.field("_rules_version", pa.string())


class CleaningStage:
    """Applies the rule packs to each row's fields; drops and quarantines as rules say."""

    name = "cleaning"
    added_fields: Sequence[pa.Field] = (RULES_VERSION_FIELD,)

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset

    def process(self, batch: pa.Table) -> StageResult:
        if batch.num_rows == 0:
            empty = rejected_table(batch, [], [])
            return StageResult(self._with_version(batch), empty, empty)
        return per_entity(batch, self._process_entity)

    def _process_entity(self, batch: pa.Table, entity: str) -> StageResult:
        fields = [f for f in batch.column_names if f in self.ruleset.fields_for(entity)]
        columns = {f: batch[f].to_pylist() for f in fields}
        records: list[dict[str, object]] = [{} for _ in range(batch.num_rows)]
        for f in fields:
            for record, value in zip(records, columns[f], strict=True):
                record[f] = value
        verdicts: list[str] = []
        rule_ids: list[str] = []
        reasons: list[str] = []
        for i, result in enumerate(self.ruleset.apply_batch(entity, records)):
            verdicts.append(result.verdict)
            rule_ids.append(result.rule_id or "")
            reasons.append(self._reason(result.reason, result.field))
            if result.verdict == "keep":
                for f in fields:
                    columns[f][i] = result.record[f]
        cleaned = batch
        for f in fields:
            position = cleaned.schema.get_field_index(f)
            cleaned = cleaned.set_column(
                position, cleaned.schema.field(position), pa.array(columns[f], batch[f].type)
            )
        outcome = pa.array(verdicts, pa.string())
        return StageResult(
            self._with_version(cleaned.filter(pc.equal(outcome, "keep"))),
            self._rejected(batch, outcome, "quarantine", rule_ids, reasons),
            self._rejected(batch, outcome, "drop", rule_ids, reasons),
        )

    @staticmethod
    def _reason(reason: str | None, field: str | None) -> str:
        if reason is None:
            return ""
        return f"{field}: {reason}" if field else reason

    @staticmethod
    def _rejected(
        batch: pa.Table, outcome: pa.Array, verdict: str, rule_ids: list[str], reasons: list[str]
    ) -> pa.Table:
        """The rows with ``verdict`` as they came in (a replay after a fix starts from them)."""
        mask = pc.equal(outcome, verdict)
        picked = [i for i, hit in enumerate(mask.to_pylist()) if hit]
        return rejected_table(
            batch.filter(mask), [rule_ids[i] for i in picked], [reasons[i] for i in picked]
        )

    def _with_version(self, rows: pa.Table) -> pa.Table:
        return rows.append_column(
            RULES_VERSION_FIELD, pa.array([self.ruleset.version] * rows.num_rows, pa.string())
        )
