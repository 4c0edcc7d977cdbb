"""Quality gates with real Great Expectations (ephemeral context, pandas engine)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from pipelines.chain import Chain
from pipelines.commands.quality import quality_app
from pipelines.contracts import EntityContract, QualityConfig
from pipelines.errors import ExitCode, QualityGateFailed
from pipelines.quality import (
    QualityGate,
    ZoneStats,
    check_batch,
    contract_checks,
    gx_runtime,
    raise_if_failed,
    schema_problems,
    to_pandas,
)
from pipelines.quality_stage import QualityStage

from .conftest import orders, replace, write_config

LEAKED_PHONE = "请联系 13812345678 确认"

# GX imports pyspark, whose version checks warn on import; nothing here to act on.
pytestmark = pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning")

# The group as cli.py mounts it (a one-command Typer alone would take no command name).
cli = typer.Typer()
cli.add_typer(quality_app, name="quality")


def test_checks_from_a_contract(contracts: dict[str, EntityContract]) -> None:
    checks = {c.name: c for c in contract_checks(contracts["orders"])}
    assert checks["orders.key.unique"].level == "batch"
    assert checks["orders.currency.allowed"].kwargs == {"value_set": ["CNY", "USD", "EUR"]}
    assert checks["orders.note.no_pii"].expectation == "expect_column_values_to_be_free_of_pii"
    assert checks["orders.status.mostly_settled"].level == "batch"  # steward-added
    assert checks["orders.note.no_pii"].rule_id == "quality.orders.note.no_pii"
    assert "orders.row_count" not in checks  # nothing to compare a first run with

    with_history = contract_checks(
        contracts["orders"], QualityConfig(max_row_drop=0.25), previous_rows=101
    )
    [row_count] = [c for c in with_history if c.name == "orders.row_count"]
    assert row_count.kwargs["min_value"] == 76  # ceil(101 * 0.75)


def test_schema_problems(contracts: dict[str, EntityContract]) -> None:
    good = orders()
    assert schema_problems(contracts["orders"], good.schema) == []
    retyped = good.set_column(
        good.schema.get_field_index("amount"),
        "amount",
        pa.array([str(v) for v in good["amount"].to_pylist()]),
    ).drop_columns(["status"])
    assert schema_problems(contracts["orders"], retyped.schema) == [
        "amount: string, expected decimal",
        "status: missing",
    ]


def test_stage_keeps_good_rows_and_pickles_for_spark_workers(
    contracts: dict[str, EntityContract],
) -> None:
    batch = orders()
    stage = QualityStage(contracts)
    result = stage.process(batch)
    assert result.kept.equals(batch)
    assert result.quarantined.num_rows == result.dropped.num_rows == 0
    shipped = pickle.loads(pickle.dumps(stage))  # after use: cached GX suites stay behind
    assert shipped.process(batch).kept.equals(batch)


def test_stage_quarantines_failing_rows_with_the_expectation_name(
    contracts: dict[str, EntityContract],
) -> None:
    batch = orders(6)
    batch = replace(batch, "currency", ["CNY", "XXX", "EUR", "CNY", "USD", "CNY"])
    batch = replace(batch, "customer_id", [101, 102, None, 104, 105, 106])
    batch = replace(batch, "note", [None, None, None, LEAKED_PHONE, None, None])
    batch = replace(batch, "status", ["paid", "paid", "paid", "paid", "lost", "paid"])
    result = QualityStage(contracts).process(batch)

    assert result.kept["_source_key"].to_pylist() == ["1", "6"]
    rejected = {r["_source_key"]: r for r in result.quarantined.to_pylist()}
    assert {k: r["_rule_id"] for k, r in rejected.items()} == {
        "2": "quality.orders.currency.allowed",
        "3": "quality.orders.customer_id.required",
        "4": "quality.orders.note.no_pii",
        "5": "quality.orders.status.allowed",
    }
    assert rejected["4"]["_reason"] == "note: expect_column_values_to_be_free_of_pii"
    assert "13812345678" not in json.dumps([r["_reason"] for r in rejected.values()])
    assert result.kept.num_rows + result.quarantined.num_rows == batch.num_rows


def test_stage_runs_in_the_chain_and_passes_entities_without_contract(
    contracts: dict[str, EntityContract],
) -> None:
    good = orders(3)
    bad = replace(orders(3), "currency", ["CNY", "GBP", "CNY"])
    other = replace(orders(2), "_entity", ["notes", "notes"])
    tagged = Chain([QualityStage(contracts)]).run(pa.concat_tables([good, other, bad]))
    outcomes = list(
        zip(tagged["_outcome"].to_pylist(), tagged["_rule_id"].to_pylist(), strict=True)
    )
    assert outcomes.count(("quarantine", "quality.orders.currency.allowed")) == 1
    assert outcomes.count(("keep", None)) == 7

    strict = QualityStage(contracts, QualityConfig(require_contracts=True))
    with pytest.raises(QualityGateFailed, match="notes: no contract"):
        strict.process(other)


def test_stage_stops_on_a_type_change(contracts: dict[str, EntityContract]) -> None:
    batch = orders(3)
    retyped = batch.set_column(
        batch.schema.get_field_index("order_id"), "order_id", pa.array(["1", "2", "3"])
    )
    with pytest.raises(QualityGateFailed) as caught:
        QualityStage(contracts).process(retyped)
    assert caught.value.exit_code == ExitCode.QUALITY
    assert "orders.schema failed: order_id: string, expected integer" in caught.value.message


def test_batch_check_passes_good_data(contracts: dict[str, EntityContract]) -> None:
    result = check_batch(orders(), contracts["orders"], gate="curated", run_id="r1")
    assert result.passed, result.failures
    assert result.rows == 6
    assert {c.name for c in result.checks} >= {"orders.schema", "orders.key.unique"}
    raise_if_failed(result)  # no exception


def test_batch_check_blocks_a_uniqueness_break(contracts: dict[str, EntityContract]) -> None:
    batch = replace(orders(4), "order_id", [1, 2, 2, 4])
    result = check_batch(batch, contracts["orders"], gate="curated", run_id="r2")
    assert [c.name for c in result.failures] == ["orders.key.unique"]
    assert result.failures[0].unexpected_count == 2
    with pytest.raises(QualityGateFailed) as caught:
        raise_if_failed(result)
    assert caught.value.exit_code == ExitCode.QUALITY
    assert caught.value.message == ("orders: 1 failed at gate curated: orders.key.unique (2 rows)")
    assert caught.value.stage == "quality.curated"


def test_batch_check_blocks_a_row_count_drop_and_a_type_change(
    contracts: dict[str, EntityContract],
) -> None:
    shrunk = check_batch(
        orders(6), contracts["orders"], gate="curated", run_id="r3", previous_rows=20
    )
    assert [c.name for c in shrunk.failures] == ["orders.row_count"]
    assert shrunk.failures[0].observed == 6

    batch = orders(3)
    retyped = batch.set_column(
        batch.schema.get_field_index("amount"), "amount", pa.array(["1", "2", "x"])
    )
    broken = check_batch(retyped, contracts["orders"], gate="curated", run_id="r3")
    assert "orders.schema" in [c.name for c in broken.failures]


def test_a_gate_on_changed_rows_judges_key_and_row_count_on_the_whole_table(
    contracts: dict[str, EntityContract],
) -> None:
    contract = contracts["orders"]
    changed = orders(3)
    level = check_batch(
        changed,
        contract,
        gate="curated",
        run_id="r5",
        previous_rows=100,
        zone=ZoneStats(rows=98, duplicate_keys=0),
    )
    assert level.passed and level.rows == 98
    [count] = [c for c in level.checks if c.name == "orders.row_count"]
    assert count.observed == 98

    # Unique within the changed rows, but a key the table already holds twice.
    clash = check_batch(
        changed,
        contract,
        gate="curated",
        run_id="r5",
        previous_rows=100,
        zone=ZoneStats(rows=100, duplicate_keys=2),
    )
    assert [(c.name, c.unexpected_count) for c in clash.failures] == [("orders.key.unique", 2)]

    # Nothing changed, but half the table went (deletions only): the drop is caught.
    gone = check_batch(
        orders(1).slice(0, 0),
        contract,
        gate="curated",
        run_id="r5",
        previous_rows=100,
        zone=ZoneStats(rows=40, duplicate_keys=0),
    )
    assert [c.name for c in gone.failures] == ["orders.row_count"]
    assert "40 rows" in (gone.failures[0].error or "")


def test_a_gate_over_the_same_rows_takes_the_earlier_gates_outcomes(
    contracts: dict[str, EntityContract],
) -> None:
    contract = contracts["orders"]
    clean_rows = orders(6)
    failing = replace(clean_rows, "currency", ["CNY", "XXX", "EUR", "CNY", "USD", "XXX"])
    zone = ZoneStats(rows=98, duplicate_keys=0)
    for rows in (clean_rows, failing):
        earlier = check_batch(rows, contract, gate="clean", run_id="r6")
        own = check_batch(
            rows, contract, gate="curated", run_id="r6", previous_rows=100, zone=zone,
            rows_block=True,
        )  # fmt: skip
        taken = check_batch(
            rows, contract, gate="curated", run_id="r6", previous_rows=100, zone=zone,
            rows_block=True, outcomes_of=earlier,
        )  # fmt: skip
        assert (taken.outcomes_from, own.outcomes_from) == ("clean", None)
        assert taken.checks == own.checks
        assert taken.passed is own.passed
    assert not taken.passed  # the failing rows block the curated gate

    # A result judged with a row count or on another contract cannot stand for the rows.
    judged = check_batch(clean_rows, contract, gate="curated", run_id="r6", previous_rows=6)
    with pytest.raises(ValueError, match="cannot stand"):
        check_batch(clean_rows, contract, gate="curated", run_id="r6", outcomes_of=judged)
    other = next(c for name, c in contracts.items() if name != "orders")
    with pytest.raises(ValueError, match="cannot stand"):
        check_batch(clean_rows, other, gate="curated", run_id="r6", outcomes_of=earlier)


def test_stored_results_keep_every_outcome_a_fuller_format_gives(
    contracts: dict[str, EntityContract], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gates store results in GX's BASIC format: its outcomes (success, unexpected counts,
    observed values) are SUMMARY's, for passing and failing checks of every level."""
    from pipelines import quality

    batch = replace(orders(6), "note", [LEAKED_PHONE, None, None, None, None, None])
    batch = replace(batch, "order_id", [1, 2, 2, 4, 5, 6])
    batch = replace(batch, "currency", ["CNY", "XXX", "USD", "EUR", "CNY", "CNY"])

    def outcomes() -> list[tuple[object, ...]]:
        result = check_batch(batch, contracts["orders"], gate="curated", run_id="r6")
        return [(c.name, c.success, c.unexpected_count, c.observed) for c in result.checks]

    basic = outcomes()
    assert {name for name, success, *_ in basic if not success} >= {
        "orders.key.unique",
        "orders.note.no_pii",
        "orders.currency.allowed",
    }
    monkeypatch.setattr(
        quality,
        "_STORED_RESULT_FORMAT",
        {"result_format": "SUMMARY", "partial_unexpected_count": 0},
    )
    assert outcomes() == basic


def test_row_failures_block_only_when_asked(contracts: dict[str, EntityContract]) -> None:
    batch = replace(orders(3), "note", [LEAKED_PHONE, None, None])
    lenient = check_batch(batch, contracts["orders"], gate="clean", run_id="r4")
    assert lenient.passed
    [pii] = [c for c in lenient.checks if c.name == "orders.note.no_pii"]
    assert (pii.success, pii.unexpected_count) == (False, 1)
    strict = check_batch(
        to_pandas(batch), contracts["orders"], gate="curated", run_id="r4", rows_block=True
    )
    assert [c.name for c in strict.failures] == ["orders.note.no_pii"]


def test_gate_keeps_history_data_docs_and_a_report(
    tmp_path: Path, contracts: dict[str, EntityContract]
) -> None:
    gate = QualityGate(QualityConfig(max_row_drop=0.5), tmp_path, contracts)
    first = gate.check(orders(10), "orders", gate="curated", run_id="20250301T000000Z-a")
    assert first is not None and first.passed and first.previous_rows is None
    leaked = replace(orders(4), "note", [LEAKED_PHONE, None, None, None])
    second = gate.check(leaked, "orders", gate="curated", run_id="20250302T000000Z-b")
    assert second is not None and second.previous_rows == 10
    assert [c.name for c in second.failures] == ["orders.row_count"]
    assert gate.check(orders(2), "unknown", gate="curated", run_id="20250302T000000Z-b") is None

    index = gate.finish()
    assert index is not None and index.exists()
    html = "".join(p.read_text("utf-8") for p in (tmp_path / "quality").rglob("*.html"))
    assert "orders.curated" in html
    assert "13812345678" not in html  # Data Docs carry counts, never values
    stored = tmp_path / "quality" / "runs" / "20250302T000000Z-b" / "orders.curated.json"
    assert json.loads(stored.read_text("utf-8"))["passed"] is False

    config = write_config(tmp_path, tmp_path)
    runner = CliRunner()
    missing = runner.invoke(cli, ["quality", "report", "--run", "nope", "-c", str(config)])
    assert missing.exit_code == ExitCode.CONFIG
    as_json = runner.invoke(
        cli, ["quality", "report", "--json", "--run", "20250302T000000Z-b", "-c", str(config)]
    )
    assert as_json.exit_code == 0, as_json.output
    [report] = json.loads(as_json.stdout)
    assert report["entity"] == "orders" and report["passed"] is False
    text = runner.invoke(cli, ["quality", "report", "-c", str(config)])
    assert text.exit_code == 0, text.output
    assert "BLOCKED" in text.stdout and "orders.row_count" in text.stdout


def test_data_docs_render_the_runs_pages_and_index_them_all(
    tmp_path: Path, contracts: dict[str, EntityContract]
) -> None:
    gate = QualityGate(QualityConfig(), tmp_path, contracts)
    gate.check(orders(10), "orders", gate="curated", run_id="20250301T000000Z-a")
    index = gate.finish("20250301T000000Z-a")  # the first build renders what there is
    assert index is not None
    pages = tmp_path / "quality" / "data_docs" / "validations"
    [first] = pages.rglob("*.html")
    os.utime(first, ns=(0, 0))  # marks the page: a second rendering would rewrite it

    gate.check(orders(10), "orders", gate="curated", run_id="20250302T000000Z-b")
    assert gate.finish("20250302T000000Z-b") == index
    assert len(list(pages.rglob("*.html"))) == 2
    assert first.stat().st_mtime_ns == 0  # only the new run's page was rendered
    listed = index.read_text("utf-8")
    assert "20250301T000000Z-a" in listed and "20250302T000000Z-b" in listed

    before = index.stat().st_mtime_ns
    assert gate.finish("20250303T000000Z-c") == index  # a run that stored nothing
    assert index.stat().st_mtime_ns == before


def test_data_docs_compile_their_templates_once_per_process(
    tmp_path: Path, contracts: dict[str, EntityContract], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jinja2 import Environment

    compiled: list[str] = []
    compile_template = Environment.compile

    def counting_compile(self: Environment, source: str, name: str | None = None, *a, **k):  # type: ignore[no-untyped-def]
        compiled.append(name or "")
        return compile_template(self, source, name, *a, **k)

    monkeypatch.setattr(Environment, "compile", counting_compile)
    gate = QualityGate(QualityConfig(), tmp_path, contracts)
    gate.check(orders(10), "orders", gate="curated", run_id="20250301T000000Z-a")
    gate.finish("20250301T000000Z-a")  # compiles whatever no earlier build here did
    compiled.clear()
    gate.check(orders(10), "orders", gate="curated", run_id="20250302T000000Z-b")
    index = gate.finish("20250302T000000Z-b")
    assert compiled == []
    assert index is not None and "20250302T000000Z-b" in index.read_text("utf-8")
    [page] = (tmp_path / "quality" / "data_docs" / "validations").rglob(
        "*20250302T000000Z-b*/**/*.html"
    )
    assert "orders.curated" in page.read_text("utf-8")


def test_a_gate_registers_its_validation_once_while_its_checks_stay_the_same(
    tmp_path: Path, contracts: dict[str, EntityContract], monkeypatch: pytest.MonkeyPatch
) -> None:
    from great_expectations.core.factory.validation_definition_factory import (
        ValidationDefinitionFactory,
    )

    registered: list[str] = []
    add = ValidationDefinitionFactory.add_or_update

    def counting_add(self: ValidationDefinitionFactory, validation: object) -> object:
        registered.append(validation.name)  # type: ignore[attr-defined]
        return add(self, validation)  # type: ignore[arg-type]

    monkeypatch.setattr(ValidationDefinitionFactory, "add_or_update", counting_add)
    gate = QualityGate(QualityConfig(), tmp_path, contracts)
    runs = ["20250301T000000Z-a", "20250302T000000Z-b", "20250303T000000Z-c"]
    for run in runs:  # batches of changed rows: the same checks every time
        gate.check(orders(10), "orders", gate="clean", run_id=run, whole_zone=False)
    assert registered == ["orders.clean"]
    # Each run's validation is still stored, for its Data Docs page.
    store = gx_runtime(tmp_path / "quality").context.validation_results_store
    assert sorted(key.run_id.run_name for key in store.list_keys()) == runs
    # A whole table adds the row count against the last run: other checks, registered anew.
    gate.check(orders(10), "orders", gate="clean", run_id="20250304T000000Z-d")
    assert registered == ["orders.clean", "orders.clean"]
