"""The curated gate's whole-table figures (``zone_stats``): grouping every key against grouping
only the keys a run changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pipelines.quality import ZoneStats
from pipelines.spark_job import zone_stats

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

ROWS = [(1, "a", 1), (2, "a", 2), (2, "b", 3), (3, "a", 4), (3, "a", 5), (4, "b", 6), (5, "c", 7)]


def test_whole_table_counts_every_repeated_key(spark: SparkSession) -> None:
    table = spark.createDataFrame(ROWS, "id int, region string, n int")
    assert zone_stats(table, ["id"]) == ZoneStats(rows=7, duplicate_keys=2)
    assert zone_stats(table, ["id", "region"]) == ZoneStats(rows=7, duplicate_keys=1)


def test_changed_keys_count_their_repeats_only(spark: SparkSession) -> None:
    table = spark.createDataFrame(ROWS, "id int, region string, n int")
    # Key 3 is repeated but was not changed: a table whose keys were unique before the
    # change cannot hold it twice, so only the changed keys are grouped.
    changed = table.where("n IN (2, 6, 7)")
    assert zone_stats(table, ["id"], changed) == ZoneStats(rows=7, duplicate_keys=1)
    # A changed key held by two changed rows counts once.
    assert zone_stats(table, ["id"], table.where("id = 2")) == ZoneStats(rows=7, duplicate_keys=1)
    assert zone_stats(table, ["id", "region"], changed) == ZoneStats(rows=7, duplicate_keys=0)
    assert zone_stats(table, ["id"], changed.limit(0)) == ZoneStats(rows=7, duplicate_keys=0)
    # Every key changed: the same figures as grouping the whole table.
    assert zone_stats(table, ["id"], table) == zone_stats(table, ["id"])
