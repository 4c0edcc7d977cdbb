"""A throwaway local PostgreSQL server for the demo and for test fixtures.

For a data dir ``<area>/<name>`` the server uses, all inside ``<area>``:

* ``<name>/``: the cluster (PGDATA), owned by the server's OS user, mode 0700; the server log is
  ``<name>/server.log``.
* ``<name>.password``: the application role's password, generated once with :mod:`secrets`,
  mode 0600, owned by whoever runs Steward. A restart of the same data dir reuses it.
* ``<name>.socket/``: the unix socket directory, owned by the server's OS user, mode 0700.

The server listens on TCP 127.0.0.1 only and asks for a scram-sha-256 password there. The unix
socket trusts whoever reaches it, which only the server's OS user and root can; Steward uses it
once per start to create the application role and database.

PostgreSQL refuses to run as root: when Steward runs as root, ``initdb`` and ``pg_ctl`` run as
the ``postgres`` OS user (Debian's ``postgresql`` package creates it), and every directory above
the area that this user could not walk through gets the search bit for it (never the read bit,
so names there stay unlistable). Debian keeps the server binaries off PATH; they are found with
``pg_config --bindir`` or as the newest ``/usr/lib/postgresql/<version>/bin``.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pipelines.errors import SourceError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
SERVER_OS_USER = "postgres"  # the OS user the server runs as when Steward runs as root
_SUPERUSER = "postgres"  # the cluster's bootstrap role, reachable over the unix socket only
_DEBIAN_BINDIRS = Path("/usr/lib/postgresql")
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes including the terminating NUL
_PG_CTL_TIMEOUT_S = 60
_LOG_TAIL_LINES = 20

_PG_HBA = f"""\
# Written by pipelines/local_postgres.py; rewritten on every start.
# The socket directory is 0700, so "trust" admits only the server's OS user and root.
local all all trust
host  all all {LOOPBACK}/32 scram-sha-256
"""


@dataclass(frozen=True)
class PostgresInfo:
    """Where and how to connect to a database; ``repr`` and ``redacted_url`` omit the password."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)

    @property
    def jdbc_url(self) -> str:
        """The JDBC URL without credentials (pass user and password as properties)."""
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"

    @property
    def redacted_url(self) -> str:
        """A URL naming the server, database and user but not the password, for messages."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def dsn(self) -> str:
        """A libpq conninfo string, password included, for ``psycopg.connect``."""
        return make_conninfo(
            host=self.host,
            port=self.port,
            dbname=self.database,
            user=self.user,
            password=self.password,
        )


@dataclass(frozen=True)
class _OsUser:
    """The OS user that runs the server processes when Steward itself runs as root."""

    name: str
    uid: int
    gid: int
    groups: frozenset[int]


def find_server_bindir() -> Path:
    """Return the directory holding ``initdb`` and ``pg_ctl``.

    Looks at PATH, then ``pg_config --bindir``, then the newest ``/usr/lib/postgresql/*/bin``.
    Raises SourceError naming every place looked at when none holds both binaries.
    """
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        # Debian's pg_config comes with libpq-dev and may name a version whose server is not
        # installed, so its answer is checked like any other candidate.
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    if _DEBIAN_BINDIRS.is_dir():
        versions = sorted(
            (p for p in _DEBIAN_BINDIRS.iterdir() if re.fullmatch(r"\d+(\.\d+)?", p.name)),
            key=lambda p: tuple(int(part) for part in p.name.split(".")),
            reverse=True,
        )
        candidates.extend(p / "bin" for p in versions)
    for bindir in candidates:
        if _has_server_binaries(bindir):
            return bindir
    looked = ", ".join(str(p) for p in candidates) or "PATH, pg_config, /usr/lib/postgresql/*/bin"
    raise SourceError(
        f"PostgreSQL server binaries (initdb, pg_ctl) not found; looked in: {looked}. "
        "Install the server (Debian: apt-get install postgresql)."
    )


class LocalPostgres:
    """A PostgreSQL server on loopback for one data dir; a context manager yielding its info.

    ``start`` creates the cluster on first use and reuses it afterwards, together with its
    password; ``port=None`` picks a free loopback port on each start.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        database: str = "erp",
        user: str = "steward",
        *,
        bindir: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.database = database
        self.user = user
        self._bindir = bindir
        self._info: PostgresInfo | None = None

    @property
    def password_file(self) -> Path:
        """The 0600 file beside the data dir that holds the application role's password."""
        return self.data_dir.with_name(f"{self.data_dir.name}.password")

    @property
    def socket_dir(self) -> Path:
        """The directory beside the data dir that holds the server's unix socket."""
        return self.data_dir.with_name(f"{self.data_dir.name}.socket")

    @property
    def log_file(self) -> Path:
        """The server log, kept inside the data dir where the server's OS user may write."""
        return self.data_dir / "server.log"

    def __enter__(self) -> PostgresInfo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> PostgresInfo:
        """Start the server and return how to reach the application database.

        Initialises the cluster if the data dir holds none, listens on 127.0.0.1 only, and
        creates the role (with the stored password) and the database if they are missing.
        Returns once the server accepts connections. Raises SourceError when the binaries are
        missing, the data dir is unusable, a server already runs on it, or it fails to start
        (the message carries the tail of the server log).
        """
        if self._info is not None:
            return self._info
        bindir = self._server_bindir()
        os_user = _server_os_user()
        area = self.data_dir.parent
        area.mkdir(parents=True, exist_ok=True)
        if os_user is not None:
            _grant_traverse(area, os_user)
        password = self._read_or_create_password()
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb(bindir, os_user)
        self._prepare_socket_dir(os_user)
        if self._is_running(bindir, os_user):
            raise SourceError(
                f"a PostgreSQL server already runs on {self.data_dir}; stop it first "
                f"({bindir / 'pg_ctl'} stop -D {self.data_dir})"
            )
        port = self.port or _free_loopback_port()
        self._write_settings(port, os_user)
        result = self._run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(_PG_CTL_TIMEOUT_S),
            ],
            os_user,
        )
        if result.returncode != 0:
            raise SourceError(
                f"PostgreSQL failed to start on {LOOPBACK}:{port} with data dir "
                f"{self.data_dir}: {result.stderr.strip() or result.stdout.strip()}\n"
                f"tail of {self.log_file}:\n{_tail(self.log_file)}"
            )
        try:
            self._create_role_and_database(port, password)
        except SourceError:
            self.stop()  # leave no server running that no caller holds
            raise
        self._info = PostgresInfo(LOOPBACK, port, self.database, self.user, password)
        logger.info("PostgreSQL listening on %s:%d, data dir %s", LOOPBACK, port, self.data_dir)
        return self._info

    def stop(self) -> None:
        """Stop the server if it runs (fast shutdown: open sessions are ended); else do nothing."""
        self._info = None
        if not (self.data_dir / "postmaster.pid").exists():
            return
        bindir = self._server_bindir()
        os_user = _server_os_user()
        if not self._is_running(bindir, os_user):
            return
        result = self._run(
            [
                str(bindir / "pg_ctl"),
                "stop",
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                str(_PG_CTL_TIMEOUT_S),
            ],
            os_user,
        )
        if result.returncode != 0:
            raise SourceError(
                f"PostgreSQL on data dir {self.data_dir} did not stop: "
                f"{result.stderr.strip()}\ntail of {self.log_file}:\n{_tail(self.log_file)}",
                transient=True,
            )

    def _server_bindir(self) -> Path:
        if self._bindir is None:
            return find_server_bindir()
        if not _has_server_binaries(self._bindir):
            raise SourceError(f"PostgreSQL server binaries (initdb, pg_ctl) not in {self._bindir}")
        return self._bindir

    def _read_or_create_password(self) -> str:
        path = self.password_file
        if path.exists():
            # A copied file may have lost its mode; the password must stay private either way.
            path.chmod(0o600)
            password = path.read_text(encoding="utf-8").strip()
            if not password:
                raise SourceError(f"password file {path} is empty; delete it and the data dir")
            return password
        password = secrets.token_urlsafe(24)
        # O_EXCL with mode 0600: the file never exists with looser permissions, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(password + "\n")
        return password

    def _initdb(self, bindir: Path, os_user: _OsUser | None) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise SourceError(
                f"{self.data_dir} is neither empty nor a PostgreSQL data dir (no PG_VERSION)"
            )
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        _give_to(self.data_dir, os_user)
        result = self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                f"--username={_SUPERUSER}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                # The C locale keeps sorting byte-wise and identical on every machine.
                "--no-locale",
            ],
            os_user,
        )
        if result.returncode != 0:
            raise SourceError(
                f"initdb failed for {self.data_dir}: "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\ninclude 'steward.conf'\n")

    def _prepare_socket_dir(self, os_user: _OsUser | None) -> None:
        longest = self.socket_dir / ".s.PGSQL.65535"
        if len(os.fsencode(longest)) > _SOCKET_PATH_MAX:
            raise SourceError(
                f"unix socket path {longest} is longer than {_SOCKET_PATH_MAX} bytes; "
                "choose a data dir with a shorter path"
            )
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.socket_dir.chmod(0o700)
        _give_to(self.socket_dir, os_user)

    def _write_settings(self, port: int, os_user: _OsUser | None) -> None:
        settings = {
            "listen_addresses": _quote(LOOPBACK),
            "port": str(port),
            "unix_socket_directories": _quote(str(self.socket_dir)),
            "unix_socket_permissions": "0700",
            "password_encryption": "'scram-sha-256'",
            # A throwaway server: losing it in a power cut is fine, waiting for disks is not.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        lines = ["# Written by pipelines/local_postgres.py on every start."]
        lines += [f"{name} = {value}" for name, value in settings.items()]
        _write_owned(self.data_dir / "steward.conf", "\n".join(lines) + "\n", os_user)
        _write_owned(self.data_dir / "pg_hba.conf", _PG_HBA, os_user)

    def _is_running(self, bindir: Path, os_user: _OsUser | None) -> bool:
        result = self._run([str(bindir / "pg_ctl"), "status", "-D", str(self.data_dir)], os_user)
        return result.returncode == 0

    def _create_role_and_database(self, port: int, password: str) -> None:
        try:
            with psycopg.connect(
                host=str(self.socket_dir),
                port=port,
                user=_SUPERUSER,
                dbname="postgres",
                autocommit=True,
            ) as conn:
                # Only the SCRAM verifier reaches the server, so the password cannot end up in
                # its log even if the statement fails.
                verifier = conn.pgconn.encrypt_password(
                    password.encode(), self.user.encode(), b"scram-sha-256"
                ).decode()
                role_exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,)
                ).fetchone()
                conn.execute(
                    sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                        sql.SQL("ALTER" if role_exists else "CREATE"),
                        sql.Identifier(self.user),
                        sql.Literal(verifier),
                    )
                )
                db_exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                ).fetchone()
                if not db_exists:
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(self.database), sql.Identifier(self.user)
                        )
                    )
        except psycopg.Error as exc:
            raise SourceError(
                f"could not create role {self.user!r} and database {self.database!r} on the "
                f"server at {self.socket_dir} (port {port}): {exc}"
            ) from exc

    def _run(self, args: list[str], os_user: _OsUser | None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                args,
                capture_output=True,
                text=True,
                check=False,
                cwd=self.data_dir.parent,
                timeout=_PG_CTL_TIMEOUT_S + 30,
                user=os_user.uid if os_user else None,
                group=os_user.gid if os_user else None,
                extra_groups=[] if os_user else None,
            )
        except subprocess.TimeoutExpired as exc:
            raise SourceError(
                f"{Path(args[0]).name} timed out for data dir {self.data_dir}\n"
                f"tail of {self.log_file}:\n{_tail(self.log_file)}",
                transient=True,
            ) from exc


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _server_os_user() -> _OsUser | None:
    """The OS user to run the server as, or None to run it as ourselves (when not root)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_OS_USER)
    except KeyError as exc:
        raise SourceError(
            f"running as root, but there is no OS user {SERVER_OS_USER!r} to run PostgreSQL as "
            "(Debian's postgresql package creates it)"
        ) from exc
    groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return _OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def _grant_traverse(directory: Path, os_user: _OsUser) -> None:
    """Add the search bit that ``os_user`` lacks on ``directory`` and each of its parents."""
    for path in (directory, *directory.parents):
        mode = path.stat()
        if mode.st_uid == os_user.uid:
            needed = stat.S_IXUSR
        elif mode.st_gid in os_user.groups:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not mode.st_mode & needed:
            path.chmod(stat.S_IMODE(mode.st_mode) | needed)


def _give_to(path: Path, os_user: _OsUser | None) -> None:
    if os_user is not None:
        os.chown(path, os_user.uid, os_user.gid)


def _write_owned(path: Path, text: str, os_user: _OsUser | None) -> None:
    path.write_text(text, encoding="utf-8")
    _give_to(path, os_user)


def _quote(value: str) -> str:
    """Quote a postgresql.conf string value."""
    return "'" + value.replace("'", "''") + "'"


def _free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])
