"""The engine-agnostic chain: every row tagged once, counts derived from the tags."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.chain import Chain, StageResult, rejected_table, stage_counts


class RejectNegative:
    """Quarantines rows whose ``x`` is negative."""

    name = "sign"
    added_fields = (pa.field("_sign_checked", pa.bool_()),)

    def process(self, batch: pa.Table) -> StageResult:
        bad = pc.less(batch["x"], 0)
        kept = batch.filter(pc.invert(bad))
        kept = kept.append_column("_sign_checked", pa.array([True] * kept.num_rows))
        rejected = batch.filter(bad)
        n = rejected.num_rows
        return StageResult(
            kept, rejected_table(rejected, ["sign.negative"] * n, ["x < 0"] * n), batch.slice(0, 0)
        )


class DropZero:
    name = "zero"
    added_fields = ()

    def process(self, batch: pa.Table) -> StageResult:
        zero = pc.equal(batch["x"], 0)
        dropped = batch.filter(zero)
        n = dropped.num_rows
        return StageResult(
            batch.filter(pc.invert(zero)),
            batch.slice(0, 0),
            rejected_table(dropped, ["zero.drop"] * n, ["x == 0"] * n),
        )


def test_every_row_tagged_exactly_once() -> None:
    chain = Chain([RejectNegative(), DropZero()])
    batch = pa.table({"k": ["a", "b", "c", "d", "e"], "x": [1, -1, 0, 5, -3]})
    tagged = chain.run(batch)
    assert tagged.schema == chain.output_schema(batch.schema)
    assert sorted(tagged["k"].to_pylist()) == ["a", "b", "c", "d", "e"]
    outcome = dict(zip(tagged["k"].to_pylist(), tagged["_outcome"].to_pylist(), strict=True))
    assert outcome == {"a": "keep", "b": "quarantine", "c": "drop", "d": "keep", "e": "quarantine"}
    rows = {r["k"]: r for r in tagged.to_pylist()}
    assert rows["b"]["_stage"] == "sign" and rows["b"]["_rule_id"] == "sign.negative"
    assert rows["b"]["_sign_checked"] is None  # rejected before the column existed
    assert rows["c"]["_stage"] == "zero" and rows["c"]["_sign_checked"] is True
    assert rows["a"]["_stage"] is None and rows["a"]["_rule_id"] is None


def test_stage_counts_balance_and_break_down_reasons() -> None:
    chain = Chain([RejectNegative(), DropZero()])
    tagged = chain.run(pa.table({"k": list("abcde"), "x": [1, -1, 0, 5, -3]}))
    tallies = Counter((r["_stage"], r["_outcome"], r["_rule_id"]) for r in tagged.to_pylist())
    counts = stage_counts("things", chain.stage_names, 5, [(*k, n) for k, n in tallies.items()])
    assert [(c.stage, c.rows_in, c.rows_out, c.quarantined, c.dropped) for c in counts] == [
        ("sign", 5, 3, 2, 0),
        ("zero", 3, 2, 0, 1),
    ]
    assert counts[0].reasons == {"quarantine:sign.negative": 2}
    assert counts[1].reasons == {"drop:zero.drop": 1}
    assert all(c.balanced for c in counts)


def test_lost_rows_unbalance_the_last_stage() -> None:
    # An engine that lost a kept row reports 1 keep instead of 2: the ledger must notice.
    tallies = [("sign", "quarantine", "sign.negative", 2), (None, "keep", None, 1)]
    counts = stage_counts("things", ["sign"], 4, tallies)
    assert not counts[-1].balanced
    assert "rows in 4 != out 1 + quarantined 2" in counts[-1].describe_imbalance()
