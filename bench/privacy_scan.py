"""PII scan benchmark: Steward's detector against Presidio's pattern recognizers.

Two measurements in one run, on the same data:

1. Quality: precision and recall per type on the labelled set (``privacy_evalset.py``), for
   Steward (all ten types) and for Presidio on the five types both have (credit card, e-mail,
   IP, IBAN, US SSN). A prediction counts when it overlaps a gold span of the same type.
2. Speed: MB/s over at least ``--mb`` MB of the same mixed text (the labelled lines repeated),
   Steward restricted to the shared five types and with all ten, against Presidio's five
   recognizers. Both scan 1 MiB chunks of joined lines, so neither pays per-line call overhead.
   The scanners take turns batch by batch, so that all three see the same load on a shared
   machine; wall-clock and process CPU time are both recorded, with the load average before
   and after, and the CPU time of garbage collections charged to the scanner whose turn
   they fell in. A full collection walks the bench's 100 MB of lists too and falls in the
   turn of whichever scanner's allocation sets it off, so the speed-ups are also given on CPU
   time without collections. ``--freeze-heap`` moves everything the bench holds before the
timed pass (the corpus, the labelled set, Presidio's and spaCy's modules) out of the
collector's way (``gc.freeze``), so that collections walk only what the scanners allocate.

Presidio runs without an NLP engine (no spaCy model is available here): its pattern
recognizers are called directly, so no context enhancement is applied on its side, and its
results are kept at its default score threshold (0).

    .venv/bin/python bench/privacy_scan.py --lines 20000 --mb 100 --freeze-heap
"""

from __future__ import annotations

import argparse
import gc
import json
import operator
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from privacy_evalset import Record, generate

from privacy.detect import Detector
from privacy.entities import CHECKSUMMED_TYPES

SHARED = {
    "BANK_CARD": "CREDIT_CARD",
    "EMAIL": "EMAIL_ADDRESS",
    "IP_ADDRESS": "IP_ADDRESS",
    "IBAN": "IBAN_CODE",
    "US_SSN": "US_SSN",
}
Span = tuple[str, int, int]
Scanner = Callable[[Sequence[str]], list[list[Span]]]


def steward_scanner(types: Sequence[str] | None) -> Scanner:
    detector = Detector(types)
    # attrgetter in C rather than a comprehension per text: the conversion is this script's
    # cost, not the detector's, and Presidio's wrapper below pays one append per result.
    span = operator.attrgetter("type", "start", "end")

    def scan(texts: Sequence[str]) -> list[list[Span]]:
        return [list(map(span, found)) for found in detector.scan_many(texts)]

    return scan


def presidio_scanner() -> Scanner:
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        UsSsnRecognizer,
    )

    recognizers = [
        CreditCardRecognizer(),
        EmailRecognizer(),
        IpRecognizer(),
        IbanRecognizer(),
        UsSsnRecognizer(),
    ]
    back = {v: k for k, v in SHARED.items()}
    separator = "\n"

    def scan(texts: Sequence[str]) -> list[list[Span]]:
        # Same chunking as Steward: join, scan once per chunk, map offsets back.
        out: list[list[Span]] = [[] for _ in texts]
        starts, pos = [], 0
        for text in texts:
            starts.append(pos)
            pos += len(text) + len(separator)
        joined = separator.join(texts)
        import bisect

        for recognizer in recognizers:
            for r in recognizer.analyze(joined, recognizer.supported_entities, None):
                i = bisect.bisect_right(starts, r.start) - 1
                out[i].append((back[r.entity_type], r.start - starts[i], r.end - starts[i]))
        return out

    return scan


def chunks(lines: Sequence[str], size: int = 1 << 20) -> list[list[str]]:
    out, current, chars = [], [], 0
    for line in lines:
        current.append(line)
        chars += len(line) + 1
        if chars >= size:
            out.append(current)
            current, chars = [], 0
    if current:
        out.append(current)
    return out


def quality(scanner: Scanner, records: Sequence[Record], types: Sequence[str]) -> dict[str, dict]:
    tp_pred: Counter[str] = Counter()
    tp_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    predictions: list[list[Span]] = []
    for batch in chunks([r.text for r in records]):
        predictions.extend(scanner(batch))
    for record, predicted in zip(records, predictions, strict=True):
        gold = [s for s in record.spans if s[0] in types]
        predicted = [p for p in predicted if p[0] in types]
        n_gold.update(g[0] for g in gold)
        n_pred.update(p[0] for p in predicted)
        for p in predicted:
            if any(g[0] == p[0] and g[1] < p[2] and p[1] < g[2] for g in gold):
                tp_pred[p[0]] += 1
        for g in gold:
            if any(g[0] == p[0] and g[1] < p[2] and p[1] < g[2] for p in predicted):
                tp_gold[g[0]] += 1
    return {
        t: {
            "gold": n_gold[t],
            "predicted": n_pred[t],
            "precision": round(tp_pred[t] / n_pred[t], 4) if n_pred[t] else None,
            "recall": round(tp_gold[t] / n_gold[t], 4) if n_gold[t] else None,
        }
        for t in types
    }


def throughput(
    scanners: dict[str, Scanner], batches: Sequence[list[str]], megabytes: float
) -> dict:
    """MB/s of each scanner over ``batches``, the scanners taking turns batch by batch.

    Interleaved, every scanner sees the same load on a shared machine, so the ratios hold
    even when the absolute figures move with the load.
    """
    wall = dict.fromkeys(scanners, 0.0)
    cpu = dict.fromkeys(scanners, 0.0)
    found = dict.fromkeys(scanners, 0)
    collector = CollectorClock()
    gc.callbacks.append(collector)
    load_before = os.getloadavg()[0]
    for batch in batches:
        for name, scanner in scanners.items():
            collector.running = name
            started, cpu_started = time.perf_counter(), time.process_time()
            found[name] += sum(len(f) for f in scanner(batch))
            wall[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - cpu_started
    collector.running = None
    gc.callbacks.remove(collector)
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return {
        name: {
            "seconds": round(wall[name], 2),
            "mb_per_s": round(megabytes / wall[name], 2),
            "cpu_seconds": round(cpu[name], 2),
            "cpu_mb_per_s": round(megabytes / cpu[name], 2),
            "load_average": load,
            "found": found[name],
            "gc_cpu_seconds": round(collector.seconds[name], 2),
            "full_collections": collector.full[name],
            "cpu_mb_per_s_without_gc": round(megabytes / (cpu[name] - collector.seconds[name]), 2),
        }
        for name in scanners
    }


class CollectorClock:
    """CPU seconds of garbage collection, charged to the scanner running when it happened.

    A full collection walks every container in the process, the bench's corpus included, and
    falls in the turn of whichever scanner's allocation set it off; counted, the figures show
    how much of a scanner's time that was.
    """

    def __init__(self) -> None:
        self.running: str | None = None
        self.seconds: Counter[str] = Counter()
        self.full: Counter[str] = Counter()
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if self.running is None:
            return
        if phase == "start":
            self._started = time.process_time()
            return
        self.seconds[self.running] += time.process_time() - self._started
        if info["generation"] == 2:
            self.full[self.running] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000, help="labelled lines")
    parser.add_argument("--mb", type=float, default=100.0, help="text scanned for speed")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--freeze-heap",
        action="store_true",
        help="keep what the bench holds before timing (data, imported libraries) out of "
        "garbage collections",
    )
    args = parser.parse_args()

    records = generate(args.lines, args.seed)
    texts = [r.text for r in records]
    unit = sum(len(t.encode("utf-8")) + 1 for t in texts)
    repeats = max(1, int(args.mb * 1e6 // unit) + 1)
    corpus = chunks(texts * repeats)
    megabytes = unit * repeats / 1e6

    shared = list(SHARED)
    all_types = Detector().types
    scanners = {
        "steward_shared5": (steward_scanner(shared), shared),
        "steward_all10": (steward_scanner(None), list(all_types)),
        "presidio_patterns5": (presidio_scanner(), shared),
    }
    results: dict[str, object] = {
        "labelled_lines": len(records),
        "gold_spans": sum(len(r.spans) for r in records),
        "speed_corpus_mb": round(megabytes, 1),
        "checksummed_types": list(CHECKSUMMED_TYPES),
        "heap_frozen": args.freeze_heap,
    }
    for name, (scanner, types) in scanners.items():
        results[name] = {"quality": quality(scanner, records, types)}
    if args.freeze_heap:
        # After the scanners are built: Presidio brings spaCy and its dependencies, hundreds
        # of thousands of objects that every full collection would walk otherwise.
        gc.collect()
        gc.freeze()
    speed = throughput({name: s for name, (s, _) in scanners.items()}, corpus, megabytes)
    for name in scanners:
        results[name]["speed"] = speed[name]  # type: ignore[index]
        print(name, json.dumps(speed[name]), flush=True)
    clocks = {"mb_per_s": "", "cpu_mb_per_s": "_cpu", "cpu_mb_per_s_without_gc": "_cpu_without_gc"}
    for clock, suffix in clocks.items():
        presidio = speed["presidio_patterns5"][clock]
        results[f"speedup_shared5{suffix}"] = round(speed["steward_shared5"][clock] / presidio, 1)
        results[f"speedup_all10{suffix}"] = round(speed["steward_all10"][clock] / presidio, 1)
    text = json.dumps(results, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
