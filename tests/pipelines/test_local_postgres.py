"""The throwaway PostgreSQL server: loopback only, password auth, reusable data dir."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipelines.errors import SourceError
from pipelines.local_postgres import LocalPostgres, PostgresInfo


@pytest.fixture(scope="module")
def spare_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A second, initialised but stopped cluster, for tests that restart or break a server."""
    data_dir = tmp_path_factory.mktemp("spare") / "data"
    LocalPostgres(data_dir).start()
    LocalPostgres(data_dir).stop()
    yield data_dir
    LocalPostgres(data_dir).stop()


@pytest.mark.postgres
def test_server_listens_on_loopback_only(postgres: PostgresInfo) -> None:
    with psycopg.connect(postgres.dsn()) as conn:
        row = conn.execute(
            "SELECT host(inet_server_addr()), current_setting('listen_addresses'),"
            " current_user, current_database()"
        ).fetchone()
    assert row == ("127.0.0.1", "127.0.0.1", "steward", "erp")
    assert postgres.jdbc_url == f"jdbc:postgresql://127.0.0.1:{postgres.port}/erp"


@pytest.mark.postgres
def test_wrong_password_is_refused(postgres: PostgresInfo) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=postgres.host,
            port=postgres.port,
            dbname=postgres.database,
            user=postgres.user,
            password=postgres.password + "x",
        )


@pytest.mark.postgres
def test_superuser_is_not_reachable_over_tcp(postgres: PostgresInfo) -> None:
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host=postgres.host,
            port=postgres.port,
            dbname="postgres",
            user="postgres",
            password="",
        )


@pytest.mark.postgres
def test_password_is_private_and_never_shown(postgres: PostgresInfo) -> None:
    assert postgres.password not in repr(postgres)
    assert postgres.password not in postgres.redacted_url
    assert postgres.password not in postgres.jdbc_url


@pytest.mark.postgres
def test_restart_reuses_data_dir_and_password(spare_data_dir: Path) -> None:
    server = LocalPostgres(spare_data_dir)
    password_file = server.password_file
    stored = password_file.read_text(encoding="utf-8").strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600

    with server as info:
        assert info.password == stored
        with psycopg.connect(info.dsn()) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS survives_restart (x int)")
    with server as info, psycopg.connect(info.dsn()) as conn:
        assert conn.execute("SELECT to_regclass('survives_restart')").fetchone() == (
            "survives_restart",
        )
    assert password_file.read_text(encoding="utf-8").strip() == stored


@pytest.mark.postgres
def test_second_server_on_a_running_data_dir_is_refused(spare_data_dir: Path) -> None:
    with LocalPostgres(spare_data_dir), pytest.raises(SourceError, match="already runs"):
        LocalPostgres(spare_data_dir).start()


@pytest.mark.postgres
def test_start_failure_reports_the_server_log(spare_data_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy_port = squatter.getsockname()[1]
        with pytest.raises(SourceError, match="failed to start") as caught:
            LocalPostgres(spare_data_dir, port=busy_port).start()
    assert "could not bind" in caught.value.message
    assert str(spare_data_dir / "server.log") in caught.value.message


def test_missing_binaries_are_a_source_error(tmp_path: Path) -> None:
    server = LocalPostgres(tmp_path / "data", bindir=tmp_path / "no-such-bin")
    with pytest.raises(SourceError, match="initdb, pg_ctl") as caught:
        server.start()
    assert str(tmp_path / "no-such-bin") in caught.value.message
    assert not (tmp_path / "data").exists()
