"""Find PII in text: pattern candidates, validated, scored with context, overlaps resolved.

``Detector.scan(text)`` returns non-overlapping ``Finding``s with character offsets.
``Detector.scan_many(texts)`` does the same for a column of texts; it joins them into large
chunks so each regex runs once per chunk instead of once per short text, which is where the
Python per-call overhead would otherwise go.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from privacy.entities import ENTITY_REGISTRY, EntityType, PatternSpec, context_regex
from privacy.validators import Verdict, validate

# Added to a candidate's score when a context word of its type precedes it (Presidio's
# default context similarity factor).
CONTEXT_BOOST = 0.35
# Characters before a match searched for context words: enough for "身份证号码:" or
# "Social Security number:" with some spacing, short enough not to reach the previous field.
CONTEXT_WINDOW = 40
DEFAULT_THRESHOLD = 0.5

# Joins texts in scan_many. No pattern matches a newline or U+001E, so no match can span two
# texts; the check in scan_many enforces it anyway.
_SEPARATOR = "\n\x1e\n"
_CHUNK_CHARS = 1 << 20


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of PII: ``text[start:end]`` is a ``type``, with a score and the reason."""

    type: str
    start: int
    end: int
    score: float
    pattern: str
    verdict: str
    context_word: str | None = None

    def explanation(self) -> str:
        """Which rule found it and why it scored as it did."""
        parts = [f"pattern {self.type}/{self.pattern}", f"validator {self.verdict}"]
        if self.context_word:
            parts.append(f"context {self.context_word!r}")
        return ", ".join(parts)

    def as_json(self, text: str | None = None) -> dict[str, object]:
        """The JSON shape of ``steward privacy scan``; the matched text only if given."""
        data: dict[str, object] = {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 3),
            "explanation": self.explanation(),
        }
        if text is not None:
            data["text"] = text[self.start : self.end]
        return data


@dataclass(frozen=True)
class _Compiled:
    entity: EntityType
    spec: PatternSpec
    regex: re.Pattern[str]
    context: re.Pattern[str]


class Detector:
    """Scan texts for the given entity types (default: all) at a score threshold."""

    def __init__(
        self,
        types: Iterable[str] | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        context_window: int = CONTEXT_WINDOW,
    ):
        names = list(ENTITY_REGISTRY) if types is None else list(types)
        unknown = sorted(set(names) - set(ENTITY_REGISTRY))
        if unknown:
            raise ValueError(f"unknown PII types: {', '.join(unknown)}")
        self.types = tuple(n for n in ENTITY_REGISTRY if n in names)
        self.threshold = threshold
        self.context_window = context_window
        self._priority = {name: i for i, name in enumerate(ENTITY_REGISTRY)}
        self._compiled = [
            _Compiled(entity, spec, re.compile(spec.regex), context_regex(entity))
            for entity in (ENTITY_REGISTRY[n] for n in self.types)
            for spec in entity.patterns
        ]

    def scan(self, text: str) -> list[Finding]:
        """Findings in ``text``, sorted by start, not overlapping, at or above threshold."""
        return self._resolve(self._candidates(text, 0, len(text), [0]))

    def scan_many(self, texts: Sequence[str | None]) -> list[list[Finding]]:
        """``scan`` for each text (``None`` gives no findings), offsets relative to each text."""
        results: list[list[Finding]] = [[] for _ in texts]
        index = 0
        while index < len(texts):
            chunk: list[str] = []
            starts: list[int] = []
            members: list[int] = []
            size = 0
            while index < len(texts) and (size < _CHUNK_CHARS or not chunk):
                text = texts[index]
                if text:
                    starts.append(size)
                    members.append(index)
                    chunk.append(text)
                    size += len(text) + len(_SEPARATOR)
                index += 1
            if not chunk:
                continue
            joined = _SEPARATOR.join(chunk)
            per_text: dict[int, list[Finding]] = {}
            for finding in self._candidates(joined, 0, len(joined), starts):
                slot = bisect.bisect_right(starts, finding.start) - 1
                base = starts[slot]
                if finding.end > base + len(chunk[slot]):
                    continue  # would span two texts; cannot happen with the current patterns
                per_text.setdefault(slot, []).append(_shift(finding, -base))
            for slot, found in per_text.items():
                results[members[slot]] = self._resolve(found)
        return results

    def _candidates(self, text: str, pos: int, endpos: int, starts: list[int]) -> list[Finding]:
        found: list[Finding] = []
        for compiled in self._compiled:
            spec = compiled.spec
            if spec.hint is not None and spec.hint not in text:
                continue
            for match in compiled.regex.finditer(text, pos, endpos):
                finding = self._judge(compiled, text, match.start(), match.end(), starts)
                if finding is not None:
                    found.append(finding)
        return found

    def _judge(
        self, compiled: _Compiled, text: str, start: int, end: int, starts: list[int]
    ) -> Finding | None:
        spec, entity = compiled.spec, compiled.entity
        verdict = validate(entity.validator, text[start:end])
        while verdict is Verdict.REJECTED and spec.trim and " " in text[start:end]:
            end = text.rindex(" ", start, end)
            verdict = validate(entity.validator, text[start:end])
        if verdict is Verdict.REJECTED:
            return None
        # The context window stops at the start of the text the match belongs to.
        own_start = starts[bisect.bisect_right(starts, start) - 1]
        window = compiled.context.search(text, max(own_start, start - self.context_window), start)
        if spec.requires_context and window is None:
            return None
        score = 1.0 if verdict is Verdict.CONFIRMED else spec.score
        if window is not None:
            score = min(1.0, score + CONTEXT_BOOST)
        if score < self.threshold:
            return None
        return Finding(
            type=entity.name,
            start=start,
            end=end,
            score=score,
            pattern=spec.name,
            verdict=verdict.value,
            context_word=window.group(0) if window is not None else None,
        )

    def _resolve(self, candidates: list[Finding]) -> list[Finding]:
        """Keep the best of overlapping findings: higher score, then longer, then priority."""
        ranked = sorted(
            candidates,
            key=lambda f: (-f.score, -(f.end - f.start), self._priority[f.type], f.start),
        )
        kept: list[Finding] = []
        for finding in ranked:
            if all(finding.end <= k.start or finding.start >= k.end for k in kept):
                kept.append(finding)
        return sorted(kept, key=lambda f: f.start)


def _shift(finding: Finding, offset: int) -> Finding:
    return Finding(
        type=finding.type,
        start=finding.start + offset,
        end=finding.end + offset,
        score=finding.score,
        pattern=finding.pattern,
        verdict=finding.verdict,
        context_word=finding.context_word,
    )
