"""The ledger's stream checkpoints: counts per checkpoint, cursors moved only when balanced."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import AccountingError
from pipelines.ledger import RunLedger, StageCounts


def test_a_balanced_checkpoint_moves_the_cursors_and_a_rerecord_replaces_it(
    tmp_path: Path,
) -> None:
    ledger = RunLedger(tmp_path / "ledger.db")
    counts = [StageCounts("ingest", "app_logs", rows_in=5, rows_out=4, quarantined=1)]
    with ledger.run("stream", "cfg") as run:
        run.record_checkpoint(
            "job-1", 3, counts, quality="passed", details={"rows": 4}, cursors={"t": (11, 2)}
        )
        run.record_checkpoint(
            "job-1", 3, counts, quality="passed", details={"rows": 4}, cursors={"t": (12, 3)}
        )
    shown = ledger.show_run(run.run_id)
    assert shown is not None
    assert [(c["checkpoint_id"], c["quality"], c["details"]) for c in shown["checkpoints"]] == [
        (3, "passed", {"rows": 4})
    ]
    assert shown["checkpoints"][0]["stages"][0]["rows_in"] == 5
    assert ledger.stream_cursors() == {"t": (12, 3)}


def test_an_unbalanced_checkpoint_is_recorded_and_keeps_the_cursors(tmp_path: Path) -> None:
    ledger = RunLedger(tmp_path / "ledger.db")
    lost = StageCounts("cleaning", "app_logs", rows_in=5, rows_out=3, quarantined=1)
    with (
        pytest.raises(AccountingError, match="checkpoint 7 of job job-1"),
        ledger.run("stream", "cfg") as run,
    ):
        run.record_checkpoint(
            "job-1", 7, [lost], quality="not checked", details={}, cursors={"t": (9, 1)}
        )
    shown = ledger.show_run(run.run_id)
    assert shown is not None and shown["status"] == "failed" and shown["exit_code"] == 7
    assert shown["checkpoints"][0]["stages"][0]["rows_out"] == 3
    assert ledger.stream_cursors() == {}
