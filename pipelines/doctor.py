"""``steward doctor``: check that the installed versions are the ones verified together.

The expected versions are the pins in ``pyproject.toml`` and ``pom.xml``; this reads what is
actually installed (Python packages, Java, the jars Spark and Flink load from ``.jars/``,
PostgreSQL's server) and,
with ``--spark``, starts Spark and opens the Iceberg catalog on a scratch lake.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipelines.jars import SPARK_JARS, jars_dir

# What the README's "Verified versions" table lists; a mismatch is worth a look, not a crash.
EXPECTED_PYTHON_PACKAGES = {
    "apache-flink": "2.1.3",
    "pyspark": "3.5.9",
    "pyarrow": "16.1.0",
    "pyiceberg": "0.8.1",
    "torch": "2.13.0",
    "sentence-transformers": "6.2.0",
    "qdrant-client": "1.20.0",
    "qdrant-edge-py": "0.9.0",
    "opacus": "1.6.0",
    "great-expectations": "1.24.1",
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    expected: str = ""


def _java_version() -> Check:
    try:
        result = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return Check("java", False, "not found", "17")
    match = re.search(r'version "(\d+)[^"]*"', result.stderr)
    major = match.group(1) if match else "?"
    return Check(
        "java", major == "17", result.stderr.splitlines()[0] if result.stderr else "?", "17"
    )


def _postgres_server() -> Check:
    from pipelines.local_postgres import find_server_bindir

    try:
        bindir = find_server_bindir()
    except Exception as exc:
        return Check("postgresql server", False, str(exc), "Debian postgresql")
    result = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30
    )
    return Check("postgresql server", result.returncode == 0, result.stdout.strip(), "15+")


def _jars() -> list[Check]:
    from pipelines.flink_env import FLINK_JARS, GATEWAY_JARS

    folder = jars_dir()
    checks = []
    for prefix in dict.fromkeys((*SPARK_JARS, *FLINK_JARS, *GATEWAY_JARS)):
        found = sorted(p.name for p in folder.glob(f"{prefix}*.jar"))
        checks.append(
            Check(f"jar {prefix.rstrip('-')}", bool(found), ", ".join(found) or "missing")
        )
    return checks


def _spark_roundtrip() -> Check:
    """Start Spark, write and read an Iceberg table through the JDBC catalog, read it back
    with pyiceberg: the whole JVM side in one check."""
    from pipelines.config import LakeConfig, SparkConfig
    from pipelines.lake import Lake
    from pipelines.spark_session import spark_session

    with tempfile.TemporaryDirectory(prefix="steward-doctor-") as scratch:
        lake = Lake(LakeConfig(root=Path(scratch)))
        spark = spark_session(SparkConfig(master="local[1]", app_name="steward-doctor"), lake)
        try:
            spark.sql("CREATE NAMESPACE IF NOT EXISTS steward.doctor")
            spark.sql("CREATE TABLE steward.doctor.t (id BIGINT) USING iceberg")
            spark.sql("INSERT INTO steward.doctor.t VALUES (1), (2)")
            rows = lake.read("doctor.t").num_rows
            version = spark.version
        finally:
            spark.stop()
    return Check(
        "spark + iceberg + catalog", rows == 2, f"Spark {version}, pyiceberg read {rows} rows"
    )


def run_checks(with_spark: bool = False) -> list[Check]:
    checks = []
    for package, expected in EXPECTED_PYTHON_PACKAGES.items():
        try:
            found = metadata.version(package)
        except metadata.PackageNotFoundError:
            found = "not installed"
        checks.append(Check(package, found == expected, found, expected))
    checks.append(_java_version())
    checks.extend(_jars())
    checks.append(_postgres_server())
    if with_spark:
        checks.append(_spark_roundtrip())
    return checks


def print_checks(console: Console, checks: list[Check]) -> None:
    table = Table("check", "ok", "found", "expected")
    for check in checks:
        table.add_row(check.name, "✓" if check.ok else "✗", check.found, check.expected)
    console.print(table)
