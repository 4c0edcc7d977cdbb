"""Tail a landing folder: every complete event of every matching file, once.

A file is known by its identity (device and inode), not its name, so a rotation (rename, then
a new file under the old name) neither re-reads the renamed file nor skips the new one. For
each identity the cursor keeps the byte offset after the last event taken and a fingerprint
of the file's first bytes: a file cut shorter than its cursor (copy-truncate rotation) or whose
first bytes changed (an inode reused after a delete) is read again from the start.

Only complete events are taken: lines up to the last newline, and, for multi-line formats,
events followed by the start of the next one. The unterminated rest waits until the file has
not changed for ``settle_s`` (the shipper is done) or the next poll brings its end.

The cursors are plain data (``dict[str, FileCursor]``): the Flink job keeps them in checkpointed
state, so after a crash the job re-reads from the offsets of the checkpoint its Iceberg commits
match, and ``read_all`` uses the same code for the batch reference of a folder.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import regex

from ingest.logs import resolve_format
from ingest.stream_config import LandingSourceConfig, LogFormat

_HEAD_BYTES = 256


@dataclass(frozen=True, slots=True)
class FileCursor:
    offset: int
    head_len: int
    head_sha1: str


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One event's bytes and where it came from, before parsing."""

    payload: bytes
    entity: str
    format: str
    source_key: str  # stable identity of the position: file:<dev>-<ino>:<byte offset>
    origin: str  # what a person reads: <path relative to the folder>@<byte offset>


def cursors_to_json(cursors: Mapping[str, FileCursor]) -> str:
    return json.dumps({k: asdict(v) for k, v in sorted(cursors.items())})


def cursors_from_json(text: str | None) -> dict[str, FileCursor]:
    if not text:
        return {}
    return {k: FileCursor(**v) for k, v in json.loads(text).items()}


def _head_digest(path: Path, length: int) -> str:
    with path.open("rb") as handle:
        return hashlib.sha1(handle.read(length)).hexdigest()


class LandingTailer:
    """Reads new complete events from the files of one landing source."""

    def __init__(self, config: LandingSourceConfig, formats: Mapping[str, LogFormat]):
        self.config = config
        self.formats = {f.format: resolve_format(f.format, formats) for f in config.files}
        self._starts = {
            name: regex.compile(fmt.multiline_start.encode())
            for name, fmt in self.formats.items()
            if fmt.multiline_start
        }

    def _matching_files(self) -> list[tuple[Path, os.stat_result, int]]:
        """(path, stat, index of the files entry) for each matching file, oldest first, so
        a rotated file is finished before its successor is started."""
        root = self.config.path
        if not root.is_dir():
            return []
        found = []
        for path in root.rglob("*"):
            relative = path.relative_to(root).as_posix()
            if any(part.startswith(".") for part in path.relative_to(root).parts):
                continue  # hidden files are shippers' temporary files
            for index, entry in enumerate(self.config.files):
                if fnmatch.fnmatchcase(relative, entry.glob):
                    try:
                        stat = path.stat()
                    except FileNotFoundError:
                        break
                    if path.is_file():
                        found.append((path, stat, index))
                    break
        found.sort(key=lambda item: (item[1].st_mtime_ns, item[0].as_posix()))
        return found

    def poll(
        self, cursors: Mapping[str, FileCursor], *, now: float | None = None, final: bool = False
    ) -> tuple[list[SourceEvent], dict[str, FileCursor]]:
        """New complete events since ``cursors``, and the cursors after them.

        ``final`` takes unterminated tails as complete (the batch reference of a folder that
        is no longer written).
        """
        now = time.time() if now is None else now
        updated: dict[str, FileCursor] = {}
        events: list[SourceEvent] = []
        for path, stat, index in self._matching_files():
            identity = f"{stat.st_dev}-{stat.st_ino}"
            cursor = cursors.get(identity)
            if cursor is not None and not self._same_file(path, stat, cursor):
                cursor = None
            settled = final or (now - stat.st_mtime) >= self.config.settle_s
            taken, cursor = self._read(path, stat, identity, cursor, index, settled)
            events.extend(taken)
            updated[identity] = cursor
        return events, updated

    @staticmethod
    def _same_file(path: Path, stat: os.stat_result, cursor: FileCursor) -> bool:
        if stat.st_size < cursor.offset or stat.st_size < cursor.head_len:
            return False  # truncated in place
        try:
            return _head_digest(path, cursor.head_len) == cursor.head_sha1
        except FileNotFoundError:
            return True  # gone between stat and read; the next poll drops it

    def _read(
        self,
        path: Path,
        stat: os.stat_result,
        identity: str,
        cursor: FileCursor | None,
        index: int,
        settled: bool,
    ) -> tuple[list[SourceEvent], FileCursor]:
        entry = self.config.files[index]
        start = cursor.offset if cursor else 0
        try:
            with path.open("rb") as handle:
                head = handle.read(_HEAD_BYTES)
                handle.seek(start)
                data = handle.read(min(stat.st_size - start, self.config.read_chunk_bytes))
        except FileNotFoundError:
            return [], cursor or FileCursor(0, 0, hashlib.sha1(b"").hexdigest())
        head_cursor = (
            (cursor.head_len, cursor.head_sha1)
            if cursor and cursor.head_len >= len(head)
            else (len(head), hashlib.sha1(head).hexdigest())
        )
        # A chunk that stops before the end of the file is never "settled": its last line
        # continues in the next chunk.
        settled = settled and start + len(data) >= stat.st_size
        spans = self._event_spans(data, self._starts.get(entry.format), settled)
        relative = path.relative_to(self.config.path).as_posix()
        events = [
            SourceEvent(
                payload=data[begin:end].rstrip(b"\r\n"),
                entity=entry.entity,
                format=entry.format,
                source_key=f"file:{identity}:{start + begin}",
                origin=f"{relative}@{start + begin}",
            )
            for begin, end in spans
            if data[begin:end].strip()
        ]
        consumed = spans[-1][1] if spans else 0
        return events, FileCursor(start + consumed, *head_cursor)

    @staticmethod
    def _event_spans(
        data: bytes, multiline_start: regex.Pattern[bytes] | None, settled: bool
    ) -> list[tuple[int, int]]:
        """(begin, end) byte spans of the complete events in ``data``."""
        lines: list[tuple[int, int]] = []
        position = 0
        while position < len(data):
            newline = data.find(b"\n", position)
            if newline < 0:
                if settled:
                    lines.append((position, len(data)))
                break
            lines.append((position, newline + 1))
            position = newline + 1
        if multiline_start is None:
            return lines
        spans: list[tuple[int, int]] = []
        current: tuple[int, int] | None = None
        for begin, end in lines:
            if current is None or multiline_start.match(data, begin, end):
                if current is not None:
                    spans.append(current)
                current = (begin, end)
            else:
                current = (current[0], end)
        # The last event is complete only when nothing more can follow it.
        if current is not None and settled:
            spans.append(current)
        return spans

    def read_all(self) -> list[SourceEvent]:
        """Every event of the folder as it is now, tails included (the batch reference)."""
        events: list[SourceEvent] = []
        cursors: dict[str, FileCursor] = {}
        while True:
            taken, cursors = self.poll(cursors, final=True)
            if not taken:
                return events
            events.extend(taken)


__all__ = [
    "FileCursor",
    "LandingTailer",
    "SourceEvent",
    "cursors_from_json",
    "cursors_to_json",
]
