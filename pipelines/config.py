"""The pipeline config (``pipeline.yaml``): typed, validated once, passed inward.

Relative paths in the file are resolved against the file's own folder, so a config can be run
from anywhere. Secrets never live in the file: a source names the environment variable or the
file that holds its password (``password_env`` / ``password_file``), and ``Secret`` keeps the
value out of reprs, logs and the ledger.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    field_validator,
    model_validator,
)

from index.config import KnowledgeBaseConfig
from ingest.crm_config import CrmSource
from ingest.stream_config import StreamConfig
from pipelines.config_types import Identifier, StrictModel
from pipelines.contracts import QualityConfig
from pipelines.errors import ConfigError
from pipelines.yaml_models import load_yaml_model
from synth.config import SynthConfig


class CatalogConfig(StrictModel):
    """The one Iceberg catalog that Spark, Flink and pyiceberg share (same name everywhere)."""

    name: Identifier = "steward"
    # "sqlite:<path>" (embedded default, WAL mode) or a "jdbc:postgresql://…" URL when batch and
    # stream commit concurrently or the lake is shared.
    uri: str = "sqlite:catalog.db"
    user: str | None = None
    password_env: str | None = None


class LakeConfig(StrictModel):
    root: Path = Path("lake")
    catalog: CatalogConfig = CatalogConfig()

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.db"


class SparkConfig(StrictModel):
    master: str = "local[*]"
    app_name: str = "steward-batch"
    shuffle_partitions: int = Field(default=4, ge=1)
    conf: dict[str, str] = {}


class JdbcTable(StrictModel):
    """One ERP table: its name at the source, its key, and the entity it feeds."""

    name: Identifier
    key: Identifier
    entity: Identifier | None = None
    watermark: Identifier | None = None
    # Partitioned parallel reads: a numeric column; bounds are computed from the table.
    partition_column: Identifier | None = None
    # Late commits: re-read this far behind the stored watermark (re-read rows change nothing).
    lookback: timedelta = timedelta(0)
    # A boolean column marking rows deleted at the source (removed from clean and curated).
    soft_delete_column: Identifier | None = None

    @property
    def entity_name(self) -> str:
        return self.entity or self.name


class JdbcSource(StrictModel):
    """A relational source read by Spark over JDBC (PostgreSQL first; any driver by config)."""

    kind: Literal["jdbc"] = "jdbc"
    url: str
    driver: str = "org.postgresql.Driver"
    user: str
    password_env: str | None = None
    password_file: Path | None = None
    db_schema: Identifier = Field(default="public", alias="schema")
    num_partitions: int = Field(default=4, ge=1, le=256)
    fetch_size: int = Field(default=5000, ge=1)
    tables: list[JdbcTable] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("url")
    @classmethod
    def _jdbc_url(cls, value: str) -> str:
        if not value.startswith("jdbc:"):
            raise ValueError("must be a JDBC URL (jdbc:<driver>://host:port/database)")
        if "password=" in value.lower():
            raise ValueError("must not carry a password; use password_env or password_file")
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> JdbcSource:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env or password_file")
        return self

    def entity_names(self) -> list[str]:
        """The entities this source feeds, in config order."""
        return [table.entity_name for table in self.tables]

    def password(self, source_name: str) -> SecretStr:
        """Read the password from the environment or its file at the moment it is needed."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"source {source_name}: environment variable {self.password_env} is not set"
                )
            return SecretStr(value)
        assert self.password_file is not None
        try:
            return SecretStr(self.password_file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError(
                f"source {source_name}: cannot read password_file {self.password_file}: "
                f"{exc.strerror}"
            ) from None


class TransformConfig(StrictModel):
    """The transform chain every source goes through (Spark and Flink alike)."""

    rule_packs: list[str] = ["common"]
    # Per rule and field: a match running longer quarantines the record (catastrophic regex).
    rule_timeout_s: float = Field(default=0.1, gt=0, le=10)


class PrivacyConfig(StrictModel):
    """Treatment policies (``privacy/policy.py`` YAML) per entity; ``default`` for the rest.

    An entity with neither its own policy nor a default passes the privacy stage untreated,
    so production configs should set ``default`` (fail closed)."""

    policies: dict[Identifier, Path] = {}
    default: Path | None = None

    def policy_for(self, entity: str) -> Path | None:
        return self.policies.get(entity, self.default)


def _source_kind(value: object) -> str:
    # Sources without a kind are JDBC: the first kind there was, and the commonest.
    if isinstance(value, dict):
        return str(value.get("kind", "jdbc"))
    return str(getattr(value, "kind", "jdbc"))


Source = Annotated[
    Annotated[JdbcSource, Tag("jdbc")] | Annotated[CrmSource, Tag("rest")],
    Discriminator(_source_kind),
]


class PipelineConfig(StrictModel):
    """The whole ``pipeline.yaml``."""

    lake: LakeConfig = LakeConfig()
    spark: SparkConfig = SparkConfig()
    # Empty for a deployment that only reads the lake (the knowledge base, releases).
    sources: dict[Identifier, Source] = {}
    transform: TransformConfig = TransformConfig()
    privacy: PrivacyConfig | None = None
    quality: QualityConfig = QualityConfig()
    kb: KnowledgeBaseConfig | None = None
    synth: SynthConfig | None = None
    stream: StreamConfig | None = None


def _resolve(config: PipelineConfig, base: Path) -> PipelineConfig:
    """Anchor relative paths at the config file's folder."""

    def anchor(path: Path) -> Path:
        return path if path.is_absolute() else (base / path).resolve()

    lake = config.lake.model_copy(update={"root": anchor(config.lake.root)})
    sources = {
        name: source.model_copy(
            update={"password_file": anchor(source.password_file)} if source.password_file else {}
        )
        for name, source in config.sources.items()
    }
    privacy = config.privacy
    if privacy is not None:
        privacy = privacy.model_copy(
            update={
                "policies": {name: anchor(path) for name, path in privacy.policies.items()},
                "default": anchor(privacy.default) if privacy.default else None,
            }
        )
    quality = config.quality
    if quality.contracts_dir is not None:
        quality = quality.model_copy(update={"contracts_dir": anchor(quality.contracts_dir)})
    kb = config.kb.anchored(base, lake.root) if config.kb is not None else None
    stream = config.stream.resolved(base) if config.stream is not None else None
    return config.model_copy(
        update={
            "lake": lake,
            "sources": sources,
            "privacy": privacy,
            "quality": quality,
            "kb": kb,
            "stream": stream,
        }
    )


def load_config(path: Path) -> PipelineConfig:
    """Load and validate ``pipeline.yaml``; errors name file:line and field."""
    config = load_yaml_model(path, PipelineConfig)
    return _resolve(config, path.resolve().parent)


def config_hash(path: Path) -> str:
    """Content hash of the config file, recorded with every run."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
