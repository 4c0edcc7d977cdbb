"""The cleaning stage of the transform chain: a rule set applied to an Arrow batch.

Pure Python over Arrow, so the same object runs inside Spark's ``mapInArrow`` and Flink's
Python operators. Only the columns the packs name for the batch's entity are converted to
Python values; every other column passes through as Arrow. The rows of a batch go through the
rule set together (:meth:`RuleSet.apply_columns`): each distinct value of a column is cleaned
once, and each rule runs over many values per regex call.

Extract rules write columns of their own: the stage adds each field an extract rule writes (a
string, null where nothing was found): those of its entity when it is built for one, else
those of every entity, so that the entities of one batch share a schema. A field the input
already has keeps its value where nothing was found.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from cleaning_rules.engine import RuleSet
from cleaning_rules.errors import STAGE
from pipelines.chain import StageResult, per_entity, rejected_table
from pipelines.errors import ConfigError

RULES_VERSION_FIELD = pa.field("_rules_version", pa.string())


class CleaningStage:
    """Applies the rule packs to each row's fields; drops and quarantines as rules say."""

    name = "cleaning"

    def __init__(self, ruleset: RuleSet, entity: str | None = None):
        self.ruleset = ruleset
        # The columns extract rules add: those of ``entity`` when the stage serves one entity's
        # chain, else those of every entity.
        self.extracted = ruleset.extracted_fields(entity)
        self.added_fields: Sequence[pa.Field] = (
            RULES_VERSION_FIELD,
            *(pa.field(name, pa.string()) for name in self.extracted),
        )

    def process(self, batch: pa.Table) -> StageResult:
        self._check_extracted_columns(batch.schema)
        if batch.num_rows == 0:
            empty = rejected_table(batch, [], [])
            return StageResult(self._with_added(batch, {}), empty, empty)
        return per_entity(batch, self._process_entity)

    def _check_extracted_columns(self, schema: pa.Schema) -> None:
        for name in self.extracted:
            if name in schema.names and not pa.types.is_string(schema.field(name).type):
                raise ConfigError(
                    f"an extract rule writes text into {name!r}, but the input's column "
                    f"{name!r} is {schema.field(name).type}; rename the rule's 'into'",
                    stage=STAGE,
                )

    def _process_entity(self, batch: pa.Table, entity: str) -> StageResult:
        fields = [f for f in batch.column_names if f in self.ruleset.fields_for(entity)]
        result = self.ruleset.apply_columns(
            entity, {f: batch[f].to_pylist() for f in fields}, batch.num_rows
        )
        columns = result.columns
        # An extracted field the input has keeps its value where nothing was found.
        extracted: dict[str, list[object]] = {}
        for name in self.extracted:
            found: list[object] = list(result.extracted.get(name) or [None] * batch.num_rows)
            if name in batch.column_names:
                found = [
                    given if value is None else value
                    for value, given in zip(found, batch[name].to_pylist(), strict=True)
                ]
            extracted[name] = found
        verdicts = result.verdicts
        rule_ids = [rule_id or "" for rule_id in result.rule_ids]
        reasons = [
            self._reason(reason, field)
            for reason, field in zip(result.reasons, result.fields, strict=True)
        ]
        cleaned = batch
        for f in fields:
            position = cleaned.schema.get_field_index(f)
            cleaned = cleaned.set_column(
                position, cleaned.schema.field(position), pa.array(columns[f], batch[f].type)
            )
        for name, values in extracted.items():
            if name in cleaned.column_names:
                position = cleaned.schema.get_field_index(name)
                cleaned = cleaned.set_column(
                    position, cleaned.schema.field(position), pa.array(values, pa.string())
                )
        outcome = pa.array(verdicts, pa.string())
        keep = pc.equal(outcome, "keep")
        added = {
            name: pa.array(values, pa.string()).filter(keep)
            for name, values in extracted.items()
            if name not in batch.column_names
        }
        return StageResult(
            self._with_added(cleaned.filter(keep), added),
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

    def _with_added(self, rows: pa.Table, extracted: dict[str, pa.Array]) -> pa.Table:
        """``rows`` with the columns the stage adds: the rules version, then each extracted
        field the input lacks (``extracted``: its values; absent: nulls)."""
        rows = rows.append_column(
            RULES_VERSION_FIELD, pa.array([self.ruleset.version] * rows.num_rows, pa.string())
        )
        for name in self.extracted:
            if name not in rows.column_names:
                values = extracted.get(name)
                rows = rows.append_column(
                    pa.field(name, pa.string()),
                    pa.nulls(rows.num_rows, pa.string()) if values is None else values,
                )
        return rows
