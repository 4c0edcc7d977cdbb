"""Session-wide fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from pipelines.config import LakeConfig, SparkConfig
from pipelines.lake import Lake
from pipelines.local_postgres import LocalPostgres, PostgresInfo

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresInfo]:
    """One PostgreSQL server on loopback for the whole session, with database ``erp``.

    Tests may load the demo ERP into it; ``load_demo_erp`` replaces schema ``erp`` each time.
    """
    with LocalPostgres(tmp_path_factory.mktemp("postgres") / "data") as info:
        yield info


@pytest.fixture(scope="session")
def lake_config(tmp_path_factory: pytest.TempPathFactory) -> LakeConfig:
    """The one lake the session's Spark session mounts (catalog ``steward``)."""
    return LakeConfig(root=tmp_path_factory.mktemp("lake"))


@pytest.fixture(scope="session")
def spark(lake_config: LakeConfig) -> Iterator[SparkSession]:
    """One Spark session (local[2], the Iceberg catalog on ``lake_config``) for all tests."""
    from pipelines.spark_session import spark_session

    session = spark_session(
        SparkConfig(master="local[2]", app_name="steward-tests", shuffle_partitions=2),
        Lake(lake_config),
    )
    yield session
    session.stop()
