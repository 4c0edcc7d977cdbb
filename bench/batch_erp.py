"""Batch ERP benchmark on Spark (issue 12): full load, 1% incremental, adapter overhead.

In one run, on a throwaway PostgreSQL and lake under a temporary folder:

1. Load about ``--rows`` demo ERP rows (``load_demo_erp``, 5,000 rows per scale unit across
   customers, orders, medical_orders and invoices).
2. Full load: ``run_batch`` on ``local[2]`` (the demo config: rule packs, privacy policies,
   quality contracts). Reports rows/s from ERP to curated over the whole ``run_batch`` call
   (JVM start excluded, timed separately).
3. Adapter overhead: each entity's raw table (``raw.erp_<entity>``, the rows the full load
   read, with their lineage columns) is read back with pyiceberg and the entity's chain
   (``build_chain``) runs on it in this process, one ``chain.run`` per entity; only that call
   is timed. The ratio is the Spark run's ``transform`` seconds (``mapInArrow`` through the
   chain, the pinning checkpoint and the outcome tally) over those seconds. The outcome
   counts of both must agree. Spark runs the chain in two Python workers (``local[2]``), the
   in-process run in one. The job runs the entities' chains one after another, so each
   ``transform`` figure is one entity's; their writes run side by side afterwards, so the
   per-entity ``clean+raw`` and ``curated`` seconds overlap and do not add up to the run.
4. Incremental: ``updated_at = now()`` on 1% of each table's rows (every key divisible by 100),
   then ``run_batch`` again; its time as a share of the full load (goal < 10%). A small read's
   writes start as soon as its chain is done, so there they overlap the next entities'
   reads and chains too. ``--incremental-runs`` (default 2) repeats this step: the first 1%
   run follows the full load, the later ones follow a 1% run in the same process, as they do
   under ``steward run batch --every``.

The load average (``os.getloadavg``) is printed with each figure: the 2-core machine may be
shared with other work. So are the CPU seconds of the bench process and its descendants (the
Spark JVM and its Python workers) for both runs, which the other work does not inflate.

    .venv/bin/python bench/batch_erp.py --rows 100000
    .venv/bin/python bench/batch_erp.py              # 1,000,000 rows
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import sql

from pipelines.config import SparkConfig, load_config
from pipelines.demo import PSEUDONYM_KEY_ENV, write_demo_config
from pipelines.demo_erp import DEMO_TABLES, load_demo_erp
from pipelines.lake import Lake
from pipelines.local_postgres import LocalPostgres, PostgresInfo
from pipelines.spark_job import EntityReport, run_batch
from pipelines.spark_session import spark_session
from pipelines.transform import build_chain

ROWS_PER_SCALE = 5_000
UPDATE_EVERY = 100  # 1% of the keys


def load() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its descendants (the Spark JVM, its Python
    workers), from /proc, reaped children included. On a shared machine the wall clock also
    counts the time waiting for a core; this does not. PostgreSQL detaches from the bench at
    start, so the database's own work is not in it."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    used: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)  # parent pid
        used[pid] = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    total, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        total += used.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / ticks


def touch_one_percent(info: PostgresInfo) -> int:
    """Set ``updated_at = now()`` on every row whose key is divisible by 100; rows touched."""
    touched = 0
    with psycopg.connect(info.dsn()) as conn, conn.cursor() as cur:
        for table in DEMO_TABLES:
            cur.execute(
                sql.SQL("UPDATE {} SET {} = now() WHERE {} %% %s = 0").format(
                    sql.Identifier(table.schema, table.name),
                    sql.Identifier(table.watermark),
                    sql.Identifier(table.primary_key),
                ),
                (UPDATE_EVERY,),
            )
            touched += cur.rowcount
    return touched


def print_reports(title: str, reports: list[EntityReport], seconds: float) -> int:
    rows = sum(r.rows_read for r in reports)
    print(
        f"{title}: {rows:,} rows read in {seconds:.1f} s ({rows / seconds:,.0f} rows/s), {load()}"
    )
    for r in reports:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r.seconds.items())
        print(
            f"  {r.entity:15} read {r.rows_read:>8,} kept {r.kept:>8,} quarantined"
            f" {r.quarantined:>6,} dropped {r.dropped:>6,} curated {r.curated_rows:>8,}"
            f"  s: {stages}"
        )
        top = sorted(r.reasons.items(), key=lambda item: -item[1])[:2]
        if top:
            print("    " + "; ".join(f"{reason}: {count:,}" for reason, count in top))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="ERP rows, all tables")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument(
        "--driver-java-options",
        help="options for the driver JVM (spark.driver.extraJavaOptions), e.g."
        " -XX:TieredStopAtLevel=1",
    )
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temp dir)")
    parser.add_argument(
        "--incremental-runs",
        type=int,
        default=2,
        help="1%% runs after the full load, in the same process (the later ones as under"
        " `steward run batch --every`)",
    )
    args = parser.parse_args()

    scale = max(1, math.ceil(args.rows / ROWS_PER_SCALE))
    os.environ[PSEUDONYM_KEY_ENV] = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        with LocalPostgres(work / "pg") as info:
            spark_conf = {"spark.driver.memory": args.driver_memory}
            if args.driver_java_options is not None:
                spark_conf["spark.driver.extraJavaOptions"] = args.driver_java_options
            return run(info, work, scale, args.master, spark_conf, args.incremental_runs)


def run(
    info: PostgresInfo,
    work: Path,
    scale: int,
    master: str,
    spark_conf: dict[str, str],
    incremental_runs: int,
) -> int:
    print(f"start: {load()}")
    started = time.perf_counter()
    erp_rows = load_demo_erp(info, scale=scale)
    seconds = time.perf_counter() - started
    total = sum(erp_rows.values())
    print(
        f"ERP load (load_demo_erp, scale {scale}): {total:,} rows in {seconds:.1f} s"
        f" ({total / seconds:,.0f} rows/s) {erp_rows}, {load()}"
    )

    password_file = work / "erp-password"
    password_file.write_text(info.password, encoding="utf-8")
    config = load_config(
        write_demo_config(
            work / "pipeline.yaml",
            port=info.port,
            password_file=password_file,
            lake_root=work / "lake",
        )
    )
    lake = Lake(config.lake)

    started = time.perf_counter()
    spark = spark_session(SparkConfig(master=master, conf=spark_conf), lake)
    java_options = spark_conf.get("spark.driver.extraJavaOptions", "")
    print(
        f"Spark session ({master}, driver JVM options {java_options!r}):"
        f" {time.perf_counter() - started:.1f} s, {load()}"
    )
    try:
        started, cpu_started = time.perf_counter(), tree_cpu_seconds()
        _, full_reports = run_batch(spark, config, "bench")
        full_s = time.perf_counter() - started
        full_cpu = tree_cpu_seconds() - cpu_started
        print_reports("full load", full_reports, full_s)
        print(f"  CPU (bench, JVM, Python workers): {full_cpu:.1f} s")

        spark_transform = sum(r.seconds["transform"] for r in full_reports)
        python_transform = 0.0
        python_seconds: dict[str, float] = {}
        agree = True
        for report in full_reports:
            rows = lake.read(f"raw.erp_{report.entity}")
            chain = build_chain(config, report.entity)
            started = time.perf_counter()
            tagged = chain.run(rows)
            seconds = time.perf_counter() - started
            python_transform += seconds
            python_seconds[report.entity] = seconds
            print(
                f"  pure-Python chain {report.entity:15} {rows.num_rows:>8,} rows"
                f" {seconds:6.1f} s (Spark transform {report.seconds['transform']:.1f} s)"
            )
            summary = dict(Counter(tagged["_outcome"].to_pylist()))
            expected = {
                "keep": report.kept,
                "quarantine": report.quarantined,
                "drop": report.dropped,
            }
            if {k: v for k, v in expected.items() if v} != summary:
                agree = False
                print(f"    outcome counts differ: Spark {expected}, pure Python {summary}")
        ratio = spark_transform / python_transform
        print(
            f"adapter overhead: Spark transform {spark_transform:.1f} s / pure-Python chain"
            f" {python_transform:.1f} s = {ratio:.2f}x (goal < 2x), {load()}"
        )
        # Spark starts its Python workers (imports, chain unpickled and packs recompiled) in
        # the first entity's transform; the later entities show the steady-state overhead.
        later = full_reports[1:]
        if later:
            spark_later = sum(r.seconds["transform"] for r in later)
            python_later = python_transform - python_seconds[full_reports[0].entity]
            print(
                f"  without the first entity (worker start): {spark_later:.1f} s /"
                f" {python_later:.1f} s = {spark_later / python_later:.2f}x"
            )

        for number in range(1, incremental_runs + 1):
            touched = touch_one_percent(info)
            started, cpu_started = time.perf_counter(), tree_cpu_seconds()
            _, incremental_reports = run_batch(spark, config, "bench")
            incremental_s = time.perf_counter() - started
            incremental_cpu = tree_cpu_seconds() - cpu_started
            title = "incremental" if number == 1 else f"incremental {number} (as under --every)"
            print(f"touched {touched:,} rows (1%)")
            print_reports(title, incremental_reports, incremental_s)
            print(
                f"{title} share of the full load: {incremental_s:.1f} / {full_s:.1f} s"
                f" = {incremental_s / full_s:.1%} (goal < 10%); CPU {incremental_cpu:.1f} /"
                f" {full_cpu:.1f} s = {incremental_cpu / full_cpu:.1%}"
            )
            read = sum(r.rows_read for r in incremental_reports)
            if read != touched:
                print(f"the incremental run read {read:,} rows, not the {touched:,} touched")
                agree = False
    finally:
        spark.stop()
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
