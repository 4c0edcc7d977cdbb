"""Generate with the offline substitute backend: real model, real lake, real rule packs."""

# Mojibake and full-width text are the inputs under test.
# ruff: noqa: RUF001

from __future__ import annotations

from pipelines.lake import Lake
from pipelines.ledger import RunLedger
from synth.config import SynthTask
from synth.embed import MiniLMEncoder
from synth.filters import QueuedSamples, SampleFilter
from synth.generate import featurizer_for, generate_task, load_seed
from synth.queue import ReviewQueue, Selection
from synth.samples import Candidate


def test_generate_filters_queues_and_tops_up(
    lake: Lake, task: SynthTask, encoder: MiniLMEncoder
) -> None:
    ledger = RunLedger(lake.config.ledger)
    with ledger.run("synth", "test") as run:
        report = generate_task(lake, task, encoder, run_id=run.run_id, run=run)
    data = report.to_json()
    assert report.filters.balanced
    assert data["requested"] == {"refund_request": 6, "damaged_item": 6}
    assert 0 < data["queued"] == data["kept"] <= 12
    assert (
        data["auto_approved"] + data["spot_checks"] + data["flagged"].get("label_mismatch", 0)
        == data["queued"]
    )
    assert sum(data["status"].values()) == data["queued"]
    assert set(data["diversity"]["synthetic"]) >= {"distinct_1", "distinct_2", "embedding_spread"}

    samples = ReviewQueue(lake).samples(Selection(task=task.name, status=None))
    seed_keys = set(load_seed(lake, task, featurizer_for(task, encoder)).keys)
    for sample in samples:
        assert sample.label in {"refund_request", "damaged_item"}
        assert sample.seed_keys and set(sample.seed_keys) <= seed_keys
        assert sample.generator == "substitute" and sample.generator_params["sample"]["ops"]
        assert sample.record["intent"] == sample.label and sample.text
    stages = {s["stage"]: s for s in ledger.show_run(report.run_id)["stages"]}
    assert stages["synth.filter"]["rows_in"] == data["generated"]
    assert stages["synth.filter"]["rows_out"] == data["kept"]

    # A second run only asks for the shortfall and queues nothing twice.
    again = generate_task(lake, task, encoder, run_id="again")
    live = sum(v for k, v in again.status.items() if k != "rejected")
    assert sum(again.requested.values()) == 12 - data["queued"]
    assert live <= 12
    ids = [s.sample_id for s in ReviewQueue(lake).samples(Selection(status=None))]
    assert len(ids) == len(set(ids))


def test_filters_drop_pii_dirty_memorised_and_duplicates(
    lake: Lake, task: SynthTask, encoder: MiniLMEncoder
) -> None:
    from cleaning_rules.engine import load_packs
    from privacy.detect import Detector
    from synth.exemplars import centroids

    featurizer = featurizer_for(task, encoder)
    seed = load_seed(lake, task, featurizer)
    real = seed.records[seed.labels.index("damaged_item")]["text"]

    def candidate(text: str, label: str = "damaged_item") -> Candidate:
        return Candidate({"text": text, "intent": label}, label, ("T1",))

    candidates = [
        candidate("The kettle arrived with a broken lid and a dent in the side."),
        candidate("The kettle arrived with a broken lid and a dent in the side."),
        candidate("My jacket came torn, write me at jane.doe@example.com please."),
        candidate("é˜¿èŽ«è¥¿æž—èƒ¶å›Š the lamp is broken"),
        candidate(real),
        candidate("Where is my order #12345? It has not arrived yet."),
    ]
    sample_filter = SampleFilter(
        task,
        load_packs(["common"]),
        Detector(),
        seed,
        featurizer,
        centroids(seed.vectors, seed.labels),
    )
    empty = QueuedSamples(frozenset(), featurizer.vectors([])[:0])
    kept, report = sample_filter.run(candidates, empty)
    assert report.balanced and report.generated == 6
    assert report.dropped["duplicate:exact"] == 1
    assert report.dropped["pii:EMAIL"] == 1
    assert report.dropped["cleaning:common.encoding.mojibake"] == 1
    assert report.dropped["memorised:embedding"] + report.dropped["memorised:ngram"] == 1
    assert report.flagged["label_mismatch"] == 1
    assert [k.flags for k in kept] == [(), ("label_mismatch",)]

    # Already queued: the same record again is a queued duplicate.
    queued = QueuedSamples(frozenset({kept[0].sample_id}), featurizer.vectors([kept[0].record]))
    _, again = sample_filter.run(candidates[:1], queued)
    assert again.dropped == {"duplicate:queued": 1}
