"""Load curated rows into the knowledge base incrementally: embed only what changed.

For every row and configured field the loader builds the chunk points (deterministic ids,
``chunk_hash`` of model and text, ``payload_hash`` of the whole payload) and compares them
with what the store holds for the same ids:

* a new id, or a known id whose ``chunk_hash`` differs, is embedded and upserted;
* a known id with the same ``chunk_hash`` but another ``payload_hash`` (new lineage, changed
  access tags) gets its payload rewritten, keeping its vector: no embedding;
* anything else is left alone, so a re-load with no changes embeds and writes nothing;
* stored points of the dataset that no current chunk produced (deleted rows, rows whose text
  shrank to fewer chunks, emptied fields) are deleted.

The store is the state: no side file can disagree with it, and a load that crashed half way
converges on the next run (upserts by id are idempotent). ``sync(..., complete=False)`` is for
micro-batches (the stream job): only the source keys in the batch are reconciled, since the
rows not in a micro-batch are not deleted rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from index.chunk import chunk_texts
from index.config import ConstantTag, KnowledgeBaseConfig
from index.embed import Embedder
from index.points import (
    DATASET_PATH,
    SOURCE_KEY_PATH,
    ChunkPoint,
    access_path,
    chunk_point,
)
from index.source import lineage_columns, read_dataset
from index.stores.base import Match, StoredPoint, VectorStore
from pipelines.errors import LakeError

if TYPE_CHECKING:
    import pyarrow as pa

    from pipelines.lake import Lake


@dataclass
class LoadReport:
    """What one load of one dataset did."""

    dataset: str
    table: str | None = None
    snapshot_id: int | None = None
    rows: int = 0
    chunks: int = 0
    embedded: int = 0  # texts sent to the model (identical chunk texts are embedded once)
    upserted: int = 0  # points written with a new vector
    payload_updated: int = 0  # points whose payload was rewritten, vector kept
    unchanged: int = 0
    deleted: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def add_time(self, phase: str, started: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        return data


class KnowledgeBaseLoader:
    """Chunks, embeds and writes the datasets of one ``KnowledgeBaseConfig``."""

    def __init__(self, config: KnowledgeBaseConfig, embedder: Embedder, store: VectorStore):
        self.config = config
        self.embedder = embedder
        self.store = store
        self._prepared = False

    def keyword_fields(self) -> list[str]:
        """Payload paths every query filters on: indexed when the collection is created."""
        return [DATASET_PATH, SOURCE_KEY_PATH, *(access_path(t) for t in self.config.access.tags)]

    def prepare(self) -> None:
        if not self._prepared:
            self.store.create_if_missing(self.embedder.dimension, self.keyword_fields())
            self._prepared = True

    # -- entry points ----------------------------------------------------------------------

    def load_lake(self, lake: Lake, datasets: Sequence[str] | None = None) -> list[LoadReport]:
        """Bring every (or each named) dataset in line with its current curated snapshot."""
        names = list(datasets) if datasets else list(self.config.datasets)
        if unknown := [n for n in names if n not in self.config.datasets]:
            from pipelines.errors import ConfigError

            raise ConfigError(
                f"kb: no dataset {', '.join(unknown)} in kb.datasets"
                f" (configured: {', '.join(self.config.datasets)})"
            )
        reports = []
        for name in names:
            snapshot = read_dataset(lake, self.config, name)
            report = self.sync(name, snapshot.batches, complete=True)
            report.table, report.snapshot_id = snapshot.table, snapshot.snapshot_id
            reports.append(report)
        return reports

    def sync(
        self,
        dataset: str,
        batches: Iterable[pa.RecordBatch | pa.Table],
        *,
        complete: bool = True,
    ) -> LoadReport:
        """Reconcile the store with ``batches`` of ``dataset``'s rows.

        ``complete``: the batches are the whole dataset, so stored points of rows absent from
        them are deleted. Otherwise only the source keys present in the batches are touched.
        """
        self.prepare()
        report = LoadReport(dataset)
        started = time.perf_counter()
        known: dict[str, StoredPoint] = {}
        if complete:
            known = {p.id: p for p in self.store.stored([Match(DATASET_PATH, (dataset,))])}
        report.add_time("state", started)
        seen_ids: set[str] = set()
        seen_keys: set[str] = set()
        started = time.perf_counter()
        for batch in batches:
            report.add_time("read", started)
            points, batch_keys = self._points(dataset, batch, seen_keys, report)
            if not complete:
                # Keys without chunks count too: a row whose text was emptied loses its points.
                known = self._known_for(dataset, batch_keys)
            self._apply(points, known, report)
            if not complete:
                batch_ids = {p.id for p in points}
                self._delete([i for i in known if i not in batch_ids], report)
            seen_ids.update(p.id for p in points)
            started = time.perf_counter()
        report.add_time("read", started)
        if complete:
            self._delete([i for i in known if i not in seen_ids], report)
        started = time.perf_counter()
        if report.upserted or report.payload_updated or report.deleted:
            self.store.finish()
        report.add_time("write", started)
        return report

    def delete_rows(self, dataset: str, source_keys: Iterable[str]) -> int:
        """Remove every point of these rows (rows deleted upstream, seen by a stream)."""
        self.prepare()
        ids = [p.id for p in self.store.stored(self._key_conditions(dataset, set(source_keys)))]
        if ids:
            self.store.delete(ids)
            self.store.finish()
        return len(ids)

    # -- steps -----------------------------------------------------------------------------

    @staticmethod
    def _key_conditions(dataset: str, keys: set[str]) -> list[Match]:
        return [Match(DATASET_PATH, (dataset,)), Match(SOURCE_KEY_PATH, tuple(sorted(keys)))]

    def _known_for(self, dataset: str, keys: set[str]) -> dict[str, StoredPoint]:
        if not keys:
            return {}
        return {p.id: p for p in self.store.stored(self._key_conditions(dataset, keys))}

    def _points(
        self,
        dataset: str,
        batch: pa.RecordBatch | pa.Table,
        seen_keys: set[str],
        report: LoadReport,
    ) -> tuple[list[ChunkPoint], set[str]]:
        """Every chunk point of the rows in ``batch``, and the rows' source keys."""
        started = time.perf_counter()
        spec = self.config.datasets[dataset]
        names = list(batch.schema.names)
        lineage = {c: batch.column(c).to_pylist() for c in lineage_columns(names)}
        if "_source_key" not in lineage:
            raise LakeError(f"dataset {dataset}: rows have no _source_key column", stage="kb")
        keys = lineage["_source_key"]
        batch_keys = self._check_keys(dataset, keys, seen_keys)
        rows = batch.num_rows
        access = {
            tag: [source.value] * rows
            if isinstance(source, ConstantTag)
            else batch.column(source).to_pylist()
            for tag, source in spec.access.items()
        }
        points: list[ChunkPoint] = []
        for field_name in spec.fields:
            values = batch.column(field_name).to_pylist()
            texts = {
                i: v if isinstance(v, str) else str(v)
                for i, v in enumerate(values)
                if v is not None
            }
            texts = {i: t for i, t in texts.items() if t.strip()}
            bounds = self.config.chunking_for(dataset, field_name)
            max_tokens = min(
                bounds.max_tokens or self.embedder.max_tokens, self.embedder.max_tokens
            )
            chunked = chunk_texts(
                list(texts.values()), self.embedder, max_tokens, bounds.overlap_tokens or 0
            )
            for row, chunks in zip(texts, chunked, strict=True):
                row_lineage = {c: values_[row] for c, values_ in lineage.items()}
                row_access = {tag: values_[row] for tag, values_ in access.items()}
                points.extend(
                    chunk_point(
                        dataset=dataset,
                        field=field_name,
                        chunk=chunk,
                        chunk_count=len(chunks),
                        lineage=row_lineage,
                        access=row_access,
                        model_id=self.embedder.model_id,
                    )
                    for chunk in chunks
                )
        report.rows += rows
        report.chunks += len(points)
        report.add_time("chunk", started)
        return points, batch_keys

    @staticmethod
    def _check_keys(dataset: str, keys: list[Any], seen: set[str]) -> set[str]:
        """The batch's source keys as strings; a null or repeated key is refused, because
        point ids derive from it and two rows would overwrite each other's chunks."""
        batch_keys: set[str] = set()
        for key in keys:
            if key is None:
                raise LakeError(f"dataset {dataset}: a row has no _source_key", stage="kb")
            text = str(key)
            if text in seen:
                raise LakeError(
                    f"dataset {dataset}: source key {text!r} appears in more than one row;"
                    " curated tables hold one row per source key",
                    stage="kb",
                )
            seen.add(text)
            batch_keys.add(text)
        return batch_keys

    def _apply(
        self, points: list[ChunkPoint], known: dict[str, StoredPoint], report: LoadReport
    ) -> None:
        to_embed: list[ChunkPoint] = []
        to_repayload: dict[str, dict[str, Any]] = {}
        for point in points:
            stored = known.get(point.id)
            if stored is None or stored.chunk_hash != point.chunk_hash:
                to_embed.append(point)
            elif stored.payload_hash != point.payload_hash:
                to_repayload[point.id] = point.payload
            else:
                report.unchanged += 1
        if to_embed:
            started = time.perf_counter()
            # Identical texts (boilerplate notes) are embedded once and share the vector.
            unique: dict[str, ChunkPoint] = {}
            for point in to_embed:
                unique.setdefault(point.chunk_hash, point)
            firsts = list(unique.values())
            vectors = self.embedder.embed([p.text for p in firsts], [p.tokens for p in firsts])
            row_of = {p.chunk_hash: row for row, p in enumerate(firsts)}
            report.embedded += len(firsts)
            report.add_time("embed", started)
            started = time.perf_counter()
            self.store.upsert(
                [p.id for p in to_embed],
                vectors[[row_of[p.chunk_hash] for p in to_embed]],
                [p.payload for p in to_embed],
            )
            report.upserted += len(to_embed)
            report.add_time("write", started)
        if to_repayload:
            started = time.perf_counter()
            self.store.overwrite_payloads(to_repayload)
            report.payload_updated += len(to_repayload)
            report.add_time("write", started)

    def _delete(self, ids: list[str], report: LoadReport) -> None:
        if ids:
            started = time.perf_counter()
            self.store.delete(ids)
            report.deleted += len(ids)
            report.add_time("write", started)
