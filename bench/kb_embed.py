"""Embedding throughput: our path against ``SentenceTransformer.encode`` with default arguments.

Both run on the same chunk texts in the same process: on CPU always, and on CUDA (our fp16,
token-budget batches with a tokenising thread, against encode's fp32 batches of 32) when a GPU
is present. Prints chunks/s and the ratio; ``--json`` prints one JSON object instead.

Tokenising alone is timed too, over our batches, both through ``preprocess`` and through the
path the embedder chose (``plan.tokenizer``): on a GPU it is what bounds a small model.

    .venv/bin/python bench/kb_embed.py [--docs 1500] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from kb_texts import documents  # bench/ is on sys.path when this script runs

from index.chunk import chunk_texts
from index.config import EmbeddingConfig
from index.embed import SentenceTransformerEmbedder, default_model_path, plan_batches


def timed(fn: Any, sync: Any = None) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    if sync is not None:
        sync()
    return time.perf_counter() - started, result


def measure(device: str, model: Path, texts: list[str], counts: list[int]) -> dict[str, Any]:
    import torch
    from sentence_transformers import SentenceTransformer

    sync = torch.cuda.synchronize if device == "cuda" else None
    baseline = SentenceTransformer(str(model), device=device)
    ours = SentenceTransformerEmbedder(EmbeddingConfig(model=model, device=device))  # type: ignore[arg-type]
    warm = texts[:64]
    baseline.encode(warm)
    ours.embed(warm, counts[:64])
    base_s, base_vectors = timed(lambda: baseline.encode(texts), sync)
    ours_s, our_vectors = timed(lambda: ours.embed(texts, counts), sync)
    batches = [
        [texts[i] for i in batch]
        for batch in plan_batches(
            ours.sequence_lengths(counts), ours.plan.batch_size, ours.plan.max_batch_tokens
        )
    ]
    preprocess_s, _ = timed(lambda: [ours.model.preprocess(batch) for batch in batches])
    features_s, _ = timed(lambda: [ours.features(batch) for batch in batches])
    base_vectors = base_vectors / np.linalg.norm(base_vectors, axis=1, keepdims=True)
    agreement = float(np.min(np.sum(base_vectors * our_vectors, axis=1)))
    return {
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "chunks": len(texts),
        "encode_default_chunks_per_s": round(len(texts) / base_s, 1),
        "ours_chunks_per_s": round(len(texts) / ours_s, 1),
        "speedup": round(base_s / ours_s, 2),
        "tokenise_only_chunks_per_s": {
            "preprocess": round(len(texts) / preprocess_s, 1),
            ours.plan.tokenizer: round(len(texts) / features_s, 1),
        },
        "ours_plan": ours.plan.__dict__,
        "min_cosine_vs_encode": round(agreement, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1500, help="documents to chunk (CPU)")
    parser.add_argument("--gpu-docs", type=int, default=30000, help="documents on GPU")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="a sentence-transformers model folder (default: the shipped all-MiniLM-L6-v2)",
    )
    parser.add_argument("--no-cpu", action="store_true", help="measure CUDA only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    model = args.model or default_model_path()
    chunker = SentenceTransformerEmbedder(EmbeddingConfig(model=model, device="cpu"))

    def corpus(count: int) -> tuple[list[str], list[int]]:
        chunks = chunk_texts(documents(count), chunker, chunker.max_tokens, 32)
        flat = [c for doc in chunks for c in doc]
        return [c.text for c in flat], [c.tokens for c in flat]

    results = [] if args.no_cpu else [measure("cpu", model, *corpus(args.docs))]
    if torch.cuda.is_available():
        results.append(measure("cuda", model, *corpus(args.gpu_docs)))
    else:
        results.append({"device": "cuda", "skipped": "no CUDA device"})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        if "skipped" in r:
            print(f"{r['device']}: skipped ({r['skipped']})")
            continue
        print(
            f"{r['device']}: {r['chunks']} chunks  encode() default"
            f" {r['encode_default_chunks_per_s']} chunks/s"
            f"  ours {r['ours_chunks_per_s']} chunks/s  x{r['speedup']}"
            f"  (min cosine vs encode {r['min_cosine_vs_encode']}, plan {r['ours_plan']})"
            f"  tokenising alone: {r['tokenise_only_chunks_per_s']} chunks/s"
        )


if __name__ == "__main__":
    main()
