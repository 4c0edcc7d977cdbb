"""Log events: raw bytes from a topic or a file become typed events, or a reason they cannot.

A log format is data (``ingest.stream_config.LogFormat``): JSON objects, or a named regex per
log type. Two plain-text formats ship as examples, an nginx access log (``nginx_access``) and a
Java application log with multi-line stack traces (``java_app``); ``json`` reads JSON-lines
events. Parsing is pure Python so the Flink job and the batch reference share it.

A malformed event raises ``MalformedEvent`` with a rule id (``ingest.*``) and a reason; the
stream job routes it to ``quarantine.ingest`` with its topic/partition/offset or file/byte
offset, so nothing vanishes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import pyarrow as pa
import regex

from ingest.stream_config import LogFormat

BUILTIN_FORMATS: dict[str, LogFormat] = {
    "json": LogFormat(kind="json"),
    # nginx's default "combined" format. The message is the whole line: the logs pack's
    # health-check rule matches the request and status inside it.
    "nginx_access": LogFormat(
        kind="regex",
        pattern=(
            r"(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time>[^\]]+)\]"
            r' "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<body_bytes_sent>\d+|-)'
            r'(?: "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)")?'
        ),
        time_format="%d/%b/%Y:%H:%M:%S %z",
        level_field=None,
        logger_field=None,
        message_field=None,
    ),
    # Logback/log4j's usual pattern: "2024-03-05 10:00:00,123 ERROR [main] com.acme.App - text",
    # followed by stack-trace lines that belong to the same event.
    "java_app": LogFormat(
        kind="regex",
        pattern=(
            r"(?P<time>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}"
            r"(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)"
            r"\s+(?P<level>TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\s+\[(?P<thread>[^\]]*)\]"
            r"\s+(?P<logger>\S+)\s+-\s(?P<message>.*)"
        ),
        multiline_start=r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}",
        time_format="iso",
    ),
}

# The columns of an event row, before lineage (``ingest.lineage``-style) columns are added.
EVENT_FIELDS: tuple[pa.Field, ...] = (
    pa.field("event_time", pa.timestamp("us", tz="UTC")),
    pa.field("level", pa.string()),
    pa.field("logger", pa.string()),
    pa.field("message", pa.string()),
    pa.field("attributes", pa.string()),
    pa.field("origin", pa.string()),
)
EVENT_COLUMNS = tuple(f.name for f in EVENT_FIELDS)


class MalformedEvent(ValueError):
    """An event that cannot become a row: ``rule_id`` (``ingest.*``) and a reason."""

    def __init__(self, rule_id: str, reason: str):
        super().__init__(f"{rule_id}: {reason}")
        self.rule_id = rule_id
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    event_time: datetime
    level: str | None
    logger: str | None
    message: str | None
    attributes: str

    def as_row(self, origin: str) -> dict[str, Any]:
        return {
            "event_time": self.event_time,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "attributes": self.attributes,
            "origin": origin,
        }


def resolve_format(name: str, formats: Mapping[str, LogFormat]) -> LogFormat:
    """A format by name: the config's own first, then the built-ins."""
    found = formats.get(name) or BUILTIN_FORMATS.get(name)
    if found is None:
        known = sorted({*formats, *BUILTIN_FORMATS})
        raise KeyError(f"unknown log format {name!r} (known: {', '.join(known)})")
    return found


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern, regex.DOTALL)


def decode(payload: bytes, max_bytes: int) -> str:
    """UTF-8 text of an event, or ``MalformedEvent`` for an oversized or undecodable one."""
    if len(payload) > max_bytes:
        raise MalformedEvent(
            "ingest.too_large", f"event of {len(payload)} bytes is over the {max_bytes}-byte limit"
        )
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedEvent(
            "ingest.invalid_utf8", f"invalid UTF-8 at byte {exc.start}: {exc.reason}"
        ) from None


def parse_time(value: object, time_format: str) -> datetime:
    """A UTC datetime from a field value; ``MalformedEvent`` when it cannot be read."""
    try:
        if time_format in ("epoch_s", "epoch_ms"):
            seconds = float(value) / (1000 if time_format == "epoch_ms" else 1)  # type: ignore[arg-type]
            return datetime.fromtimestamp(seconds, UTC)
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {type(value).__name__}")
        if time_format == "iso":
            # Java logs write "2024-03-05 10:00:00,123": a comma before the fraction.
            parsed = datetime.fromisoformat(value.strip().replace(",", "."))
        else:
            parsed = datetime.strptime(value.strip(), time_format)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise MalformedEvent(
            "ingest.bad_timestamp", f"unparseable timestamp {str(value)[:64]!r}: {exc}"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def parse_event(text: str, fmt: LogFormat, timeout_s: float = 0.1) -> ParsedEvent:
    """One event's text as a ``ParsedEvent`` according to ``fmt``."""
    fields: dict[str, Any]
    if fmt.kind == "json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MalformedEvent(
                "ingest.bad_json",
                f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            ) from None
        if not isinstance(value, dict):
            raise MalformedEvent(
                "ingest.bad_json", f"a JSON event must be an object, not {type(value).__name__}"
            )
        fields = value
    else:
        assert fmt.pattern is not None
        stripped = text.rstrip("\r\n")
        try:
            match = _compiled(fmt.pattern).fullmatch(stripped, timeout=timeout_s)
        except TimeoutError:
            raise MalformedEvent(
                "ingest.timeout", f"format pattern ran over {timeout_s}s on this line"
            ) from None
        if match is None:
            raise MalformedEvent("ingest.no_match", "the line does not match the log format")
        fields = {k: v for k, v in match.groupdict().items() if v is not None}
        if fmt.message_field is None:
            fields["\0message"] = stripped

    if fmt.time_field is None:
        raise MalformedEvent("ingest.bad_timestamp", "the format names no time field")
    if fmt.time_field not in fields:
        raise MalformedEvent("ingest.bad_timestamp", f"no {fmt.time_field!r} field")
    event_time = parse_time(fields.pop(fmt.time_field), fmt.time_format)
    level = _text(fields.pop(fmt.level_field, None)) if fmt.level_field else None
    logger = _text(fields.pop(fmt.logger_field, None)) if fmt.logger_field else None
    if fmt.message_field is None:
        message = fields.pop("\0message", None)
    else:
        message = _text(fields.pop(fmt.message_field, None))
    attributes = json.dumps(fields, ensure_ascii=False, sort_keys=True, default=str)
    return ParsedEvent(event_time, level, logger, message, attributes)


__all__ = [
    "BUILTIN_FORMATS",
    "EVENT_COLUMNS",
    "EVENT_FIELDS",
    "MalformedEvent",
    "ParsedEvent",
    "decode",
    "parse_event",
    "parse_time",
    "resolve_format",
]
