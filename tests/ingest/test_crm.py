"""The CRM REST connector against a real local HTTP server: paging, incremental reads,
resume from a committed cursor, and every injected fault."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from ingest.crm import CrmClient, CrmCursor, CrmPage, format_time, parse_time
from ingest.crm_config import CrmEntityName, CrmSource
from pipelines.errors import ConfigError, ExitCode, SourceError
from tests.ingest.crm_server import ENTITIES, TOKEN, TOKEN_ENV, CrmServer, Fault

MakeSource = Callable[..., CrmSource]  # the make_source fixture (tests/ingest/conftest.py)


def read_all(
    client: CrmClient, entity: CrmEntityName, cursor: CrmCursor | None = None
) -> tuple[list[dict[str, Any]], CrmCursor | None, list[CrmPage]]:
    pages = list(client.pages(entity, cursor))
    records = [record for page in pages for record in page.records]
    return records, pages[-1].cursor if pages else cursor, pages


def keys(records: list[dict[str, Any]]) -> list[Any]:
    return [record["id"] for record in records]


def source_error(client: CrmClient, entity: CrmEntityName = "accounts") -> SourceError:
    with pytest.raises(SourceError) as caught:
        read_all(client, entity)
    error = caught.value
    assert error.exit_code == ExitCode.SOURCE
    assert TOKEN not in error.one_line()
    return error


@pytest.mark.parametrize("entity", ENTITIES)
def test_reads_every_record_once_in_order(
    crm_server: CrmServer, make_source: MakeSource, entity: CrmEntityName
) -> None:
    with CrmClient("crm", make_source()) as client:
        records, cursor, pages = read_all(client, entity)
    expected = sorted(crm_server.data[entity], key=lambda r: (parse_time(r["updated_at"]), r["id"]))
    assert keys(records) == keys(expected)
    assert len(pages) == -(-len(expected) // 4)
    assert [page.number for page in pages] == list(range(1, len(pages) + 1))
    assert cursor is not None
    assert cursor.entity == entity
    assert cursor.last_key == records[-1]["id"]
    assert cursor.updated_since == datetime.fromisoformat(records[-1]["updated_at"])
    # The first request has no updated_since; later ones send the same one with the cursor.
    assert "updated_since" not in crm_server.served[0].params


def test_tickets_dialogue_flattened_to_text_and_raw_json(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    with CrmClient("crm", make_source()) as client:
        records, _, _ = read_all(client, "tickets")
    originals = {r["id"]: r for r in crm_server.data["tickets"]}
    for record in records:
        turns = originals[record["id"]]["dialogue"]
        assert "dialogue" not in record
        assert json.loads(record["dialogue_json"]) == turns
        assert record["dialogue_text"].splitlines() == [f"{t['role']}: {t['text']}" for t in turns]
    chinese = next(r for r in records if r["language"] == "zh")
    assert "customer: " in chinese["dialogue_text"]
    assert "\nagent: " in chinese["dialogue_text"]
    assert "。" in chinese["dialogue_text"]
    assert "\\u" not in chinese["dialogue_json"]  # raw JSON kept readable, not escaped


def test_incremental_read_returns_only_changes_since_the_cursor(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    source = make_source()
    with CrmClient("crm", source) as client:
        first, cursor, _ = read_all(client, "contacts")
        assert cursor is not None

        assert cursor.updated_since is not None
        later = cursor.updated_since + timedelta(minutes=5)
        changed = [dict(r) for r in crm_server.data["contacts"][:3]]
        for record in changed:
            record["name"] = record["name"] + " (updated)"
            record["updated_at"] = later.isoformat()
        new = {"id": "C-99999", "account_id": 1000, "name": "新客户", "phone": None}
        new["updated_at"] = (later + timedelta(seconds=1)).isoformat()
        for record in [*changed, new]:
            crm_server.upsert("contacts", record)

        served_before = len(crm_server.served)
        second, cursor2, _ = read_all(client, "contacts", cursor)
        assert cursor.updated_since is not None
        sent = crm_server.served[served_before].params["updated_since"]
        assert sent == format_time(cursor.updated_since)
        assert sorted(keys(second)) == sorted([*keys(changed), "C-99999"])
        assert all(r["name"].endswith("(updated)") for r in second if r["id"] != "C-99999")
        assert cursor2 == CrmCursor(
            "contacts", updated_since=datetime.fromisoformat(new["updated_at"]), last_key="C-99999"
        )

        third, cursor3, pages = read_all(client, "contacts", cursor2)
    assert third == []
    assert cursor3 == cursor2  # nothing new: the cursor stays, the run commits nothing
    assert pages[0].duplicates == 1  # the record at the cursor itself is re-read, not re-sent
    assert len(first) == 20


def test_resume_after_crash_from_committed_cursor_loses_nothing(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    """Pages 1-2 committed with their cursor; page 3 read but the process dies before its
    commit. The next run starts from the committed summary and delivers page 3 onwards."""
    with CrmClient("crm", make_source(page_size=4)) as client:
        committed: list[dict[str, Any]] = []
        summary: dict[str, str] = {}
        for page in client.pages("tickets"):
            if page.number == 3:
                break  # crash: page 3's records and cursor never reach the lake
            committed.extend(page.records)
            summary = {"steward.run-id": "r1", **page.cursor.to_summary()}

        cursor = CrmCursor.from_summary(summary)
        assert cursor is not None
        # Groups of three equal timestamps with pages of four: the cursor sits inside a tie,
        # so the key tie-breaker is what keeps the rest of the group.
        same_time = [
            r for r in crm_server.data["tickets"] if r["updated_at"] == committed[-1]["updated_at"]
        ]
        assert len(same_time) > 1
        resumed, _, _ = read_all(client, "tickets", cursor)
    assert resumed[0]["updated_at"] == committed[-1]["updated_at"]

    all_keys = sorted(r["id"] for r in crm_server.data["tickets"])
    assert sorted(keys(committed) + keys(resumed)) == all_keys
    assert not set(keys(committed)) & set(keys(resumed))


def test_look_back_catches_a_late_commit_behind_the_cursor(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    with CrmClient("crm", make_source()) as client:
        _, cursor, _ = read_all(client, "accounts")
    assert cursor is not None and cursor.updated_since is not None
    # Committed at the source after our read, but stamped at (or before) the high-water mark
    # with a smaller key: a plain cursor cannot see it.
    late = {
        "id": 1,
        "name": "Late Ltd",
        "industry": "retail",
        "country": "US",
        "updated_at": cursor.updated_since.isoformat(),
    }
    crm_server.upsert("accounts", late)

    with CrmClient("crm", make_source()) as client:
        missed, _, _ = read_all(client, "accounts", cursor)
    assert missed == []

    with CrmClient("crm", make_source(lookback_s=120)) as client:
        again, cursor2, _ = read_all(client, "accounts", cursor)
    assert 1 in keys(again)
    # The window is re-delivered (duplicates downstream are harmless), the cursor never regresses.
    assert len(again) > 1
    assert cursor2 == cursor


def test_5xx_is_retried_then_the_read_completes(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    crm_server.inject(Fault("status", page=2, status_code=500, times=2))
    crm_server.inject(Fault("status", page=3, status_code=503))
    with CrmClient("crm", make_source()) as client:
        records, _, _ = read_all(client, "accounts")
    assert len(records) == 12
    assert [s.status for s in crm_server.pages_served("accounts", 2)] == [500, 500, 200]
    assert [s.status for s in crm_server.pages_served("accounts", 3)] == [503, 200]


def test_5xx_past_the_attempts_is_a_transient_error_naming_url_and_page(
    crm_server: CrmServer, make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    crm_server.inject(Fault("status", page=2, status_code=502, times=10))
    with caplog.at_level(logging.WARNING), CrmClient("crm", make_source()) as client:
        error = source_error(client)
    assert error.transient
    assert error.stage == "ingest"
    assert f"GET {crm_server.base_url}/v1/accounts?page_size=4&cursor=" in error.message
    assert "(page 2)" in error.message
    assert "HTTP 502 Bad Gateway" in error.message
    assert "4 attempt(s)" in error.message
    assert len(crm_server.pages_served("accounts", 2)) == 4
    assert "attempt 1 of 4" in caplog.text
    assert TOKEN not in caplog.text


def test_429_waits_retry_after_seconds(crm_server: CrmServer, make_source: MakeSource) -> None:
    crm_server.inject(Fault("retry_after", page=1, retry_after="1"))
    started = time.monotonic()
    with CrmClient("crm", make_source()) as client:
        records, _, _ = read_all(client, "accounts")
    assert time.monotonic() - started >= 0.95  # backoff alone would wait 0.01 s
    assert len(records) == 12
    assert [s.status for s in crm_server.pages_served("accounts", 1)] == [429, 200]


def test_503_with_retry_after_waits_what_it_says(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    crm_server.inject(Fault("status", page=1, status_code=503, retry_after="3600"))
    with CrmClient("crm", make_source(retry={"max_retry_after_s": 30})) as client:
        error = source_error(client)
    assert error.transient
    assert "HTTP 503 Service Unavailable: the server asks to wait 3600 s" in error.message


def test_429_waits_until_an_http_date(crm_server: CrmServer, make_source: MakeSource) -> None:
    # HTTP dates have whole seconds: two seconds ahead is at least one second away.
    when = datetime.now(UTC) + timedelta(seconds=2)
    crm_server.inject(Fault("retry_after", page=2, retry_after=format_datetime(when, usegmt=True)))
    started = time.monotonic()
    with CrmClient("crm", make_source()) as client:
        records, _, _ = read_all(client, "accounts")
    assert time.monotonic() - started >= 0.95
    assert len(records) == 12


def test_429_asking_longer_than_allowed_stops_with_a_transient_error(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    crm_server.inject(Fault("retry_after", page=1, retry_after="3600"))
    started = time.monotonic()
    with CrmClient("crm", make_source(retry={"max_retry_after_s": 30})) as client:
        error = source_error(client)
    assert time.monotonic() - started < 1
    assert error.transient
    assert "wait 3600 s" in error.message and "max_retry_after_s" in error.message


def test_a_slow_page_times_out_and_is_retried(
    crm_server: CrmServer, make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    source = make_source()
    crm_server.inject(Fault("slow", page=2, delay_s=source.timeouts.read * 2))
    with caplog.at_level(logging.WARNING), CrmClient("crm", source) as client:
        records, _, _ = read_all(client, "tickets")
    assert len(records) == 25
    assert "(page 2): timed out (ReadTimeout); attempt 1 of 4" in caplog.text


def test_a_page_slow_on_every_attempt_is_a_transient_timeout(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    source = make_source(retry={"attempts": 2, "initial_s": 0.01})
    crm_server.inject(Fault("slow", page=1, delay_s=source.timeouts.read * 2, times=2))
    with CrmClient("crm", source) as client:
        error = source_error(client)
    assert error.transient
    assert "timed out (ReadTimeout)" in error.message
    assert "(page 1)" in error.message


def test_truncated_json_is_retried(crm_server: CrmServer, make_source: MakeSource) -> None:
    crm_server.inject(Fault("truncate", page=3))
    crm_server.inject(Fault("cut", page=4))
    with CrmClient("crm", make_source()) as client:
        records, _, _ = read_all(client, "contacts")
    assert len(records) == 20
    assert [s.fault for s in crm_server.pages_served("contacts", 3)] == ["truncate", None]
    assert [s.fault for s in crm_server.pages_served("contacts", 4)] == ["cut", None]


def test_json_truncated_on_every_attempt_names_url_page_and_reason(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    crm_server.inject(Fault("truncate", page=3, times=10))
    with CrmClient("crm", make_source()) as client:
        error = source_error(client, "contacts")
    assert error.transient
    assert f"GET {crm_server.base_url}/v1/contacts?" in error.message
    assert "(page 3)" in error.message
    assert "invalid JSON, truncated or corrupt" in error.message


def test_a_repeated_page_is_delivered_once(crm_server: CrmServer, make_source: MakeSource) -> None:
    crm_server.inject(Fault("repeat", entity="tickets", page=3))
    with CrmClient("crm", make_source()) as client:
        records, _, pages = read_all(client, "tickets")
    assert sorted(keys(records)) == sorted(r["id"] for r in crm_server.data["tickets"])
    repeated = [page for page in pages if page.duplicates]
    assert len(repeated) == 1
    assert repeated[0].records == []
    assert repeated[0].duplicates == 4
    assert repeated[0].cursor == pages[repeated[0].number - 2].cursor


def test_a_server_that_never_advances_is_stopped(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    crm_server.inject(Fault("repeat", page=2, times=100))
    with CrmClient("crm", make_source()) as client:
        error = source_error(client)
    assert not error.transient
    assert "does not advance" in error.message


def test_a_bad_token_is_a_terminal_error_without_the_token(
    crm_server: CrmServer, make_source: MakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_source()
    wrong = "wrong-token-0123456789"
    monkeypatch.setenv(TOKEN_ENV, wrong)
    with CrmClient("crm", source) as client, pytest.raises(SourceError) as caught:
        read_all(client, "accounts")
    error = caught.value
    assert not error.transient
    assert "HTTP 401 Unauthorized" in error.message
    assert f"${TOKEN_ENV}" in error.message
    assert wrong not in error.one_line() and TOKEN not in error.one_line()
    assert len(crm_server.served) == 1  # no retry can help


def test_a_missing_token_variable_is_a_config_error(
    make_source: MakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_source()
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        CrmClient("crm", source)


def test_a_wrong_path_is_a_terminal_404(crm_server: CrmServer, make_source: MakeSource) -> None:
    entities = {"accounts": {"path": "/v1/acounts"}, "contacts": None, "tickets": None}
    with CrmClient("crm", make_source(entities=entities)) as client:
        error = source_error(client)
    assert not error.transient
    assert "HTTP 404 Not Found" in error.message
    assert "/v1/acounts" in error.message


def test_an_unreachable_server_is_transient(make_source: MakeSource) -> None:
    source = make_source(base_url="http://127.0.0.1:9", retry={"attempts": 2, "initial_s": 0})
    with CrmClient("crm", source) as client:
        error = source_error(client)
    assert error.transient
    assert "connection failed (ConnectError" in error.message


def test_a_record_without_its_key_is_a_terminal_error_naming_it(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    body = {"data": [{"id": 1, "updated_at": "2024-05-01T00:00:00Z"}, {"name": "x"}]}
    crm_server.inject(Fault("body", page=1, body={**body, "next_cursor": None}))
    with CrmClient("crm", make_source()) as client:
        error = source_error(client)
    assert not error.transient
    assert "(page 1), record 1: key field 'id' is None" in error.message


def test_a_response_that_is_not_an_export_page_is_terminal(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    crm_server.inject(Fault("body", page=1, body={"items": []}))
    with CrmClient("crm", make_source()) as client:
        error = source_error(client)
    assert not error.transient
    assert "not an export page" in error.message


def test_requests_are_paced_by_the_rate_limit(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    source = make_source(rate_limit={"requests_per_second": 20})
    started = time.monotonic()
    with CrmClient("crm", source) as client:
        _, _, pages = read_all(client, "accounts")
    assert len(pages) == 3
    assert time.monotonic() - started >= 2 / 20 * 0.95


def test_a_cursor_of_another_entity_is_refused_before_any_request(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    with CrmClient("crm", make_source()) as client, pytest.raises(ValueError, match="tickets"):
        client.pages("accounts", CrmCursor("tickets"))
    assert crm_server.served == []


def test_a_record_twice_on_one_page_is_delivered_once(
    crm_server: CrmServer, make_source: MakeSource
) -> None:
    record = {"id": 1, "updated_at": "2024-05-01T00:00:00Z"}
    crm_server.inject(Fault("body", page=1, body={"data": [record, record], "next_cursor": None}))
    with CrmClient("crm", make_source()) as client:
        records, cursor, pages = read_all(client, "accounts")
    assert records == [record]
    assert pages[0].duplicates == 1
    assert cursor == CrmCursor("accounts", parse_time(record["updated_at"]), 1)
