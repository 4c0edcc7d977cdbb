"""The Iceberg lake: one warehouse, one JDBC catalog, read by Spark, Flink and pyiceberg.

Namespaces: ``raw`` (every version seen), ``clean`` (one row per source key), ``quarantine``
(every rejected row with its reason), ``curated`` (what trainers and the knowledge base read).
This module is the Python side (pyiceberg, no JVM): listing, reading and releases. The Spark
side of the same catalog is configured by ``spark_catalog_conf``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.config import LakeConfig
from pipelines.errors import ConfigError, LakeError, first_line

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table

NAMESPACES = ("raw", "clean", "quarantine", "curated")

# Lineage columns every zone carries (ARCHITECTURE.md, "Contracts every stage keeps").
LINEAGE_COLUMNS = ("_source", "_entity", "_source_key", "_ingested_at", "_run_id", "_content_hash")


def new_column_warning(table: str, column: str) -> str:
    """The run ledger's warning for a column a job added to an existing table (schema drift:
    the column is nullable, and rows written before read null there)."""
    return f"{table}: new column {column} added (nullable)"


def raw_table_name(source: str, entity: str) -> str:
    """``raw.<source>_<entity>``: every version one source sent of one entity (batch or stream)."""
    return f"raw.{source}_{entity}"


_SQLITE_PREFIX = "sqlite:"
DATA_FILE = "data/part-00000.parquet"

# Files that describe a release (its dataset card), from the released rows and manifest.
Describe = Callable[["pa.Table", dict[str, Any]], Mapping[str, bytes]]


@dataclass(frozen=True)
class ReleaseInfo:
    dataset: str
    version: str
    path: Path
    snapshot_id: int
    rows: int
    created: bool  # False when the same snapshot was already released (idempotent re-run)


class Lake:
    """The lake described by a ``LakeConfig`` (paths already resolved)."""

    def __init__(self, config: LakeConfig):
        self.config = config
        self.catalog_name = config.catalog.name

    # -- catalog locations, shared by every engine -------------------------------------------

    @property
    def sqlite_path(self) -> Path | None:
        uri = self.config.catalog.uri
        if not uri.startswith(_SQLITE_PREFIX):
            return None
        path = Path(uri.removeprefix(_SQLITE_PREFIX))
        return path if path.is_absolute() else self.config.root / path

    def jdbc_catalog_uri(self) -> str:
        """The catalog as a JDBC URL (Spark, Flink). SQLite runs in WAL mode so readers
        do not block the writer."""
        if self.sqlite_path is not None:
            return f"jdbc:sqlite:{self.sqlite_path}?journal_mode=WAL"
        return self.config.catalog.uri

    def _catalog_password(self) -> str | None:
        env = self.config.catalog.password_env
        if env is None:
            return None
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"lake.catalog: environment variable {env} is not set")
        return value

    def spark_catalog_conf(self) -> dict[str, str]:
        """Spark settings that mount this catalog under ``catalog_name``."""
        prefix = f"spark.sql.catalog.{self.catalog_name}"
        conf = {
            prefix: "org.apache.iceberg.spark.SparkCatalog",
            f"{prefix}.type": "jdbc",
            f"{prefix}.uri": self.jdbc_catalog_uri(),
            f"{prefix}.warehouse": self.config.warehouse.resolve().as_uri(),
        }
        if self.config.catalog.user:
            conf[f"{prefix}.jdbc.user"] = self.config.catalog.user
        password = self._catalog_password()
        if password is not None:
            conf[f"{prefix}.jdbc.password"] = password
        return conf

    def prepare(self) -> None:
        """Create the warehouse folder and, for SQLite, switch the catalog file to WAL."""
        self.config.warehouse.mkdir(parents=True, exist_ok=True)
        if self.sqlite_path is not None:
            try:
                with sqlite3.connect(self.sqlite_path, timeout=30) as db:
                    db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.DatabaseError as exc:
                raise LakeError(f"catalog {self.sqlite_path}: {exc}") from None

    # -- pyiceberg: the JVM-free view -------------------------------------------------------

    @cached_property
    def catalog(self) -> SqlCatalog:
        from pyiceberg.catalog.sql import SqlCatalog

        if self.sqlite_path is not None:
            if not self.sqlite_path.exists():
                raise LakeError(
                    f"no lake at {self.config.root}: catalog {self.sqlite_path} does not exist"
                    " (run a pipeline first)"
                )
            uri = f"sqlite:///{self.sqlite_path}"
        else:
            uri = self._sqlalchemy_uri()
        try:
            return SqlCatalog(
                self.catalog_name, uri=uri, warehouse=self.config.warehouse.resolve().as_uri()
            )
        except Exception as exc:  # sqlalchemy raises a family of driver-specific errors
            raise LakeError(f"catalog {self.config.catalog.uri}: {first_line(exc)}") from None

    def _sqlalchemy_uri(self) -> str:
        uri = self.config.catalog.uri.removeprefix("jdbc:")
        if not uri.startswith("postgresql://"):
            raise ConfigError(f"lake.catalog.uri: unsupported catalog {self.config.catalog.uri}")
        user = self.config.catalog.user or ""
        password = self._catalog_password()
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        return "postgresql+psycopg://" + auth + uri.removeprefix("postgresql://")

    def tables(self) -> list[str]:
        """Every table in the lake as ``namespace.table``."""
        names: list[str] = []
        try:
            for (namespace,) in sorted(self.catalog.list_namespaces()):
                names.extend(
                    ".".join(ident) for ident in sorted(self.catalog.list_tables(namespace))
                )
        except LakeError:
            raise
        except Exception as exc:
            raise LakeError(f"catalog {self.config.catalog.uri}: {first_line(exc)}") from None
        return names

    def table(self, name: str) -> Table:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.catalog.load_table(name)
        except NoSuchTableError:
            raise LakeError(f"no table {name} in catalog {self.catalog_name}") from None
        except Exception as exc:
            raise LakeError(f"table {name}: {first_line(exc)}") from None

    def read(self, name: str, snapshot_id: int | None = None, limit: int | None = None) -> pa.Table:
        """Read a table (at a snapshot) into Arrow."""
        return self.table(name).scan(snapshot_id=snapshot_id, limit=limit).to_arrow()

    def snapshots(self, name: str) -> list[dict[str, Any]]:
        """Snapshots of a table, oldest first, with their summaries."""
        result = []
        for snap in self.table(name).metadata.snapshots:
            summary = snap.summary.model_dump() if snap.summary else {}
            result.append(
                {
                    "snapshot_id": snap.snapshot_id,
                    "timestamp_ms": snap.timestamp_ms,
                    "operation": str(summary.pop("operation", "")),
                    "summary": {str(k): str(v) for k, v in summary.items()},
                }
            )
        return result

    # -- releases for trainers ---------------------------------------------------------------

    def release(
        self,
        dataset: str,
        snapshot_id: int | None = None,
        version: str | None = None,
        describe: Describe | None = None,
    ) -> ReleaseInfo:
        """Publish ``curated.<dataset>`` at a snapshot as plain Parquet.

        Layout: ``releases/<dataset>/<version>/data/part-00000.parquet`` (what any Parquet
        reader, or ``load_dataset("parquet", data_dir=…/data)``, reads as is), the
        ``_release.json`` manifest, and whatever ``describe`` returns for the released rows
        (the dataset card). Everything is written to a temporary folder beside the target and
        renamed into place in one step, so a reader sees a whole release or none. Releases
        are immutable: releasing a snapshot that is already released returns the existing
        release, and an existing version name is never overwritten.
        """
        import pyarrow.parquet as pq

        table = self.table(f"curated.{dataset}")
        snapshot = (
            table.snapshot_by_id(snapshot_id)
            if snapshot_id is not None
            else table.current_snapshot()
        )
        if snapshot is None:
            raise LakeError(f"curated.{dataset} has no snapshot {snapshot_id or '(empty table)'}")

        dataset_dir = self.config.releases / dataset
        existing = self._release_for_snapshot(dataset_dir, snapshot.snapshot_id)
        if existing is not None:
            return existing

        version = version or self._next_version(dataset_dir)
        target = dataset_dir / version
        if target.exists():
            raise LakeError(f"release {target} already exists; releases are immutable")

        data = table.scan(snapshot_id=snapshot.snapshot_id).to_arrow()
        staging = dataset_dir / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
        (staging / "data").mkdir(parents=True)
        try:
            pq.write_table(data, staging / DATA_FILE, compression="zstd")
            manifest = {
                "dataset": dataset,
                "version": version,
                "table": f"curated.{dataset}",
                "snapshot_id": snapshot.snapshot_id,
                "rows": data.num_rows,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": [DATA_FILE],
                "schema": [{"name": f.name, "type": str(f.type)} for f in data.schema],
            }
            (staging / "_release.json").write_text(
                json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
            )
            for name, content in (describe(data, manifest) if describe else {}).items():
                (staging / name).write_bytes(content)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return ReleaseInfo(dataset, version, target, snapshot.snapshot_id, data.num_rows, True)

    @staticmethod
    def _release_manifests(dataset_dir: Path) -> list[dict[str, Any]]:
        if not dataset_dir.exists():
            return []
        manifests = []
        for entry in dataset_dir.iterdir():
            manifest = entry / "_release.json"
            if not entry.name.startswith(".") and manifest.exists():
                manifests.append({**json.loads(manifest.read_text("utf-8")), "_path": entry})
        # Oldest first by creation, not by name: "v10" sorts before "v2" as text.
        return sorted(manifests, key=lambda m: (m["created_at"], len(m["version"]), m["version"]))

    def _release_for_snapshot(self, dataset_dir: Path, snapshot_id: int) -> ReleaseInfo | None:
        for manifest in self._release_manifests(dataset_dir):
            if manifest["snapshot_id"] == snapshot_id:
                return ReleaseInfo(
                    manifest["dataset"],
                    manifest["version"],
                    manifest["_path"],
                    snapshot_id,
                    manifest["rows"],
                    False,
                )
        return None

    def _next_version(self, dataset_dir: Path) -> str:
        numbers = [
            int(m["version"][1:])
            for m in self._release_manifests(dataset_dir)
            if m["version"].startswith("v") and m["version"][1:].isdigit()
        ]
        return f"v{max(numbers, default=0) + 1}"

    def releases(self, dataset: str) -> list[dict[str, Any]]:
        """Every release of a dataset, oldest first, from its manifests."""
        return [
            {k: (str(v) if k == "_path" else v) for k, v in m.items() if k != "schema"}
            for m in self._release_manifests(self.config.releases / dataset)
        ]
