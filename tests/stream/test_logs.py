"""Log parsing: named regex per log type, JSON events, and every kind of malformed event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest.logs import BUILTIN_FORMATS, MalformedEvent, decode, parse_event

NGINX = BUILTIN_FORMATS["nginx_access"]
JAVA = BUILTIN_FORMATS["java_app"]
JSON = BUILTIN_FORMATS["json"]


def test_nginx_access_line() -> None:
    line = '10.0.0.9 - bob [05/Mar/2024:10:00:02 +0800] "GET /api/x HTTP/1.1" 404 512 "-" "curl/8"'
    event = parse_event(line, NGINX)
    assert event.event_time == datetime(2024, 3, 5, 2, 0, 2, tzinfo=UTC)
    assert event.message == line
    attributes = json.loads(event.attributes)
    assert attributes["status"] == "404" and attributes["remote_user"] == "bob"
    assert attributes["request"] == "GET /api/x HTTP/1.1"


def test_java_event_keeps_its_stack_trace() -> None:
    text = (
        "2024-03-05 10:00:01,250 ERROR [worker-1] com.acme.Job - failed\n"
        "java.lang.IllegalStateException: boom\n\tat com.acme.Job.run(Job.java:42)"
    )
    event = parse_event(text, JAVA)
    assert event.level == "ERROR" and event.logger == "com.acme.Job"
    assert event.event_time == datetime(2024, 3, 5, 10, 0, 1, 250000, tzinfo=UTC)
    assert event.message is not None and event.message.endswith("(Job.java:42)")
    assert json.loads(event.attributes) == {"thread": "worker-1"}


def test_json_event_fields() -> None:
    event = parse_event(
        '{"time": "2024-03-05T10:00:00+01:00", "level": "WARN", "message": "hi", "user": 7}', JSON
    )
    assert event.event_time == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    assert (event.level, event.message, json.loads(event.attributes)) == ("WARN", "hi", {"user": 7})


@pytest.mark.parametrize(
    ("payload", "fmt", "rule_id"),
    [
        (b'{"time": "2024-03-05T10:00:00Z", "message": ', JSON, "ingest.bad_json"),
        (b"[1, 2]", JSON, "ingest.bad_json"),
        (b'{"time": "yesterday", "message": "x"}', JSON, "ingest.bad_timestamp"),
        (b'{"message": "no time"}', JSON, "ingest.bad_timestamp"),
        (b"\xff\xfe not utf-8", JSON, "ingest.invalid_utf8"),
        (b"x" * 200, JSON, "ingest.too_large"),
        (b"not an access line", NGINX, "ingest.no_match"),
        (
            b'1.2.3.4 - - [99/Foo/2024:10:00:00 +0800] "GET / HTTP/1.1" 200 1',
            NGINX,
            "ingest.bad_timestamp",
        ),
    ],
)
def test_malformed_events_name_their_rule(payload: bytes, fmt: object, rule_id: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_event(decode(payload, max_bytes=100), fmt)  # type: ignore[arg-type]
    assert caught.value.rule_id == rule_id
    assert caught.value.reason
