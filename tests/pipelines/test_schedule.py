"""``run batch --every``: the schedule's loop (pure Python) and the command on real Spark."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app as cli
from pipelines.config import LakeConfig
from pipelines.errors import (
    AccountingError,
    ConfigError,
    ExitCode,
    LakeError,
    QualityGateFailed,
    SourceError,
    StewardError,
)
from pipelines.ledger import RunLedger
from pipelines.local_postgres import PostgresInfo
from pipelines.schedule import parse_interval, retried, run_every

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), (" 5M ", 300)],
)
def test_intervals_read_as_seconds(text: str, seconds: int) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["15", "15x", "m", "", "1.5h", "-5m", "0s"])
def test_a_bad_interval_is_a_config_error_naming_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match="--every"):
        parse_interval(text)


class FakeRuns:
    """A run that takes ``seconds`` on a fake clock, or raises the next planned error."""

    def __init__(self, seconds: float, errors: list[StewardError | None] | None = None):
        self.now = 0.0
        self.seconds = seconds
        self.errors = list(errors or [])
        self.calls: list[bool] = []
        self.waits: list[float] = []

    def run(self, full: bool) -> int:
        self.calls.append(full)
        self.now += self.seconds
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error
        return len(self.calls)

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False

    def clock(self) -> float:
        return self.now


def test_runs_start_one_interval_apart_and_only_the_first_is_full() -> None:
    runs = FakeRuns(seconds=20)
    done: list[int] = []
    code = run_every(
        runs.run, 60, runs=3, full_first=True, on_run=done.append, wait=runs.wait, clock=runs.clock
    )
    assert code == 0
    assert runs.calls == [True, False, False]
    assert done == [1, 2, 3]
    assert runs.waits == [40, 40]  # each run started 60 s after the one before


def test_a_run_longer_than_the_interval_is_followed_at_once() -> None:
    runs = FakeRuns(seconds=90)
    run_every(runs.run, 60, runs=2, wait=runs.wait, clock=runs.clock)
    assert runs.waits == [0.0]


def test_a_failure_the_next_run_may_get_past_is_reported_and_the_schedule_goes_on() -> None:
    unreachable = SourceError("source erp: database unreachable", transient=True)
    gate = QualityGateFailed("orders: gate clean failed")
    runs = FakeRuns(seconds=1, errors=[unreachable, None, gate])
    reported: list[StewardError] = []
    code = run_every(
        runs.run, 5, runs=3, on_error=reported.append, wait=runs.wait, clock=runs.clock
    )
    assert reported == [unreachable, gate]
    assert len(runs.calls) == 3
    assert code == ExitCode.QUALITY  # the last run's outcome


@pytest.mark.parametrize(
    "error",
    [
        SourceError("source erp: wrong user or password"),  # not transient: every run would fail
        LakeError("catalog is corrupt"),
        ConfigError("pipeline.yaml:3: sources: bad"),
        AccountingError("orders: 3 rows unaccounted for"),
    ],
)
def test_a_failure_every_later_run_would_meet_ends_the_schedule(error: StewardError) -> None:
    assert not retried(error)
    runs = FakeRuns(seconds=1, errors=[None, error])
    with pytest.raises(type(error)):
        run_every(runs.run, 5, runs=5, wait=runs.wait, clock=runs.clock)
    assert len(runs.calls) == 2


def test_a_stop_between_runs_ends_the_schedule() -> None:
    runs = FakeRuns(seconds=1)
    stops = iter([False, True])
    code = run_every(runs.run, 5, wait=lambda _: next(stops), clock=runs.clock)
    assert code == 0 and len(runs.calls) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--runs", "2"], "give --every too"), (["--every", "soon"], "'soon' is not an interval")],
)
def test_schedule_options_are_checked_before_anything_starts(
    options: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli, ["run", "batch", "-c", "no-such.yaml", *options])
    assert result.exit_code == ExitCode.CONFIG
    assert message in result.stderr


def _beats_config(
    tmp_path: Path, postgres: PostgresInfo, lake_config: LakeConfig, schema: str, rows: int
) -> Path:
    """A pipeline config reading ``<schema>.beats`` (``rows`` rows) into the session's lake."""
    with psycopg.connect(postgres.dsn()) as db:
        db.execute(
            f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"
            f" CREATE TABLE {schema}.beats (id int, note text, updated_at timestamptz);"
            f" INSERT INTO {schema}.beats SELECT i, 'beat ' || i, now()"
            f" FROM generate_series(1, {rows}) i;"
        )
    password = tmp_path / "password"
    password.write_text(postgres.password, encoding="utf-8")
    source = {
        "url": postgres.jdbc_url,
        "user": postgres.user,
        "password_file": str(password),
        "schema": schema,
        "tables": [{"name": "beats", "key": "id", "watermark": "updated_at"}],
    }
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "lake": {"root": str(lake_config.root)},
                "spark": {"master": "local[2]", "shuffle_partitions": 2},
                "sources": {schema: source},
                "transform": {"rule_packs": ["common"]},
            }
        ),
        encoding="utf-8",
    )
    return config


@pytest.mark.spark
@pytest.mark.postgres
def test_the_command_runs_the_batch_on_schedule_in_one_process(
    spark: SparkSession, postgres: PostgresInfo, lake_config: LakeConfig, tmp_path: Path
) -> None:
    """Two runs of ``run batch --every 1s --runs 2`` in this process (the running session):
    the first loads the table, the second finds nothing new; one JSON line each."""
    config = _beats_config(tmp_path, postgres, lake_config, "ticks", rows=30)
    result = CliRunner().invoke(
        cli, ["run", "batch", "-c", str(config), "--every", "1s", "--runs", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert [e["rows_read"] for e in first["entities"]] == [30]
    assert [e["rows_read"] for e in second["entities"]] == [0]
    ledger = RunLedger(lake_config.ledger)
    assert {first["run_id"], second["run_id"]} <= {r["run_id"] for r in ledger.list_runs(1000)}


@pytest.mark.spark
@pytest.mark.postgres
def test_sigterm_ends_the_schedule_between_runs(
    spark: SparkSession, postgres: PostgresInfo, lake_config: LakeConfig, tmp_path: Path
) -> None:
    """``steward run batch --every 1h`` in a process of its own: after its first run, SIGTERM
    ends the wait for the next one, and the command exits 0."""
    config = _beats_config(tmp_path, postgres, lake_config, "terms", rows=20)
    steward = Path(sys.executable).parent / "steward"
    log = tmp_path / "stderr.log"
    with log.open("w") as errors:
        job = subprocess.Popen(
            [steward, "run", "batch", "-c", str(config), "--every", "1h", "--json"],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            start_new_session=True,
        )
    try:
        assert job.stdout is not None
        first = json.loads(job.stdout.readline() or "{}")  # blocks until the first run is done
        assert [e["rows_read"] for e in first.get("entities", [])] == [20], log.read_text()
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=60) == 0
        assert job.stdout.read() == ""  # no second run
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
