"""Session-wide fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipelines.local_postgres import LocalPostgres, PostgresInfo


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresInfo]:
    """One PostgreSQL server on loopback for the whole session, with database ``erp``.

    Tests may load the demo ERP into it; ``load_demo_erp`` replaces schema ``erp`` each time.
    """
    with LocalPostgres(tmp_path_factory.mktemp("postgres") / "data") as info:
        yield info
