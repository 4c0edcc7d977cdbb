"""The privacy-budget ledger: what each dataset has spent, per privacy unit, in the lake.

A SQLite file at ``<lake root>/privacy_budget.db``, beside the run ledger (``ledger.db``). Not
an Iceberg table, because a charge must be *check-and-write* in one transaction: two releases
starting at once must not both fit into the last bit of budget. SQLite's ``BEGIN IMMEDIATE``
gives that with a file lock; an Iceberg append is optimistic and could only detect the race
after both had written. A file also lets ``steward privacy budget`` and an auditor read it
without a JVM. A lake on object storage will need the same tables in the PostgreSQL catalog
database instead (same schema, ``SELECT … FOR UPDATE``).

Charges go through two steps so nothing is written over budget and nothing is charged for a
release that never happened:

1. ``reserve`` composes the dataset's history plus the new mechanisms with the configured
   opacus accountant and raises ``BudgetExceeded`` if the result is over budget, *before*
   anything is written. Otherwise it records a ``reserved`` charge, which counts as spent for
   every later check.
2. After the release is published, ``commit`` marks it ``committed`` (with a reference such
   as the Iceberg snapshot id); if publishing failed, ``cancel`` frees it. A crash between the
   two leaves it reserved: conservative, shown by ``steward privacy budget``.

Composed epsilons are cached on the budget row after every change, so reading the ledger never
imports opacus (and torch).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pipelines.errors import BudgetExceeded, LakeError
from privacy.accounting import MECHANISMS, Mechanism, compose
from privacy.policy import Budget

LEDGER_FILE = "privacy_budget.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budgets (
    dataset TEXT NOT NULL,
    privacy_unit TEXT NOT NULL,
    epsilon REAL NOT NULL,
    delta REAL NOT NULL,
    accountant TEXT NOT NULL,
    spent_epsilon REAL NOT NULL DEFAULT 0,
    reserved_epsilon REAL NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (dataset, privacy_unit)
);
CREATE TABLE IF NOT EXISTS charges (
    charge_id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    privacy_unit TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('reserved', 'committed', 'cancelled')),
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    mechanisms TEXT NOT NULL,
    epsilon_after REAL NOT NULL,
    run_id TEXT,
    reference TEXT,
    created_at TEXT NOT NULL,
    settled_at TEXT
);
CREATE INDEX IF NOT EXISTS charges_by_budget ON charges (dataset, privacy_unit, status);
"""

ChargeKind = Literal["release", "noise", "dp_sgd", "synthetic_model"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Reservation:
    """A charge that fits the budget and is held until its release is published."""

    charge_id: str
    dataset: str
    privacy_unit: str
    epsilon_after: float


@dataclass(frozen=True)
class BudgetStatus:
    dataset: str
    privacy_unit: str
    epsilon: float
    delta: float
    accountant: str
    spent_epsilon: float  # committed charges, composed
    reserved_epsilon: float  # committed and reserved charges, composed
    charges: int
    updated_at: str

    @property
    def remaining_epsilon(self) -> float:
        """Headroom in composed epsilon. Not additive: the next charge is checked by composing."""
        return max(0.0, self.epsilon - self.reserved_epsilon)


class BudgetLedger:
    """The privacy-budget ledger in one SQLite file."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def for_lake(cls, lake_root: Path) -> BudgetLedger:
        return cls(lake_root / LEDGER_FILE)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
                db.row_factory = sqlite3.Row
                db.executescript(_SCHEMA)
                yield db
        except sqlite3.Error as exc:
            raise LakeError(f"privacy budget ledger {self.path}: {exc}") from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            # IMMEDIATE takes the write lock before reading, so check-and-charge is atomic.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- charging ---------------------------------------------------------------------------

    def reserve(
        self,
        dataset: str,
        budget: Budget,
        mechanisms: Sequence[Mechanism],
        *,
        kind: ChargeKind,
        description: str,
        run_id: str | None = None,
    ) -> Reservation:
        """Hold a charge if it fits ``budget``; raise ``BudgetExceeded`` (nothing held) if not."""
        if not mechanisms:
            raise ValueError("a charge needs at least one mechanism")
        with self._transaction() as db:
            self._declare(db, dataset, budget)
            history = self._history(db, dataset, budget.privacy_unit, ("reserved", "committed"))
            after = compose([*history, *mechanisms], budget.delta, budget.accountant)
            if after > budget.epsilon:
                before = compose(history, budget.delta, budget.accountant)
                raise BudgetExceeded(
                    f"dataset {dataset}, privacy unit {budget.privacy_unit}: {description}"
                    f" would bring epsilon from {before:.3f} to {after:.3f} at delta"
                    f" {budget.delta:g} ({budget.accountant}); the budget is"
                    f" {budget.epsilon:g}. Nothing was written.",
                    stage="privacy",
                    run_id=run_id,
                )
            charge_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO charges (charge_id, dataset, privacy_unit, status, kind, description,"
                " mechanisms, epsilon_after, run_id, created_at)"
                " VALUES (?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?)",
                (
                    charge_id,
                    dataset,
                    budget.privacy_unit,
                    kind,
                    description,
                    MECHANISMS.dump_json(list(mechanisms)).decode(),
                    after,
                    run_id,
                    _now(),
                ),
            )
            self._refresh(db, dataset, budget)
        return Reservation(charge_id, dataset, budget.privacy_unit, after)

    def commit(
        self,
        reservation: Reservation,
        *,
        reference: str | None = None,
        mechanisms: Sequence[Mechanism] | None = None,
    ) -> None:
        """Mark a reserved charge spent, after its release is published.

        ``mechanisms`` replaces what was reserved when the actual spend differs (DP-SGD that
        stopped early); spending more than reserved is checked against the budget again.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT status FROM charges WHERE charge_id = ?", (reservation.charge_id,)
            ).fetchone()
            if row is None or row["status"] != "reserved":
                status = row["status"] if row else "missing"
                raise LakeError(f"charge {reservation.charge_id} is {status}, not reserved")
            budget = self._budget(db, reservation.dataset, reservation.privacy_unit)
            if mechanisms is not None:
                others = self._history(
                    db,
                    reservation.dataset,
                    reservation.privacy_unit,
                    ("reserved", "committed"),
                    exclude=reservation.charge_id,
                )
                after = compose([*others, *mechanisms], budget.delta, budget.accountant)
                if after > budget.epsilon:
                    raise BudgetExceeded(
                        f"dataset {reservation.dataset}: the actual spend ({after:.3f}) exceeds"
                        f" the budget {budget.epsilon:g}; do not publish what it paid for",
                        stage="privacy",
                    )
                db.execute(
                    "UPDATE charges SET mechanisms = ?, epsilon_after = ? WHERE charge_id = ?",
                    (MECHANISMS.dump_json(list(mechanisms)).decode(), after, reservation.charge_id),
                )
            db.execute(
                "UPDATE charges SET status = 'committed', reference = ?, settled_at = ?"
                " WHERE charge_id = ?",
                (reference, _now(), reservation.charge_id),
            )
            self._refresh(db, reservation.dataset, budget)

    def cancel(self, reservation: Reservation) -> None:
        """Free a reserved charge whose release was not published."""
        with self._transaction() as db:
            db.execute(
                "UPDATE charges SET status = 'cancelled', settled_at = ?"
                " WHERE charge_id = ? AND status = 'reserved'",
                (_now(), reservation.charge_id),
            )
            budget = self._budget(db, reservation.dataset, reservation.privacy_unit)
            self._refresh(db, reservation.dataset, budget)

    @contextmanager
    def charge(
        self,
        dataset: str,
        budget: Budget,
        mechanisms: Sequence[Mechanism],
        *,
        kind: ChargeKind,
        description: str,
        run_id: str | None = None,
    ) -> Iterator[Reservation]:
        """Reserve, run the body (the publish), then commit; cancel if the body fails."""
        reservation = self.reserve(
            dataset, budget, mechanisms, kind=kind, description=description, run_id=run_id
        )
        try:
            yield reservation
        except BaseException:
            self.cancel(reservation)
            raise
        self.commit(reservation)

    # -- reading ----------------------------------------------------------------------------

    def history(
        self, dataset: str, privacy_unit: str, *, include_reserved: bool = True
    ) -> list[Mechanism]:
        statuses = ("reserved", "committed") if include_reserved else ("committed",)
        with self._connect() as db:
            return self._history(db, dataset, privacy_unit, statuses)

    def spent(self, dataset: str, budget: Budget, *, include_reserved: bool = True) -> float:
        """Composed epsilon of the dataset's charges at the budget's delta (recomputed)."""
        mechanisms = self.history(dataset, budget.privacy_unit, include_reserved=include_reserved)
        return compose(mechanisms, budget.delta, budget.accountant)

    def status(self, dataset: str | None = None) -> list[BudgetStatus]:
        """Every budget (or one dataset's), from the cached composed epsilons."""
        if not self.path.exists():
            return []
        query = (
            "SELECT b.*, (SELECT COUNT(*) FROM charges c WHERE c.dataset = b.dataset"
            " AND c.privacy_unit = b.privacy_unit AND c.status != 'cancelled') AS charges"
            " FROM budgets b"
        )
        params: tuple[str, ...] = ()
        if dataset is not None:
            query += " WHERE b.dataset = ?"
            params = (dataset,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY b.dataset, b.privacy_unit", params).fetchall()
        return [BudgetStatus(**dict(row)) for row in rows]

    def charges(self, dataset: str) -> list[dict[str, object]]:
        """A dataset's charges, oldest first, mechanisms decoded."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM charges WHERE dataset = ? ORDER BY created_at, rowid", (dataset,)
            ).fetchall()
        return [{**dict(row), "mechanisms": json.loads(row["mechanisms"])} for row in rows]

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _declare(db: sqlite3.Connection, dataset: str, budget: Budget) -> None:
        # The configured budget is the latest one: lowering it below what is spent makes every
        # later charge fail, which is the intended way to close a dataset.
        db.execute(
            "INSERT INTO budgets (dataset, privacy_unit, epsilon, delta, accountant, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dataset, privacy_unit) DO UPDATE SET"
            " epsilon = excluded.epsilon, delta = excluded.delta,"
            " accountant = excluded.accountant, updated_at = excluded.updated_at",
            (
                dataset,
                budget.privacy_unit,
                budget.epsilon,
                budget.delta,
                budget.accountant,
                _now(),
            ),
        )

    @staticmethod
    def _budget(db: sqlite3.Connection, dataset: str, privacy_unit: str) -> Budget:
        row = db.execute(
            "SELECT * FROM budgets WHERE dataset = ? AND privacy_unit = ?", (dataset, privacy_unit)
        ).fetchone()
        return Budget(
            privacy_unit=privacy_unit,
            epsilon=row["epsilon"],
            delta=row["delta"],
            accountant=row["accountant"],
        )

    @staticmethod
    def _history(
        db: sqlite3.Connection,
        dataset: str,
        privacy_unit: str,
        statuses: Sequence[str],
        exclude: str | None = None,
    ) -> list[Mechanism]:
        marks = ", ".join("?" for _ in statuses)
        rows = db.execute(
            f"SELECT charge_id, mechanisms FROM charges WHERE dataset = ? AND privacy_unit = ?"
            f" AND status IN ({marks}) ORDER BY created_at, rowid",
            (dataset, privacy_unit, *statuses),
        ).fetchall()
        return [
            mechanism
            for row in rows
            if row["charge_id"] != exclude
            for mechanism in MECHANISMS.validate_json(row["mechanisms"])
        ]

    def _refresh(self, db: sqlite3.Connection, dataset: str, budget: Budget) -> None:
        unit = budget.privacy_unit
        spent = compose(
            self._history(db, dataset, unit, ("committed",)), budget.delta, budget.accountant
        )
        held = compose(
            self._history(db, dataset, unit, ("reserved", "committed")),
            budget.delta,
            budget.accountant,
        )
        db.execute(
            "UPDATE budgets SET spent_epsilon = ?, reserved_epsilon = ?, updated_at = ?"
            " WHERE dataset = ? AND privacy_unit = ?",
            (spent, held, _now(), dataset, unit),
        )
