"""The ``stream:`` section of ``pipeline.yaml``: where log events come from and how to parse them.

Two source kinds, chosen by ``kind``: ``kafka`` (topics of JSON events or plain-text lines, what
enterprises run) and ``landing`` (a folder shippers write JSON-lines and plain-text log files
into; the embedded default). Each topic or file pattern names a log *format* (built-ins in
``ingest.logs.BUILTIN_FORMATS``, or one defined under ``formats:``) and the *entity* its events
feed (``clean.<entity>``, and the rule packs that apply to it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import regex
from pydantic import AfterValidator, Field, model_validator

from pipelines.config_types import Identifier, StrictModel


def _compiles(value: str | None) -> str | None:
    if value is not None:
        try:
            regex.compile(value)
        except regex.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
    return value


Pattern = Annotated[str, AfterValidator(_compiles)]


class LogFormat(StrictModel):
    """How one log type becomes an event: JSON objects, or a regex with named groups.

    Named groups (regex) or keys (JSON) fill ``time_field``, ``level_field``,
    ``logger_field`` and ``message_field``; every other group or key lands in the event's
    ``attributes`` (JSON). ``message_field: null`` keeps the whole event text as the message
    (what the logs pack's health-check rule looks at for access logs).
    """

    kind: Literal["json", "regex"]
    pattern: Pattern | None = None
    # A line that matches starts a new event; other lines continue the previous one
    # (stack traces). Only the landing folder needs it: a Kafka record is one event.
    multiline_start: Pattern | None = None
    time_field: str | None = "time"
    # "iso" (ISO 8601), "epoch_s", "epoch_ms", or a strptime format. Times without an offset
    # are UTC.
    time_format: str = "iso"
    level_field: str | None = "level"
    logger_field: str | None = "logger"
    message_field: str | None = "message"

    @model_validator(mode="after")
    def _pattern_for_regex(self) -> LogFormat:
        if self.kind == "regex":
            if self.pattern is None:
                raise ValueError("a regex format needs `pattern` (named groups)")
            groups = set(regex.compile(self.pattern).groupindex)
            for name in (self.time_field, self.message_field):
                if name is not None and name not in groups:
                    raise ValueError(f"pattern has no named group {name!r}")
        elif self.pattern is not None:
            raise ValueError("`pattern` is for kind: regex")
        return self


class KafkaTopic(StrictModel):
    topic: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")
    format: Identifier
    entity: Identifier


class KafkaSourceConfig(StrictModel):
    """Topics read with Flink's Kafka source; offsets live in Flink checkpoints."""

    kind: Literal["kafka"]
    bootstrap_servers: str = Field(min_length=1)
    topics: list[KafkaTopic] = Field(min_length=1)
    group_id: str = "steward-stream"
    # Where a topic is read from the first time (no checkpoint yet).
    starting_offsets: Literal["earliest", "latest"] = "earliest"
    # Extra consumer properties (security.protocol, sasl.*); secrets go through *_env.
    properties: dict[str, str] = {}

    @model_validator(mode="after")
    def _unique_topics(self) -> KafkaSourceConfig:
        names = [t.topic for t in self.topics]
        if len(names) != len(set(names)):
            raise ValueError("a topic is listed twice")
        return self


class LandingFiles(StrictModel):
    """Files of one log type in the landing folder, by glob (relative to the folder)."""

    glob: str = Field(min_length=1)
    format: Identifier
    entity: Identifier


class LandingSourceConfig(StrictModel):
    """A folder shippers write into: appended files are tailed, rotated files followed."""

    kind: Literal["landing"]
    path: Path
    files: list[LandingFiles] = Field(min_length=1)
    # A last line without a newline (or a last multi-line event) is taken once the file has
    # not changed for this long: until then the shipper may still be writing it.
    settle_s: float = Field(default=5.0, ge=0)
    # Upper bound on bytes read per file and poll, so one huge file cannot stall the others.
    read_chunk_bytes: int = Field(default=8 * 1024 * 1024, ge=4096)


StreamSource = Annotated[KafkaSourceConfig | LandingSourceConfig, Field(discriminator="kind")]


class StreamConfig(StrictModel):
    """The ``stream:`` section: sources, formats and the job's knobs."""

    sources: dict[Identifier, StreamSource] = Field(min_length=1)
    formats: dict[Identifier, LogFormat] = {}
    # Iceberg commits happen on checkpoints: this is the freshness floor of the lake.
    checkpoint_interval_ms: int = Field(default=5000, ge=200)
    parallelism: int = Field(default=1, ge=1, le=256)
    # How often the landing folder is scanned.
    poll_interval_ms: int = Field(default=500, ge=50)
    # Events above this size go to quarantine (rule ingest.too_large) instead of the lake.
    max_event_bytes: int = Field(default=1024 * 1024, ge=64)
    # Checkpoints, savepoints and --once progress; default <lake.root>/stream.
    state_dir: Path | None = None
    # --once stops when every source is caught up, or when nothing new arrived this long.
    once_idle_timeout_s: float = Field(default=30.0, gt=0)
    # Time limit per regex match while parsing a line (a runaway pattern quarantines it).
    parse_timeout_s: float = Field(default=0.1, gt=0, le=10)

    def resolved(self, base: Path) -> StreamConfig:
        """Anchor relative landing paths and ``state_dir`` at ``base`` (the config's folder)."""

        def anchor(path: Path) -> Path:
            return path if path.is_absolute() else (base / path).resolve()

        sources = {
            name: source.model_copy(update={"path": anchor(source.path)})
            if isinstance(source, LandingSourceConfig)
            else source
            for name, source in self.sources.items()
        }
        update: dict[str, object] = {"sources": sources}
        if self.state_dir is not None:
            update["state_dir"] = anchor(self.state_dir)
        return self.model_copy(update=update)


__all__ = [
    "KafkaSourceConfig",
    "KafkaTopic",
    "LandingFiles",
    "LandingSourceConfig",
    "LogFormat",
    "StreamConfig",
]
