"""CRM config validation, the cursor's snapshot-summary form, and the connector's pure parts."""

# Chinese support text uses full-width punctuation, as real tickets do.
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from ingest.crm import CrmCursor, flatten_dialogue, format_time, parse_time, retry_after_seconds
from ingest.crm_config import CrmDialogue, CrmSource
from pipelines.errors import ConfigError, LakeError
from pipelines.yaml_models import load_yaml_model

MINIMAL = """\
kind: rest
base_url: https://crm.example.com/api/
token_env: CRM_TOKEN
"""


def load(tmp_path: Path, text: str) -> CrmSource:
    path = tmp_path / "crm.yaml"
    path.write_text(text, encoding="utf-8")
    return load_yaml_model(path, CrmSource)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.message


def test_minimal_config_has_all_three_entities(tmp_path: Path) -> None:
    source = load(tmp_path, MINIMAL)
    assert source.base_url == "https://crm.example.com/api"
    assert source.entity("accounts").path == "/v1/accounts"
    assert source.entity("tickets").dialogue == CrmDialogue()
    assert source.entity("contacts").dialogue is None
    assert source.lookback_s == 0


def test_an_entity_left_out_is_not_readable(tmp_path: Path) -> None:
    source = load(tmp_path, MINIMAL + "entities:\n  accounts: null\n")
    with pytest.raises(ConfigError, match=r"'accounts' is not configured.*contacts"):
        source.entity("accounts")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("timeout: 5\n", "crm.yaml:4: timeout: Extra inputs are not permitted"),
        ("entities:\n  tickets: {path: v1/tickets}\n", "crm.yaml:5: entities.tickets.path:"),
        (
            "entities:\n  tickets:\n    path: https://evil.example.com/x\n",
            "crm.yaml:6: entities.tickets.path: must be a path starting with '/'",
        ),
        ("entities:\n  leads: {path: /v1/leads}\n", "crm.yaml:5: entities.leads: Extra inputs"),
        ("entities:\n  contacts: {path: /c, key: 'contact id'}\n", "entities.contacts.key"),
        ("retry: {attempts: 0}\n", "crm.yaml:4: retry.attempts:"),
        ("rate_limit: {requests_per_second: 0}\n", "rate_limit.requests_per_second"),
        (
            "entities: {accounts: null, contacts: null, tickets: null}\n",
            "configure at least one of accounts, contacts, tickets",
        ),
    ],
)
def test_invalid_config_names_line_and_field(tmp_path: Path, extra: str, expected: str) -> None:
    assert expected in error_of(tmp_path, MINIMAL + extra)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://crm.example.com", "http:// or https://"),
        ("https://user:pw@crm.example.com", "must not carry credentials"),
        ("https://crm.example.com/api?token=abc", "must not carry a query"),
    ],
)
def test_base_url_is_a_plain_http_url(tmp_path: Path, url: str, reason: str) -> None:
    text = MINIMAL.replace("https://crm.example.com/api/", url)
    message = error_of(tmp_path, text)
    assert "crm.yaml:2: base_url:" in message and reason in message


def test_token_is_read_from_the_environment_and_kept_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = load(tmp_path, MINIMAL)
    monkeypatch.setenv("CRM_TOKEN", "tok-123")
    token = source.token("crm")
    assert token.get_secret_value() == "tok-123"
    assert "tok-123" not in repr(token)
    monkeypatch.setenv("CRM_TOKEN", "  ")
    with pytest.raises(ConfigError, match="source crm: environment variable CRM_TOKEN"):
        source.token("crm")


@pytest.mark.parametrize("key", [42, "T-000042", "客户-7", None])
def test_cursor_round_trips_through_a_snapshot_summary(key: int | str | None) -> None:
    cursor = CrmCursor("tickets", datetime(2024, 5, 1, 8, 30, 0, 123456, tzinfo=UTC), key)
    summary = cursor.to_summary()
    assert all(isinstance(v, str) for v in summary.values())
    assert summary["steward.crm.cursor.updated-since"] == "2024-05-01T08:30:00.123456Z"
    # The summary shares the snapshot with other properties (run id, operation…).
    assert CrmCursor.from_summary({"operation": "append", **summary}) == cursor


def test_an_empty_cursor_round_trips() -> None:
    cursor = CrmCursor("accounts")
    assert CrmCursor.from_summary(cursor.to_summary()) == cursor


def test_a_summary_without_a_cursor_gives_none() -> None:
    assert CrmCursor.from_summary({"operation": "append", "steward.run-id": "r1"}) is None


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("updated-since", "yesterday", "not an ISO-8601 timestamp"),
        ("last-key", "{not json", "not JSON"),
        ("last-key", "[1]", "expected a string, an integer or null"),
        ("version", "2", "expected 1"),
    ],
)
def test_a_malformed_cursor_is_a_lake_error(field: str, value: str, reason: str) -> None:
    summary = {**CrmCursor("accounts").to_summary(), f"steward.crm.cursor.{field}": value}
    with pytest.raises(LakeError, match=reason) as caught:
        CrmCursor.from_summary(summary)
    assert f"steward.crm.cursor.{field}={value!r}" in caught.value.message


def test_timestamps_are_normalised_to_utc() -> None:
    assert parse_time("2024-05-01T16:00:00+08:00") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert parse_time("2024-05-01T08:00:00") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert format_time(parse_time("2024-05-01T16:00:00+08:00")) == "2024-05-01T08:00:00Z"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    later = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds(" 1.5 ", now) == 1.5
    assert retry_after_seconds(format_datetime(later, usegmt=True), now) == 30
    assert retry_after_seconds("Wed, 01 May 2024 11:00:00 GMT", now) == 0  # in the past
    assert retry_after_seconds("-5", now) == 0
    for unreadable in (None, "", "soon", "inf", "nan"):
        assert retry_after_seconds(unreadable, now) is None


def test_dialogue_flattening_keeps_every_word() -> None:
    dialogue = CrmDialogue()
    record = {
        "id": "T-1",
        "dialogue": [
            {"role": "customer", "text": "退款什么时候到账？"},
            {"role": "agent", "text": "三个工作日内。", "at": "2024-05-01T08:00:00Z"},
            "system: ticket closed",
            {"role": "bot", "attachment": "invoice.pdf"},
            {"text": "no speaker"},
        ],
    }
    flat = flatten_dialogue(record, dialogue)
    assert flat["dialogue_text"].splitlines() == [
        "customer: 退款什么时候到账？",
        "agent: 三个工作日内。",
        "system: ticket closed",
        '{"role":"bot","attachment":"invoice.pdf"}',
        "no speaker",
    ]
    assert "退款" in flat["dialogue_json"]
    assert "dialogue" not in flat and flat["id"] == "T-1"
    assert flatten_dialogue({"id": 1}, dialogue) == {
        "id": 1,
        "dialogue_text": None,
        "dialogue_json": None,
    }
    assert flatten_dialogue({"id": 2, "dialogue": "plain text"}, dialogue)["dialogue_text"] == (
        "plain text"
    )
