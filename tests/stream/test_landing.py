"""The landing-folder tailer: appends, partial lines, rotation, truncation, multi-line events."""

from __future__ import annotations

import os
from pathlib import Path

from ingest.landing import LandingTailer, cursors_from_json, cursors_to_json
from ingest.stream_config import LandingSourceConfig


def tailer(folder: Path, fmt: str = "json", settle_s: float = 3600) -> LandingTailer:
    config = LandingSourceConfig(
        kind="landing",
        path=folder,
        settle_s=settle_s,
        files=[{"glob": "app.log*", "format": fmt, "entity": "app_logs"}],
    )
    return LandingTailer(config, {})


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b'{"n": 1}\n{"n": 2')
    t = tailer(tmp_path)
    events, cursors = t.poll({})
    assert [e.payload for e in events] == [b'{"n": 1}']
    with log.open("ab") as handle:
        handle.write(b'}\n{"n": 3}\n')
    events, cursors = t.poll(cursors_from_json(cursors_to_json(cursors)))
    assert [e.payload for e in events] == [b'{"n": 2}', b'{"n": 3}']
    assert events[0].origin == "app.log@9"
    assert t.poll(cursors)[0] == []


def test_rotation_neither_loses_nor_repeats(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a\nb\n")
    t = tailer(tmp_path)
    events, cursors = t.poll({})
    assert [e.payload for e in events] == [b"a", b"b"]
    with log.open("ab") as handle:
        handle.write(b"c\n")  # written just before the shipper rotates
    os.rename(log, tmp_path / "app.log.1")
    log.write_bytes(b"d\n")
    events, cursors = t.poll(cursors)
    assert sorted(e.payload for e in events) == [b"c", b"d"]
    assert t.poll(cursors)[0] == []


def test_truncated_file_is_read_again(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\ntwo\n")
    t = tailer(tmp_path)
    _, cursors = t.poll({})
    log.write_bytes(b"new\n")  # copy-truncate rotation: same inode, shorter
    events, _ = t.poll(cursors)
    assert [e.payload for e in events] == [b"new"]


def test_multiline_event_ends_at_the_next_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    first = (
        "2024-03-05 10:00:01,000 ERROR [w] a.B - failed\njava.lang.X: boom\n\tat a.B(B.java:1)\n"
    )
    log.write_text(first, encoding="utf-8")
    t = tailer(tmp_path, fmt="java_app")
    events, cursors = t.poll({})
    assert events == []  # more stack-trace lines may follow
    with log.open("a", encoding="utf-8") as handle:
        handle.write("2024-03-05 10:00:02,000 INFO [w] a.B - next\n")
    events, cursors = t.poll(cursors)
    assert [e.payload.decode() for e in events] == [first.rstrip("\n")]
    settled = tailer(tmp_path, fmt="java_app", settle_s=0)
    events, _ = settled.poll(cursors)
    assert [e.payload.decode() for e in events] == ["2024-03-05 10:00:02,000 INFO [w] a.B - next"]
