"""Embedding: device and batch planning (pure), and the real model on CPU against encode()."""

from __future__ import annotations

import numpy as np
import pytest

from index.config import EmbeddingConfig
from index.embed import (
    choose_featurizer,
    gpu_batch_tokens,
    plan_batches,
    resolve_device,
    same_features,
)
from pipelines.errors import ConfigError


def test_auto_device_is_cuda_in_half_precision_when_present_else_cpu_float32() -> None:
    auto = EmbeddingConfig()
    assert resolve_device(auto, cuda_available=True) == ("cuda", "float16")
    assert resolve_device(auto, cuda_available=False) == ("cpu", "float32")
    assert resolve_device(EmbeddingConfig(precision="float32"), True) == ("cuda", "float32")
    assert resolve_device(EmbeddingConfig(device="cpu"), True) == ("cpu", "float32")


def test_impossible_device_requests_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device(EmbeddingConfig(device="cuda"), cuda_available=False)
    with pytest.raises(ConfigError, match="float16 needs a CUDA device"):
        resolve_device(EmbeddingConfig(precision="float16"), cuda_available=False)


def test_batches_are_length_sorted_and_bounded_by_count_and_padded_tokens() -> None:
    counts = [10, 200, 30, 200, 5, 60, 60, 7]
    batches = plan_batches(counts, batch_size=3, max_batch_tokens=400)
    assert sorted(i for batch in batches for i in batch) == list(range(len(counts)))
    flat = [counts[i] for batch in batches for i in batch]
    assert flat == sorted(counts, reverse=True)  # longest first: an OOM shows up at once
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) * max(counts[i] for i in batch) <= 400
    # A text longer than the budget still gets a batch of its own.
    assert plan_batches([900, 1], 8, 400) == [[0], [1]]


def test_gpu_budget_grows_with_free_memory_and_has_a_floor() -> None:
    small = gpu_batch_tokens(1 << 30, hidden_size=384, heads=12, max_seq=256, dtype_bytes=2)
    large = gpu_batch_tokens(40 << 30, hidden_size=384, heads=12, max_seq=256, dtype_bytes=2)
    assert 512 <= small < large
    assert gpu_batch_tokens(0, 384, 12, 256, 2) == 512


def test_real_model_on_cpu_matches_encode_and_is_normalised(model_embedder) -> None:  # type: ignore[no-untyped-def]
    texts = [
        "阿司匹林 100mg 口服 qd",
        "Blood pressure stable, continue current treatment.",
        "儿童发热三天，咽喉红肿；考虑细菌感染。" * 20,  # noqa: RUF001 - longer than the model limit
        "x",
    ]
    assert model_embedder.plan.device == "cpu" and model_embedder.plan.dtype == "float32"
    ours = model_embedder.embed(texts)
    reference = model_embedder.model.encode(texts, normalize_embeddings=True)
    assert ours.shape == (4, model_embedder.dimension) == (4, 384)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert model_embedder.embed([]).shape == (0, 384)


def test_small_batches_give_the_same_vectors_in_input_order(model_embedder) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    texts = [f"note {i}: {'患者' * (i % 7)} dose {i} mg" for i in range(25)]
    whole = model_embedder.embed(texts)
    saved = model_embedder.plan
    model_embedder.plan = replace(saved, batch_size=4, max_batch_tokens=256)
    try:
        pieces = model_embedder.embed(texts)
    finally:
        model_embedder.plan = saved
    np.testing.assert_allclose(pieces, whole, atol=1e-5)


def test_out_of_memory_halves_the_token_budget_and_redoes_only_what_is_missing(
    model_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    import torch

    texts = [f"dose {i} mg twice daily" for i in range(10)]
    expected = model_embedder.embed(texts)
    real_run = type(model_embedder)._run
    calls: list[tuple[int, int]] = []

    def flaky_run(self, texts, counts, indices, out, done):  # type: ignore[no-untyped-def]
        calls.append((len(indices), self.plan.max_batch_tokens))
        if len(calls) == 1:  # the first attempt lands half the rows, then runs out of memory
            half = indices[: len(indices) // 2]
            real_run(self, texts, counts, half, out, done)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        real_run(self, texts, counts, indices, out, done)

    saved = model_embedder.plan
    model_embedder.plan = replace(saved, max_batch_tokens=4096)
    monkeypatch.setattr(type(model_embedder), "_run", flaky_run)
    try:
        result = model_embedder.embed(texts)
    finally:
        model_embedder.plan = saved
    assert calls == [(10, 4096), (5, 2048)]
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_rust_tokenizer_path_is_used_only_where_it_equals_preprocess(model_embedder) -> None:  # type: ignore[no-untyped-def]
    model = model_embedder.model
    assert model_embedder.plan.tokenizer == "tokenizers"
    texts = [
        "  Metoprolol 25 mg po BID ",
        "阿莫西林 0.5g 口服 每日两次。",
        "儿童发热三天 fever " * 80,  # truncated at the model limit
        "x",
        "",
    ]
    assert same_features(model_embedder.features(texts), model.preprocess(texts))

    class Prompted:
        """A model whose preprocess adds a prompt: the direct path would differ from it."""

        tokenizer = model.tokenizer

        def preprocess(self, batch):  # type: ignore[no-untyped-def]
            return model.preprocess([f"query: {text}" for text in batch])

    prompted = Prompted()
    featurize, name = choose_featurizer(prompted, model.max_seq_length)
    assert name == "preprocess" and featurize == prompted.preprocess
