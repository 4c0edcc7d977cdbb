"""The Spark session Steward's batch jobs run in: Iceberg catalog mounted, jars on the path."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from pipelines.config import SparkConfig
from pipelines.jars import SPARK_JARS, jar_paths
from pipelines.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_session(spark: SparkConfig, lake: Lake) -> SparkSession:
    """Build (or return the running) session for this lake.

    ``master`` comes from config, so the same job runs on ``local[*]`` or a cluster.
    """
    # Spark's Python workers start `python` from PATH unless told otherwise; outside an
    # activated venv that interpreter lacks pyarrow and the project.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if spark.master.startswith("local"):
        # One machine: bind to loopback instead of whatever interface the host name resolves
        # to (the JVM reads this before any Spark setting).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    lake.prepare()
    builder = (
        SparkSession.builder.master(spark.master)
        .appName(spark.app_name)
        .config("spark.jars", ",".join(str(p) for p in jar_paths(*SPARK_JARS)))
        .config(
            "spark.sql.extensions",
            "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        )
        .config("spark.sql.shuffle.partitions", str(spark.shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Python workers fork from a daemon that has the chain's imports done (seconds each).
        .config("spark.python.daemon.module", "pipelines.spark_worker_daemon")
        # Parquet files in the lake are zstd (Iceberg's write default too).
        .config("spark.sql.parquet.compression.codec", "zstd")
    )
    if spark.master.startswith("local"):
        # One machine: keep the driver on loopback instead of whatever interface the host
        # name resolves to.
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    for key, value in {**lake.spark_catalog_conf(), **spark.conf}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
