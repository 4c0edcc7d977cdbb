"""Which snapshots of which stream tables make one checkpoint (pure Python, no lake)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count
from typing import Any

from pipelines.stream_checkpoints import complete_checkpoints

_ids = count(1)


@dataclass
class Summary:
    additional_properties: dict[str, str]
    operation: str = "append"


@dataclass
class Snap:
    """The part of a pyiceberg Snapshot the grouping reads."""

    summary: Summary
    snapshot_id: int = field(default_factory=lambda: next(_ids))
    sequence_number: int = 0


def snap(job: str | None, checkpoint: int | None) -> Any:
    props = (
        {}
        if job is None
        else {"flink.job-id": job, "flink.max-committed-checkpoint-id": str(checkpoint)}
    )
    return Snap(Summary(props))


def keys(groups: list[Any]) -> list[tuple[str, int, dict[str, list[int]]]]:
    return [
        (
            g.job_id,
            g.checkpoint_id,
            {t: [s.snapshot_id for s in snaps] for t, snaps in g.snapshots.items()},
        )
        for g in groups
    ]


def test_a_checkpoint_is_complete_once_every_table_committed_it() -> None:
    a1, a2, a3 = snap("j", 1), snap("j", 2), snap("j", 3)
    b1, b2 = snap("j", 1), snap("j", 2)
    groups = complete_checkpoints({"a": [a1, a2, a3], "b": [b1, b2]})
    assert keys(groups) == [
        ("j", 1, {"a": [a1.snapshot_id], "b": [b1.snapshot_id]}),
        ("j", 2, {"a": [a2.snapshot_id], "b": [b2.snapshot_id]}),
    ]
    assert groups[-1].cursors == {"a": (a2.snapshot_id, 0), "b": (b2.snapshot_id, 0)}


def test_a_merged_commit_makes_its_checkpoint_the_boundary_for_every_table() -> None:
    # b's committer missed the notification of checkpoint 4 and committed 4 and 5 together.
    a4, a5, b5 = snap("j", 4), snap("j", 5), snap("j", 5)
    groups = complete_checkpoints({"a": [a4, a5], "b": [b5]})
    assert keys(groups) == [
        ("j", 5, {"a": [a4.snapshot_id, a5.snapshot_id], "b": [b5.snapshot_id]})
    ]


def test_a_restore_commit_under_the_old_job_id_joins_its_checkpoint() -> None:
    # The job died after a committed checkpoint 7 but before b did; the restored job commits
    # b's checkpoint 7 under the old job id, then both go on under the new one.
    a7, a8 = snap("old", 7), snap("new", 8)
    b7, b8 = snap("old", 7), snap("new", 8)
    groups = complete_checkpoints({"a": [a7, a8], "b": [b7, b8]})
    assert [(g.job_id, g.checkpoint_id) for g in groups] == [("old", 7), ("new", 8)]


def test_what_is_left_waits_until_the_job_has_stopped() -> None:
    manual = snap(None, None)  # a maintenance commit: not the stream's
    a9, b9 = snap("j", 9), snap("j", 9)
    a10 = snap("j", 10)
    pending = {"a": [a9, a10], "b": [b9, manual]}
    assert [g.checkpoint_id for g in complete_checkpoints(pending)] == [9]
    final = complete_checkpoints(pending, final=True)
    assert keys(final) == [
        ("j", 9, {"a": [a9.snapshot_id], "b": [b9.snapshot_id]}),
        ("j", 10, {"a": [a10.snapshot_id], "b": [manual.snapshot_id]}),
    ]
    assert complete_checkpoints({"a": [], "b": []}, final=True) == []
