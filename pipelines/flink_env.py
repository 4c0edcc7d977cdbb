"""The PyFlink environment the stream job runs in: jars, Python workers, checkpoints, catalog.

Flink loads the JVM jars pinned in ``pom.xml`` (copied into ``.jars/``) through
``pipeline.jars``; Spark's and the test broker's jars are not among them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.jars import jar_paths
from pipelines.lake import Lake

if TYPE_CHECKING:
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment

KAFKA_CLIENT_JARS = ("kafka-clients-", "lz4-java-", "snappy-java-", "zstd-jni-")
# On the JVM's own classpath (see prepare_gateway); of these, only the Kafka client is in
# pipeline.jars too, for the job's own class loader.
GATEWAY_JARS = (
    "hadoop-client-api-",
    "hadoop-client-runtime-",
    "sqlite-jdbc-",
    "postgresql-",
    *KAFKA_CLIENT_JARS,
)
FLINK_JARS = (
    "iceberg-flink-runtime-2.1-",
    "flink-connector-kafka-",
    *KAFKA_CLIENT_JARS,
)


def jar_urls(prefixes: Iterable[str]) -> list[str]:
    return [path.resolve().as_uri() for path in jar_paths(*prefixes)]


def prepare_gateway() -> None:
    """Put Hadoop, the catalog's JDBC drivers and the Kafka client on the classpath of the JVM
    PyFlink starts.

    Flink resolves ``org.apache.hadoop.*`` parent-first (``classloader.parent-first-patterns``),
    so Hadoop in ``pipeline.jars`` is never seen by Iceberg's catalog. JDBC drivers register
    with ``DriverManager`` once, from the class loader that first loads them; every job gets a
    new user class loader, so from a driver in ``pipeline.jars`` the second job in one process
    finds "No suitable driver". ``KafkaClient``'s calls find Kafka's classes through the
    context class loader of the Java thread py4j serves them on, one of a pool that grows when
    Python threads call at once; a new one has only the JVM's own loader, so jars added to one
    thread's loader go missing on the next, and a loader per thread is a second copy of
    Kafka's classes. A job's tasks still load theirs from ``pipeline.jars``: Flink's user class
    loader is child-first for ``org.apache.kafka``. All go on the JVM's own classpath, which
    PyFlink's launcher builds from ``HADOOP_CLASSPATH`` (on a Flink cluster: its lib/ folder).
    Call this before anything starts the gateway; once it runs, the classpath is fixed.
    """
    jars = [str(path.resolve()) for path in jar_paths(*GATEWAY_JARS)]
    current = os.environ.get("HADOOP_CLASSPATH", "")
    missing = [jar for jar in jars if jar not in current.split(os.pathsep)]
    if missing:
        os.environ["HADOOP_CLASSPATH"] = os.pathsep.join(filter(None, [current, *missing]))


def flink_configuration(
    *,
    parallelism: int,
    checkpoint_interval_ms: int,
    checkpoint_dir: Path,
    restore_from: Path | None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The settings the job starts with (plain strings, so they show in logs and tests)."""
    conf = {
        "pipeline.jars": ";".join(jar_urls(FLINK_JARS)),
        # The Python worker starts `python` from PATH unless told otherwise: outside an
        # activated venv that interpreter has no pyflink (ENVIRONMENT.md).
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "parallelism.default": str(parallelism),
        "execution.checkpointing.interval": f"{checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        # Kept after a crash or cancel: the next start resumes from the newest one.
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.dir": checkpoint_dir.resolve().as_uri(),
        "execution.checkpointing.savepoint-dir": (checkpoint_dir.parent / "savepoints")
        .resolve()
        .as_uri(),
        "execution.checkpointing.num-retained": "2",
        "state.backend.type": "hashmap",
        "table.local-time-zone": "UTC",
        "taskmanager.memory.process.size": "1600m",
        # Small bundles keep freshness in seconds; a checkpoint flushes them anyway.
        "python.fn-execution.bundle.time": "200",
        "python.fn-execution.arrow.batch.size": "1000",
        "python.fn-execution.bundle.size": "1000",
    }
    if restore_from is not None:
        conf["execution.state-recovery.path"] = restore_from.resolve().as_uri()
    conf.update(extra or {})
    return conf


def create_environments(
    conf: dict[str, str],
) -> tuple[StreamExecutionEnvironment, StreamTableEnvironment]:
    from pyflink.common import Configuration
    from pyflink.datastream import RuntimeExecutionMode, StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    prepare_gateway()
    configuration = Configuration()
    for key, value in conf.items():
        configuration.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(configuration)
    env.set_runtime_mode(RuntimeExecutionMode.STREAMING)
    settings = EnvironmentSettings.new_instance().in_streaming_mode().build()
    t_env = StreamTableEnvironment.create(env, settings)
    for key, value in conf.items():
        t_env.get_config().set(key, value)
    return env, t_env


def register_catalog(t_env: StreamTableEnvironment, lake: Lake) -> None:
    """Mount the lake's JDBC catalog under its (shared) name; Flink's Iceberg catalog takes
    ``catalog-impl``: ``catalog-type=jdbc`` is refused (ENVIRONMENT.md)."""
    options = {
        "type": "iceberg",
        "catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        "uri": lake.jdbc_catalog_uri(),
        "warehouse": lake.config.warehouse.resolve().as_uri(),
    }
    if lake.config.catalog.user:
        options["jdbc.user"] = lake.config.catalog.user
    password = lake._catalog_password()
    if password is not None:
        options["jdbc.password"] = password
    with_clause = ", ".join(f"'{k}'='{v}'" for k, v in options.items())
    t_env.execute_sql(f"CREATE CATALOG {lake.catalog_name} WITH ({with_clause})")
