"""Entity contracts: the shipped ones load and fit their data; mistakes are reported with
file:line."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.contracts import EntityContract, QualityConfig, load_contract, load_contracts
from pipelines.errors import ConfigError
from pipelines.flink_events import SOURCE_SCHEMA, parse_events
from pipelines.quality import schema_problems
from pipelines.quality_stage import QualityStage

GOOD = """\
entity: things
version: 1
description: Things.
key: thing_id
columns:
  - {name: thing_id, type: integer, required: true, description: Id.}
  - {name: label, type: string, description: Label.}
"""


def write(tmp_path: Path, text: str, name: str = "things.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_entities_have_contracts(contracts: dict[str, EntityContract]) -> None:
    assert sorted(contracts) == [
        "access_logs",
        "accounts",
        "app_logs",
        "contacts",
        "customers",
        "invoices",
        "medical_orders",
        "orders",
        "tickets",
    ]
    orders = contracts["orders"]
    assert orders.key == ["order_id"]
    assert orders.column("status").allowed == [
        "pending",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
        "refunded",
    ]
    assert [c.name for c in orders.columns if c.pii_free] == ["note"]
    assert all(c.description for c in contracts["customers"].columns)


def test_a_minimal_contract_loads(tmp_path: Path) -> None:
    contract = load_contract(write(tmp_path, GOOD))
    assert contract.key == ["thing_id"]
    assert QualityConfig().max_drop_for(contract) == 0.5


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        (
            "expectations:\n  - {name: things.x, expect: expect_nonsense, column: label}\n",
            9,
            "expectations[0].expect: unknown expectation 'expect_nonsense'",
        ),
        (
            "expectations:\n  - {name: things.x, expect: expect_column_values_to_be_unique}\n",
            9,
            "needs a column",
        ),
        ("max_row_drop: 1.5\n", 8, "max_row_drop: Input should be less than or equal to 1"),
        ("colour: red\n", 8, "colour: Extra inputs are not permitted"),
    ],
)
def test_mistakes_name_file_line_and_field(
    tmp_path: Path, extra: str, line: int, message: str
) -> None:
    path = write(tmp_path, GOOD + extra)
    with pytest.raises(ConfigError) as caught:
        load_contract(path)
    assert f"{path}:{line}:" in caught.value.message
    assert message in caught.value.message


def test_column_level_mistakes(tmp_path: Path) -> None:
    bad = GOOD.replace(
        "{name: label, type: string, description: Label.}",
        "{name: label, type: integer, regex: '[', description: Label.}",
    )
    with pytest.raises(ConfigError) as caught:
        load_contract(write(tmp_path, bad))
    assert f"{tmp_path / 'things.yaml'}:7: columns[1].regex" in caught.value.message
    assert "invalid regular expression" in caught.value.message


def test_key_must_be_a_column_and_entity_must_match_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key columns not among the columns: nope"):
        load_contract(write(tmp_path, GOOD.replace("key: thing_id", "key: [nope]")))
    with pytest.raises(ConfigError, match="does not match the file name"):
        load_contract(write(tmp_path, GOOD, "other.yaml"))


def test_contracts_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such contracts folder"):
        load_contracts(tmp_path / "missing")


def test_the_log_contracts_fit_what_the_log_formats_parse(
    contracts: dict[str, EntityContract],
) -> None:
    """The stream entities' contracts against events parsed by the built-in formats: every
    event passes, and one without what the contract requires is quarantined by rule."""
    sources = [
        ("app_logs", "java_app", b"2024-03-05 10:00:00,123 ERROR [main] com.acme.App - disk full"),
        ("app_logs", "json", b'{"time": "2024-03-05T10:00:01Z", "message": "queue depth 12"}'),
        (
            "access_logs",
            "nginx_access",
            b'203.0.113.9 - - [05/Mar/2024:10:00:02 +0000] "GET /health HTTP/1.1" 200 2'
            b' "-" "curl/8.0"',
        ),
    ]
    batch = pa.Table.from_pylist(
        [
            {
                "payload": payload,
                "source": "shipper",
                "entity": entity,
                "format": fmt,
                "source_key": f"{fmt}.log:{offset}",
                "origin": f"{fmt}.log",
            }
            for offset, (entity, fmt, payload) in enumerate(sources)
        ],
        schema=SOURCE_SCHEMA,
    )
    events, malformed = parse_events(batch, {}, run_id="r1", max_event_bytes=1 << 20)
    assert malformed.num_rows == 0
    stage = QualityStage(contracts)
    for entity, count in (("app_logs", 2), ("access_logs", 1)):
        rows = events.filter(pc.equal(events["_entity"], entity))
        assert schema_problems(contracts[entity], rows.schema) == []
        result = stage.process(rows)
        assert result.kept.num_rows == rows.num_rows == count

    access = events.filter(pc.equal(events["_entity"], "access_logs"))
    position = access.schema.get_field_index("origin")
    orphan = access.set_column(position, access.schema.field(position), pa.nulls(1, pa.string()))
    result = stage.process(orphan)
    assert result.kept.num_rows == 0
    assert result.quarantined["_rule_id"].to_pylist() == ["quality.access_logs.origin.required"]
