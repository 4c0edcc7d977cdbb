"""The run ledger: balanced accounting, failure recording, no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import AccountingError, ExitCode, SourceError
from pipelines.ledger import RunLedger, StageCounts


def test_balanced_run_is_recorded(tmp_path: Path) -> None:
    ledger = RunLedger(tmp_path / "ledger.db")
    with ledger.run("batch", "abc123") as run:
        run.record_stage(
            StageCounts(
                "cleaning",
                "orders",
                rows_in=10,
                rows_out=7,
                quarantined=2,
                dropped=1,
                reasons={"quarantine:r1": 2, "drop:r2": 1},
            )
        )
        run.record_commit("steward.clean.orders", 42, "merge")
    shown = ledger.show_run(run.run_id)
    assert shown is not None
    assert shown["status"] == "succeeded"
    assert shown["exit_code"] == 0
    assert shown["stages"][0]["reasons"] == {"drop:r2": 1, "quarantine:r1": 2}
    assert shown["commits"] == [
        {
            "table_name": "steward.clean.orders",
            "snapshot_id": 42,
            "operation": "merge",
            "committed_at": shown["commits"][0]["committed_at"],
        }
    ]
    assert [r["run_id"] for r in ledger.list_runs()] == [run.run_id]


def test_unbalanced_stage_fails_the_run(tmp_path: Path) -> None:
    ledger = RunLedger(tmp_path / "ledger.db")
    with pytest.raises(AccountingError) as caught, ledger.run("batch", "abc") as run:
        run.record_stage(StageCounts("cleaning", "orders", rows_in=10, rows_out=8, quarantined=1))
    assert caught.value.exit_code == ExitCode.ACCOUNTING
    shown = ledger.show_run(run.run_id)
    assert shown is not None
    assert shown["status"] == "failed"
    assert shown["exit_code"] == ExitCode.ACCOUNTING
    assert "rows in 10 != out 8 + quarantined 1 + dropped 0" in shown["error"]
    # The counts as measured stay in the ledger for the post-mortem.
    assert shown["stages"][0]["rows_out"] == 8


def test_failure_records_the_one_line_error(tmp_path: Path) -> None:
    ledger = RunLedger(tmp_path / "ledger.db")
    with pytest.raises(SourceError), ledger.run("batch", "abc") as run:
        raise SourceError("source erp: database unreachable", transient=True, stage="ingest")
    shown = ledger.show_run(run.run_id)
    assert shown is not None
    assert shown["exit_code"] == ExitCode.SOURCE
    assert shown["error"] == (
        "SourceError [stage ingest] (transient): source erp: database unreachable"
    )


def test_unknown_run_and_newest_first(tmp_path: Path) -> None:
    ledger = RunLedger(tmp_path / "ledger.db")
    assert ledger.show_run("nope") is None
    ids = []
    for _ in range(3):
        with ledger.run("batch", "h") as run:
            ids.append(run.run_id)
    assert [r["run_id"] for r in ledger.list_runs(limit=2)] == ids[::-1][:2]
