"""Load throughput into Qdrant Edge and qdrant-client local mode, and the cost of a re-load
with no changes relative to the first load (target: under 5%).

    .venv/bin/python bench/kb_load.py [--points 20000] [--rows 400] [--json]

Part 1 writes ``--points`` random unit vectors (384-d) with knowledge-base payloads straight
through each store backend (points/s, then the Edge optimize() that builds HNSW). Part 2 runs
the real loader (chunk, embed on CPU, write) over ``--rows`` curated rows in a temporary lake,
then again with nothing changed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from kb_texts import documents  # bench/ is on sys.path when this script runs

from index.config import EdgeStoreConfig, KnowledgeBaseConfig, QdrantStoreConfig
from index.points import point_id
from index.stores import open_store


def kb_config(store: EdgeStoreConfig | QdrantStoreConfig) -> KnowledgeBaseConfig:
    return KnowledgeBaseConfig.model_validate(
        {
            "collection": "bench",
            "embedding": {"device": "cpu"},
            "store": store.model_dump(),
            "access": {"tags": ["tenant"], "principals": {"all": {"tenant": "*"}}},
            "datasets": {"notes": {"fields": ["text"], "access": {"tenant": "tenant"}}},
        }
    )


def stores(root: Path) -> dict[str, EdgeStoreConfig | QdrantStoreConfig]:
    return {
        "edge": EdgeStoreConfig(path=root / "edge"),
        "qdrant_local": QdrantStoreConfig(path=root / "qdrant"),
    }


def upsert_throughput(points: int, root: Path) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((points, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [point_id("notes", str(i), "text", 0) for i in range(points)]
    payloads = [
        {
            "page_content": f"note {i} 患者血压平稳",
            "metadata": {"dataset": "notes", "_source_key": str(i), "access": {"tenant": "acme"}},
        }
        for i in range(points)
    ]
    results = []
    for name, config in stores(root).items():
        store = open_store(kb_config(config))
        store.create_if_missing(384, ["metadata.dataset", "metadata._source_key"])
        started = time.perf_counter()
        for start in range(0, points, 4096):
            end = start + 4096
            store.upsert(ids[start:end], vectors[start:end], payloads[start:end])
        upsert_s = time.perf_counter() - started
        started = time.perf_counter()
        store.finish()
        finish_s = time.perf_counter() - started
        store.close()
        results.append(
            {
                "store": name,
                "points": points,
                "upsert_points_per_s": round(points / upsert_s),
                "finish_s": round(finish_s, 2),
            }
        )
    return results


def rerun_cost(rows: int, root: Path) -> list[dict[str, Any]]:
    from pyiceberg.catalog.sql import SqlCatalog

    from index.embed import SentenceTransformerEmbedder
    from index.loader import KnowledgeBaseLoader
    from pipelines.config import LakeConfig
    from pipelines.lake import Lake

    lake_root = root / "lake"
    lake_root.mkdir()
    catalog = SqlCatalog(
        "steward",
        uri=f"sqlite:///{lake_root / 'catalog.db'}",
        warehouse=(lake_root / "warehouse").as_uri(),
    )
    catalog.create_namespace("curated")
    texts = documents(rows)
    data = pa.table(
        {
            "_source": ["erp"] * rows,
            "_entity": ["notes"] * rows,
            "_source_key": [str(i) for i in range(rows)],
            "_run_id": ["run-1"] * rows,
            "_content_hash": [str(hash(t)) for t in texts],
            "tenant": ["acme" if i % 2 else "globex" for i in range(rows)],
            "text": texts,
        }
    )
    catalog.create_table("curated.notes", schema=data.schema).append(data)
    lake = Lake(LakeConfig(root=lake_root))
    results = []
    embedder = None
    for name, config in stores(root / "rerun").items():
        kb = kb_config(config)
        embedder = embedder or SentenceTransformerEmbedder(kb.embedding)
        store = open_store(kb)
        loader = KnowledgeBaseLoader(kb, embedder, store)
        started = time.perf_counter()
        [first] = loader.load_lake(lake)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        [second] = loader.load_lake(lake)
        second_s = time.perf_counter() - started
        store.close()
        results.append(
            {
                "store": name,
                "rows": rows,
                "chunks": first.chunks,
                "first_load_s": round(first_s, 2),
                "first_chunks_per_s": round(first.chunks / first_s, 1),
                "no_change_reload_s": round(second_s, 3),
                "reload_embedded": second.embedded,
                "reload_cost_pct": round(100 * second_s / first_s, 2),
                "reload_seconds": {k: round(v, 3) for k, v in second.seconds.items()},
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        result = {
            "upsert": upsert_throughput(args.points, Path(tmp) / "upsert"),
            "rerun": rerun_cost(args.rows, Path(tmp)),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for r in result["upsert"]:
        print(
            f"{r['store']}: upsert {r['points']} points at {r['upsert_points_per_s']} points/s,"
            f" finish (flush/optimize) {r['finish_s']} s"
        )
    for r in result["rerun"]:
        print(
            f"{r['store']}: first load {r['rows']} rows / {r['chunks']} chunks in"
            f" {r['first_load_s']} s; no-change reload {r['no_change_reload_s']} s"
            f" ({r['reload_cost_pct']}%, embedded {r['reload_embedded']}) {r['reload_seconds']}"
        )


if __name__ == "__main__":
    main()
