"""Preview packs on real data before they ship: what would change, be dropped, be quarantined.

``steward rules preview`` reads a Parquet or JSON Lines file, runs the packs over it as a
pipeline run would (:meth:`RuleSet.apply_batch`, batch by batch) and keeps the counts per rule
and the first rows of each kind, each with where it came from (``file:line`` for JSON Lines,
``file row N`` for Parquet), so a steward sees a rule's effect on real values, and its
mistakes, before a run writes anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cleaning_rules.engine import RecordResult, RuleSet
from pipelines.errors import ConfigError, SourceError

BATCH_ROWS = 10_000
ENTITY_COLUMN = "_entity"
FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}

Located = tuple[str, dict[str, object]]  # (where the row is, the row)


@dataclass(frozen=True)
class FieldChange:
    """One value a rule set changes: the field, the value before, the value after."""

    field: str
    before: str
    after: str


@dataclass(frozen=True)
class ChangedRow:
    """A kept row with at least one changed value, and the rules that changed it."""

    where: str
    fired: tuple[str, ...]
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class RejectedRow:
    """A row a rule drops or quarantines: which rule, why, on which field and value."""

    where: str
    verdict: str
    rule_id: str
    reason: str
    field: str
    value: object


@dataclass
class RuleCounts:
    """Per rule: rows whose values it changed (kept rows), rows it dropped, quarantined."""

    changed: int = 0
    dropped: int = 0
    quarantined: int = 0


@dataclass
class Preview:
    """The effect of a rule set on one input file (counts over all rows, the first ``n``
    rows of each kind)."""

    path: Path
    packs: list[str]
    n: int
    rows: int = 0
    changed_rows: int = 0
    changed_fields: int = 0
    rules: dict[str, RuleCounts] = field(default_factory=dict)
    changed: list[ChangedRow] = field(default_factory=list)
    dropped: list[RejectedRow] = field(default_factory=list)
    quarantined: list[RejectedRow] = field(default_factory=list)
    entities: dict[str, int] = field(default_factory=dict)

    @property
    def dropped_rows(self) -> int:
        return sum(counts.dropped for counts in self.rules.values())

    @property
    def quarantined_rows(self) -> int:
        return sum(counts.quarantined for counts in self.rules.values())

    def add(self, where: str, record: Mapping[str, object], result: RecordResult) -> None:
        """Count one row's result and keep it if fewer than ``n`` of its kind are kept."""
        self.rows += 1
        if result.verdict != "keep":
            assert result.rule_id is not None  # a rule decided
            counts = self.rules.setdefault(result.rule_id, RuleCounts())
            kept = self.dropped if result.verdict == "drop" else self.quarantined
            if result.verdict == "drop":
                counts.dropped += 1
            else:
                counts.quarantined += 1
            if len(kept) < self.n:
                name = result.field or ""
                kept.append(
                    RejectedRow(
                        where,
                        result.verdict,
                        result.rule_id,
                        result.reason or "",
                        name,
                        record.get(name),
                    )
                )
            return
        # Cleaned fields that changed, and fields an extract rule wrote (absent before).
        changes = tuple(
            FieldChange(name, "" if before is None else str(before), str(value))
            for name, value in result.record.items()
            if value != (before := record.get(name))
        )
        if not changes:
            return
        self.changed_rows += 1
        self.changed_fields += len(changes)
        for rule_id in result.fired:
            self.rules.setdefault(rule_id, RuleCounts()).changed += 1
        if len(self.changed) < self.n:
            self.changed.append(ChangedRow(where, result.fired, changes))

    def as_json(self) -> dict[str, object]:
        return {
            "input": str(self.path),
            "packs": self.packs,
            "entities": self.entities,
            "rows": self.rows,
            "changed_rows": self.changed_rows,
            "changed_fields": self.changed_fields,
            "dropped_rows": self.dropped_rows,
            "quarantined_rows": self.quarantined_rows,
            "rules": {rule_id: vars(counts) for rule_id, counts in sorted(self.rules.items())},
            "changed": [
                {
                    "where": row.where,
                    "fired": list(row.fired),
                    "changes": [vars(c) for c in row.changes],
                }
                for row in self.changed
            ],
            "dropped": [vars(row) for row in self.dropped],
            "quarantined": [vars(row) for row in self.quarantined],
        }


def preview(
    ruleset: RuleSet,
    path: Path,
    *,
    entity: str | None = None,
    fields: Sequence[str] = (),
    n: int = 20,
) -> Preview:
    """Run ``ruleset`` over the rows of ``path`` (Parquet or JSON Lines) and collect a
    :class:`Preview`. Rows belong to ``entity``, else to their ``_entity`` value. With
    ``fields``, only those fields are cleaned (and can decide a row's fate).

    A missing or unreadable file, a malformed JSON line or a field the input lacks raises
    :class:`~pipelines.errors.SourceError`; a field the packs do not clean, or rows without
    an entity, :class:`~pipelines.errors.ConfigError`. Each names the file (and the line).
    """
    result = Preview(path, ruleset.pack_names, n)
    seen_fields: set[str] = set()
    for batch in read_rows(path, columns_needed=fields):
        groups: dict[str, list[Located]] = {}
        for where, record in batch:
            seen_fields.update(record)
            groups.setdefault(_entity_of(where, record, entity), []).append((where, record))
        for name, rows in groups.items():
            _check_fields(ruleset, path, name, fields)
            result.entities[name] = result.entities.get(name, 0) + len(rows)
            records = [_project(record, fields) for _, record in rows]
            for (where, _), record, outcome in zip(
                rows, records, ruleset.apply_batch(name, records), strict=True
            ):
                result.add(where, record, outcome)
    missing = [name for name in fields if name not in seen_fields]
    if missing and result.rows:
        raise SourceError(f"{path}: no row has field {', '.join(map(repr, missing))}")
    return result


def read_rows(path: Path, *, columns_needed: Sequence[str] = ()) -> Iterator[list[Located]]:
    """The rows of ``path`` in batches, each row with where it is (``file:line`` for JSON
    Lines, ``file row N`` for Parquet, both counted from 1)."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(FORMATS))
        raise SourceError(f"{path}: unknown input format {path.suffix!r} (use {known})")
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    if kind == "parquet":
        return _parquet_rows(path, columns_needed)
    return _jsonl_rows(path)


def _parquet_rows(path: Path, columns_needed: Sequence[str]) -> Iterator[list[Located]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc
    names = parquet.schema_arrow.names
    missing = [name for name in columns_needed if name not in names]
    if missing:
        raise SourceError(
            f"{path}: no column {', '.join(map(repr, missing))} (columns: {', '.join(names)})"
        )

    def rows() -> Iterator[list[Located]]:
        number = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            located = []
            for record in batch.to_pylist():
                number += 1
                located.append((f"{path} row {number}", record))
            yield located

    return rows()


def _jsonl_rows(path: Path) -> Iterator[list[Located]]:
    batch: list[Located] = []
    with path.open(encoding="utf-8") as lines:
        try:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(
                        f"{where}: not valid JSON ({exc.msg}, column {exc.colno})"
                    ) from exc
                if not isinstance(record, dict):
                    raise SourceError(
                        f"{where}: a row must be a JSON object, not {type(record).__name__}"
                    )
                batch.append((where, record))
                if len(batch) == BATCH_ROWS:
                    yield batch
                    batch = []
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if batch:
        yield batch


def _entity_of(where: str, record: Mapping[str, object], entity: str | None) -> str:
    if entity is not None:
        return entity
    found = record.get(ENTITY_COLUMN)
    if not isinstance(found, str) or not found:
        raise ConfigError(f"{where}: no {ENTITY_COLUMN} value; name the entity with --entity")
    return found


def _check_fields(ruleset: RuleSet, path: Path, entity: str, fields: Sequence[str]) -> None:
    cleaned = ruleset.fields_for(entity)
    if not cleaned:
        raise ConfigError(
            f"{path}: packs {', '.join(ruleset.pack_names)} clean no field of entity {entity!r}"
        )
    unknown = [name for name in fields if name not in cleaned]
    if unknown:
        raise ConfigError(
            f"{path}: packs {', '.join(ruleset.pack_names)} do not clean field "
            f"{', '.join(map(repr, unknown))} of entity {entity!r} "
            f"(they clean: {', '.join(sorted(cleaned))})"
        )


def _project(record: dict[str, object], fields: Sequence[str]) -> dict[str, object]:
    return {name: record[name] for name in fields if name in record} if fields else record
