"""Which snapshots of which stream tables make one checkpoint (pure Python, no lake)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count
from typing import Any

from pipelines.stream_checkpoints import checkpoint_groups, merged

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


def test_checkpoints_below_the_newest_one_committed_are_settled() -> None:
    a1, a2, a3 = snap("j", 1), snap("j", 2), snap("j", 3)
    b2 = snap("j", 2)  # b received no rows in checkpoints 1 and 3: no commit there
    pending = {"a": [a1, a2, a3], "b": [b2]}
    groups = checkpoint_groups(pending)
    assert keys(groups) == [
        ("j", 1, {"a": [a1.snapshot_id], "b": []}),
        ("j", 2, {"a": [a2.snapshot_id], "b": [b2.snapshot_id]}),
    ]
    assert groups[0].cursors == {"a": (a1.snapshot_id, 0)}
    assert groups[1].cursors == {"a": (a2.snapshot_id, 0), "b": (b2.snapshot_id, 0)}
    # Once the job has stopped, the newest checkpoint is settled too.
    assert [g.checkpoint_id for g in checkpoint_groups(pending, final=True)] == [1, 2, 3]


def test_two_checkpoints_one_committer_merged_are_handled_as_one() -> None:
    # b's committer missed the notification of checkpoint 4 and committed 4 and 5 together.
    a4, a5, b5 = snap("j", 4), snap("j", 5), snap("j", 5)
    groups = checkpoint_groups({"a": [a4, a5], "b": [b5]}, final=True)
    assert [g.checkpoint_id for g in groups] == [4, 5]
    both = merged(groups[0], groups[1])
    assert keys([both]) == [
        ("j", 5, {"a": [a4.snapshot_id, a5.snapshot_id], "b": [b5.snapshot_id]})
    ]
    assert both.cursors == {"a": (a5.snapshot_id, 0), "b": (b5.snapshot_id, 0)}


def test_a_restore_commit_under_the_old_job_id_keeps_its_checkpoint() -> None:
    # The job died after a committed checkpoint 7 but before b did; the restored job commits
    # b's checkpoint 7 under the old job id, then both go on under the new one.
    a7, a8 = snap("old", 7), snap("new", 8)
    b7, b8 = snap("old", 7), snap("new", 8)
    groups = checkpoint_groups({"a": [a7, a8], "b": [b7, b8]}, final=True)
    assert [(g.job_id, g.checkpoint_id) for g in groups] == [("old", 7), ("new", 8)]


def test_a_commit_that_is_not_the_streams_goes_with_the_one_before_it() -> None:
    manual = snap(None, None)  # a maintenance commit
    a9, a10, b9 = snap("j", 9), snap("j", 10), snap("j", 9)
    groups = checkpoint_groups({"a": [a9, a10], "b": [b9, manual]})
    assert keys(groups) == [
        ("j", 9, {"a": [a9.snapshot_id], "b": [b9.snapshot_id, manual.snapshot_id]})
    ]
    assert checkpoint_groups({"a": [], "b": [manual]}) == []
    [leftover] = checkpoint_groups({"a": [], "b": [manual]}, final=True)
    assert leftover.cursors == {"b": (manual.snapshot_id, 0)}


def test_a_checkpoint_flink_has_completed_after_settles_the_one_before() -> None:
    # Nothing arrived after checkpoint 3: no table commits 4, but Flink completing 4 means
    # every committer has handled 3.
    a3 = snap("j", 3)
    assert checkpoint_groups({"a": [a3], "b": []}) == []
    assert checkpoint_groups({"a": [a3], "b": []}, completed=3) == []
    assert [g.checkpoint_id for g in checkpoint_groups({"a": [a3], "b": []}, completed=4)] == [3]
