"""Publish a DP aggregate to the curated zone, paying for it in the budget ledger.

Order matters (STYLE.md, "incremental state … commits with the data"): the charge is reserved
before anything is written, so an over-budget release is refused with nothing on disk; the
Iceberg commit happens next; the charge is committed last, with the snapshot id it paid for.
If the write fails, the reservation is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from privacy.aggregate import AggregateSpec, dp_aggregate
from privacy.ledger import BudgetLedger
from privacy.policy import Budget

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog


@dataclass(frozen=True)
class PublishedRelease:
    table: str
    snapshot_id: int | None
    rows: int
    epsilon_after: float


def publish_aggregate(
    catalog: Catalog,
    ledger: BudgetLedger,
    *,
    dataset: str,
    name: str,
    source: pa.Table,
    spec: AggregateSpec,
    budget: Budget,
    run_id: str | None = None,
    rng: np.random.Generator | None = None,
) -> PublishedRelease:
    """Compute ``spec`` over ``source`` and write it to ``curated.<name>`` within ``budget``.

    Raises ``BudgetExceeded`` before writing when the release would exceed the budget.
    """
    if spec.privacy_unit != budget.privacy_unit:
        raise ValueError(
            f"aggregate bounds contributions per {spec.privacy_unit}, the budget is per"
            f" {budget.privacy_unit}"
        )
    release = dp_aggregate(source, spec, rng=rng)
    description = f"{spec.kind} of {spec.value or 'rows'} by {spec.group_by} -> curated.{name}"
    reservation = ledger.reserve(
        dataset, budget, release.mechanisms, kind="release", description=description, run_id=run_id
    )
    try:
        catalog.create_namespace_if_not_exists("curated")
        table = catalog.create_table_if_not_exists(f"curated.{name}", schema=release.table.schema)
        table.overwrite(
            release.table,
            snapshot_properties={
                "steward.privacy.charge-id": reservation.charge_id,
                **({"steward.run-id": run_id} if run_id else {}),
            },
        )
        snapshot = table.current_snapshot()
    except BaseException:
        ledger.cancel(reservation)
        raise
    snapshot_id = snapshot.snapshot_id if snapshot is not None else None
    ledger.commit(reservation, reference=f"curated.{name}@{snapshot_id}")
    return PublishedRelease(
        f"curated.{name}", snapshot_id, release.table.num_rows, reservation.epsilon_after
    )
