"""ERP tables over JDBC, read by Spark in parallel.

Any JDBC URL and driver class works (PostgreSQL is what the project ships and tests); MySQL,
Oracle or SQL Server is configuration. Table and column names were validated as plain
identifiers when the config was loaded, which is what makes the SQL below safe to build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.config import JdbcSource, JdbcTable
from pipelines.errors import SourceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Driver messages that say a retry can help (the server is down or restarting) versus
# ones that will not change by themselves (credentials, missing objects).
_TRANSIENT_MARKERS = ("Connection refused", "connection attempt failed", "timed out", "starting up")
_REASONS = (
    ("password authentication failed", "wrong user or password"),
    ("authentication failed", "wrong user or password"),
    ("does not exist", "missing table or database"),
    ("Connection refused", "database unreachable"),
    ("connection attempt failed", "database unreachable"),
)


def _redacted_url(url: str) -> str:
    return url.split("?", 1)[0]


def source_error(source_name: str, source: JdbcSource, what: str, exc: Exception) -> SourceError:
    """Turn a driver exception (through py4j) into a one-line, secret-free SourceError."""
    text = str(exc)
    detail = next((line.strip() for line in text.splitlines() if "Exception:" in line), text)
    detail = detail.split("Exception:", 1)[-1].strip()[:300]
    reason = next((label for marker, label in _REASONS if marker in text), "read failed")
    transient = any(marker in text for marker in _TRANSIENT_MARKERS)
    return SourceError(
        f"source {source_name} ({_redacted_url(source.url)}), {what}: {reason}: {detail}",
        transient=transient,
        stage="ingest",
    )


class JdbcReader:
    """Reads the tables of one JDBC source into Spark DataFrames."""

    def __init__(self, spark: SparkSession, source_name: str, source: JdbcSource):
        self.spark = spark
        self.source_name = source_name
        self.source = source
        self._password = source.password(source_name)

    def _options(self) -> dict[str, str]:
        return {
            "url": self.source.url,
            "driver": self.source.driver,
            "user": self.source.user,
            "password": self._password.get_secret_value(),
            # Spark's default fetch size 0 makes pgjdbc load a whole partition into memory.
            "fetchsize": str(self.source.fetch_size),
        }

    def _qualified(self, table: JdbcTable) -> str:
        return f"{self.source.db_schema}.{table.name}"

    def _query(self, sql: str, what: str) -> DataFrame:
        try:
            return self.spark.read.format("jdbc").options(**self._options(), query=sql).load()
        except Exception as exc:
            raise source_error(self.source_name, self.source, what, exc) from None

    def _bounds(self, table: JdbcTable, column: str) -> tuple[int, int] | None:
        sql = f"SELECT min({column}) AS lo, max({column}) AS hi FROM {self._qualified(table)}"
        row = self._query(sql, f"table {self._qualified(table)}").collect()[0]
        if row["lo"] is None:
            return None
        return int(row["lo"]), int(row["hi"])

    def read(self, table: JdbcTable, *, parallel: bool = True) -> DataFrame:
        """The whole table, read with ``num_partitions`` parallel range queries when the
        partition column (the configured one, else the key) is an integer column, unless
        ``parallel`` is false: then one query (no bounds to look up first), for a read
        expected to be small, such as an incremental run's."""
        from pyspark.sql.types import IntegralType

        what = f"table {self._qualified(table)}"
        options = {**self._options(), "dbtable": self._qualified(table)}
        try:
            # Only the schema is fetched here; rows are read when the job runs.
            frame = self.spark.read.format("jdbc").options(**options).load()
        except Exception as exc:
            raise source_error(self.source_name, self.source, what, exc) from None
        column = table.partition_column or table.key
        if (
            parallel
            and self.source.num_partitions > 1
            and column in frame.columns
            and isinstance(frame.schema[column].dataType, IntegralType)
        ):
            bounds = self._bounds(table, column)
            if bounds is not None and bounds[1] > bounds[0]:
                options.update(
                    partitionColumn=column,
                    lowerBound=str(bounds[0]),
                    upperBound=str(bounds[1] + 1),
                    numPartitions=str(self.source.num_partitions),
                )
                try:
                    frame = self.spark.read.format("jdbc").options(**options).load()
                except Exception as exc:
                    raise source_error(self.source_name, self.source, what, exc) from None
        for role, column in (
            ("key", table.key),
            ("watermark", table.watermark),
            ("soft_delete_column", table.soft_delete_column),
            ("partition_column", table.partition_column),
        ):
            if column is not None and column not in frame.columns:
                raise SourceError(
                    f"source {self.source_name}, {what}: {role} column {column!r} is not in"
                    f" the table (columns: {', '.join(frame.columns)})",
                    stage="ingest",
                )
        return frame
