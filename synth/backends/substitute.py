"""``substitute``: offline generation by editing real exemplars, guided by embeddings.

Operations, one to three per candidate:

- ``recombine``: the first clauses of one exemplar with the last clauses of another of the
  same label (clauses end at , ; . ! ? : and their full-width forms; recombination cuts
  only at sentence ends);
- ``slot``: numbers, dates, times and identifiers replaced by Faker values of the same shape
  (zh_CN faker for text with Han characters, en otherwise);
- ``vocab``: a word replaced by another the label's own texts use between the same
  neighbours (the dataset's vocabulary, so the sample keeps the domain's words);
- ``edit``: two clauses swapped, or one of three or more dropped.

Candidates are drawn ``oversample`` times over, embedded, and those nearer another label's
centroid than their own are discarded; the rest are chosen by MMR around the label centroid,
so the kept samples stay on-label and spread out instead of repeating the best one.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import regex

from synth.backends import register
from synth.config import SubstituteBackend
from synth.exemplars import label_margin, mmr
from synth.samples import Candidate, GenerationJob, GenerationResult, LabelRequest
from synth.tokens import HAN, SENTENCE_END, NgramIndex, clauses, tokens

_WORD = regex.compile(r"\p{Han}{1,2}|[^\W\p{Han}\d_]{3,}")
# (pattern, faker method making a value of the same shape)
_SLOTS: tuple[tuple[regex.Pattern[str], str], ...] = (
    (regex.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "date"),
    (regex.compile(r"\b\d{1,2}:\d{2}\b"), "time_hm"),
    (regex.compile(r"\b[A-Z]{2,4}-?\d{3,}\b"), "identifier"),
    (regex.compile(r"(?<![\w.])\d{1,6}(?:\.\d{1,2})?(?![\w.])"), "number"),
)
_MAX_TRIES = 20
_SHORT_CLAUSE = 3  # tokens


@register("substitute")
class SubstituteGenerator:
    name = "substitute"

    def __init__(self, config: SubstituteBackend):
        self.config = config

    def generate(self, job: GenerationJob) -> GenerationResult:
        from faker import Faker

        field = job.task.text_field
        assert field is not None  # the task validator guarantees it for text backends
        fakers = {
            "han": Faker(self.config.locales[0]),
            "latin": Faker(self.config.locales[1]),
        }
        candidates: list[Candidate] = []
        # Drafts made and set aside by the guide, by reason (reported, not filtered).
        screened: Counter[str] = Counter()
        for request in job.requests:
            # One stream per label: adding a label does not change another label's samples.
            rng = random.Random(f"{self.config.seed}:{job.task.name}:{request.label}")
            for faker in fakers.values():
                faker.seed_instance(rng.randrange(2**32))
            texts = [str(job.seed.records[i][field]) for i in job.seed.of_label(request.label)]
            pool = _Drafter(rng, fakers, _neighbours(texts)).draft(
                job, request, request.count * self.config.oversample
            )
            candidates.extend(self._guide(job, request, pool, screened))
        return GenerationResult(candidates, report={"drafts": dict(screened)})

    def _guide(
        self,
        job: GenerationJob,
        request: LabelRequest,
        pool: list[tuple[str, list[str], tuple]],
        screened: Counter[str],
    ) -> list[Candidate]:
        field = job.task.text_field
        assert field is not None
        encoder = job.context.encoder
        if not pool or encoder is None:
            return []
        vectors = encoder.embed([text for text, _, _ in pool])
        margin = label_margin(vectors, request.label, job.context.centroids)
        # Drafts the memorisation guard would drop anyway are not worth a slot: a single
        # edit of a real ticket is still that ticket.
        guard = job.task.filters.memorisation
        real = job.seed.vectors[job.seed.of_label(request.label)]
        nearest = (vectors @ real.T).max(axis=1)
        copies = NgramIndex(
            [str(job.seed.records[i][field]) for i in job.seed.of_label(request.label)],
            guard.max_ngram,
        )
        on_label = []
        for i in range(len(pool)):
            if margin[i] <= 0:
                screened["off_label"] += 1
            elif nearest[i] > guard.max_cosine or copies.shares_run(pool[i][0]):
                screened["too_close_to_real"] += 1
            else:
                on_label.append(i)
        screened["drafted"] += len(pool)
        chosen = mmr(
            vectors[on_label],
            request.count,
            0.5,
            query=job.context.centroids[request.label],
        )
        result = []
        for j in chosen:
            text, ops, seeds = pool[on_label[j]]
            result.append(
                Candidate(
                    record={field: text, job.task.label_field: request.label},
                    label=request.label,
                    seed_keys=seeds,
                    params={"ops": ops, "margin": round(float(margin[on_label[j]]), 4)},
                )
            )
        return result


def _neighbours(texts: Sequence[str]) -> dict[tuple[str, str], list[str]]:
    """Words seen between each (previous word, next word) pair in the label's texts."""
    table: dict[tuple[str, str], set[str]] = defaultdict(set)
    for text in texts:
        words = [m.group(0) for m in _WORD.finditer(text)]
        for i, word in enumerate(words):
            before = words[i - 1].lower() if i else "^"
            after = words[i + 1].lower() if i + 1 < len(words) else "$"
            table[(before, after)].add(word)
    return {key: sorted(values) for key, values in table.items()}


class _Drafter:
    """Makes draft texts for one label from its exemplars."""

    def __init__(
        self,
        rng: random.Random,
        fakers: dict[str, Any],
        neighbours: dict[tuple[str, str], list[str]],
    ):
        self.rng = rng
        self.fakers = fakers
        self.neighbours = neighbours
        self.ops: dict[str, Callable[[str], str | None]] = {
            "slot": self._slot,
            "vocab": self._vocab,
            "edit": self._edit,
        }

    def draft(
        self, job: GenerationJob, request: LabelRequest, count: int
    ) -> list[tuple[str, list[str], tuple[str, ...]]]:
        field = job.task.text_field
        assert field is not None
        exemplars = [(job.seed.keys[i], str(job.seed.records[i][field])) for i in request.exemplars]
        real = {text for _, text in exemplars}
        # A draft much shorter than every exemplar has lost its request.
        shortest = max(3, min((len(tokens(t)) for _, t in exemplars), default=0) * 2 // 3)
        drafts: dict[str, tuple[list[str], tuple[str, ...]]] = {}
        tries = 0
        while len(drafts) < count and tries < count * _MAX_TRIES and exemplars:
            tries += 1
            key, text = self.rng.choice(exemplars)
            seeds, ops = [key], []
            if len(exemplars) > 1 and self.rng.random() < 0.5:
                other_key, other = self.rng.choice([e for e in exemplars if e[0] != key])
                joined = self._recombine(text, other)
                if joined is not None:
                    text, seeds, ops = joined, [key, other_key], ["recombine"]
            for name in self.rng.sample(list(self.ops), self.rng.randint(1, len(self.ops))):
                changed = self.ops[name](text)
                if changed is not None and changed != text:
                    text = changed
                    ops.append(name)
            text = " ".join(text.split())
            if ops and text not in real and text not in drafts and len(tokens(text)) >= shortest:
                drafts[text] = (ops, tuple(sorted(set(seeds))))
        return [(text, ops, seeds) for text, (ops, seeds) in drafts.items()]

    def _recombine(self, first: str, second: str) -> str | None:
        a, b = _sentences(first), _sentences(second)
        if len(a) < 2 or len(b) < 2:
            return None
        head = a[: self.rng.randint(1, len(a) - 1)]
        tail = b[self.rng.randint(1, len(b) - 1) :]
        return (
            "".join(head + tail) if HAN.search(first) else " ".join(p.strip() for p in head + tail)
        )

    def _slot(self, text: str) -> str | None:
        faker = self.fakers["han" if HAN.search(text) else "latin"]
        found = [(m, kind) for pattern, kind in _SLOTS for m in pattern.finditer(text)]
        if not found:
            return None
        match, kind = self.rng.choice(found)
        return text[: match.start()] + _fake_like(faker, kind, match.group(0)) + text[match.end() :]

    def _vocab(self, text: str) -> str | None:
        words = list(_WORD.finditer(text))
        for _ in range(4):
            if not words:
                return None
            i = self.rng.randrange(len(words))
            before = words[i - 1].group(0).lower() if i else "^"
            after = words[i + 1].group(0).lower() if i + 1 < len(words) else "$"
            options = self.neighbours.get((before, after))
            current = words[i].group(0)
            options = [w for w in options or () if w.lower() != current.lower()]
            if options:
                m = words[i]
                return text[: m.start()] + self.rng.choice(options) + text[m.end() :]
        return None

    def _edit(self, text: str) -> str | None:
        parts = clauses(text)
        sep = "" if HAN.search(text) else " "
        sizes = [len(tokens(p)) for p in parts]
        # Short clauses are greetings, sign-offs and asides: dropping one keeps the request.
        short = [i for i, n in enumerate(sizes) if n <= _SHORT_CLAUSE]
        if short and any(n > _SHORT_CLAUSE for n in sizes) and self.rng.random() < 0.5:
            del parts[self.rng.choice(short)]
            return sep.join(p.strip() for p in parts)
        # Whole sentences of a request can trade places; fragments cannot.
        swappable = [
            i
            for i in range(len(parts) - 1)
            if min(sizes[i], sizes[i + 1]) > _SHORT_CLAUSE
            and parts[i].rstrip()[-1:] in SENTENCE_END
        ]
        if not swappable:
            return None
        i = self.rng.choice(swappable)
        parts[i], parts[i + 1] = parts[i + 1], parts[i]
        return sep.join(p.strip() for p in parts)


def _sentences(text: str) -> list[str]:
    """Clauses merged up to sentence ends, so recombination never splices mid-sentence."""
    result: list[str] = []
    current = ""
    for part in clauses(text):
        current += part
        if part.rstrip()[-1:] in SENTENCE_END:
            result.append(current)
            current = ""
    if current:
        result.append(current)
    return result


def _fake_like(faker: Any, kind: str, value: str) -> str:
    if kind == "date":
        return str(faker.date())
    if kind == "time_hm":
        return str(faker.time(pattern="%H:%M"))
    if kind == "identifier":
        return "".join(str(faker.random_digit()) if ch.isdigit() else ch for ch in value)
    digits = len(value.split(".")[0])
    number = faker.random_int(min=1 if digits == 1 else 10 ** (digits - 1), max=10**digits - 1)
    if "." in value:
        return f"{number}.{faker.random_int(0, 99):02d}"
    return str(number)
