"""Access control: no query, by any principal with any filter, returns a point outside its tags."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from index.access import principal_conditions
from index.loader import KnowledgeBaseLoader
from index.search import search, search_vector
from index.stores import VectorStore
from pipelines.errors import ConfigError

QUERIES = [
    "chest pain and blood pressure",
    "chemotherapy nausea",
    "refund for a double charge",
    "儿童发热",
    "发票抬头",
    "order shipped",
    "x",
]
FILTERS: list[dict[str, str]] = [
    {},
    {"dataset": "medical_orders"},
    {"dataset": "support_tickets"},
    {"access.tenant": "globex"},
    {"access.department": "oncology"},
    {"access.department": "cardiology", "access.tenant": "acme"},
]


def allowed(kb: Any, principal: str, metadata: dict[str, Any]) -> bool:
    rules = kb.access.principals[principal]
    for tag in kb.access.tags:
        if rules[tag] == "*":
            continue
        value = metadata["access"].get(tag)
        values = value if isinstance(value, list) else [value]
        if not any(v in rules[tag] for v in values):
            return False
    return True


def test_no_query_returns_a_point_outside_the_principals_tags(
    loader: KnowledgeBaseLoader, curated_lake: Any, embedder: Any, store: VectorStore
) -> None:
    loader.load_lake(curated_lake.lake)
    kb = loader.config
    total = store.count()
    seen: dict[str, set[str]] = {p: set() for p in kb.access.principals}
    vectors = embedder.embed(QUERIES)
    for principal, vector, filters in itertools.product(kb.access.principals, vectors, FILTERS):
        # k larger than the collection: the engine must filter, not just rank.
        hits = search_vector(kb, store, vector, principal=principal, k=100, filters=filters)
        for hit in hits:
            assert allowed(kb, principal, hit.metadata), (principal, filters, hit)
            seen[principal].add(hit.id)
    # And each principal sees exactly what it may: not less (the filter is not over-eager).
    assert len(seen["auditor"]) == total
    assert len(seen["cardiologist"]) == 4  # rows 1 and 2: prescription and notes
    assert len(seen["globex_oncology"]) == 2  # row 4: prescription and notes
    assert len(seen["acme_support"]) == store.count(principal_conditions(kb.access, "acme_support"))


def test_a_filter_cannot_widen_access(
    loader: KnowledgeBaseLoader, curated_lake: Any, embedder: Any, store: VectorStore
) -> None:
    loader.load_lake(curated_lake.lake)
    hits = search(
        loader.config,
        embedder,
        store,
        "Patient tolerated chemotherapy well.",
        principal="cardiologist",
        k=50,
        filters={"access.tenant": "globex", "access.department": "oncology"},
    )
    assert hits == []


def test_unknown_principal_is_refused_before_any_query(
    loader: KnowledgeBaseLoader, curated_lake: Any, embedder: Any, store: VectorStore
) -> None:
    loader.load_lake(curated_lake.lake)
    embedder.reset()
    with pytest.raises(ConfigError, match="unknown principal"):
        search(loader.config, embedder, store, "anything", principal="mallory")
    assert embedder.texts == []
