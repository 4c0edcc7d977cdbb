"""Scheduled batch runs in one process: ``steward run batch --every 15m``.

A batch run started by cron or an orchestrator starts a JVM, a Spark session and the lake's
catalog every time, and the JIT compiles Spark's and Iceberg's planning code again for every
run. On the bench's 1,000,000-row lake a 1% incremental run took 44 to 112 s that way, against
22 to 45 s in a process that had run the batch before, on the same day (``bench/README.md``,
session 6). With ``--every``, one process keeps one Spark session and runs the batch at a
fixed rate: each run starts one interval after the previous one started, or at once when that
one took longer.

Every run is a whole batch run with its own ledger entry, watermarks and commits, so stopping
the process at any point is as safe as stopping a single run. A run that fails for a reason
the next run may not meet is reported and the schedule goes on: a source or lake error marked
transient (a database that is unreachable, a commit that lost a race), or a quality gate that
stopped a bad batch (the next export may be fixed). Any other error (the config, a wrong
password, the row accounting, the privacy budget) stops the schedule: every later run would
fail the same way.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from pipelines.errors import ConfigError, LakeError, QualityGateFailed, SourceError, StewardError

T = TypeVar("T")


def retried(exc: StewardError) -> bool:
    """Whether the next run may get past ``exc`` without anyone changing the config."""
    if isinstance(exc, SourceError | LakeError):
        return exc.transient
    return isinstance(exc, QualityGateFailed)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"(?:\d+[smhd])+")
_PART = re.compile(r"(\d+)([smhd])")


def parse_interval(text: str) -> float:
    """Seconds in an interval written as ``30s``, ``15m``, ``2h``, ``1d`` or ``1h30m``."""
    compact = text.strip().lower()
    if not _INTERVAL.fullmatch(compact):
        raise ConfigError(
            f"--every: {text!r} is not an interval (write it as 30s, 15m, 2h, 1d or 1h30m)"
        )
    seconds = sum(int(count) * _UNITS[unit] for count, unit in _PART.findall(compact))
    if seconds == 0:
        raise ConfigError(f"--every: {text!r} is no time at all")
    return float(seconds)


def run_every(
    run_once: Callable[[bool], T],
    every_s: float,
    *,
    runs: int | None = None,
    full_first: bool = False,
    on_run: Callable[[T], None] = lambda _: None,
    on_error: Callable[[StewardError], None] = lambda _: None,
    wait: Callable[[float], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Call ``run_once(full)`` every ``every_s`` seconds until ``runs`` runs are done (None:
    until ``wait`` returns True, i.e. the stop event is set); only the first run is ``full``
    when ``full_first``. Returns the exit code of the last run (0 when it succeeded).

    ``on_run`` gets each run's result, ``on_error`` each error the next run may get past
    (:func:`retried`); any other exception propagates and ends the schedule.
    ``wait(seconds)`` sleeps until the next run and returns True to stop (default: a private
    event's ``wait``).
    """
    if wait is None:
        wait = threading.Event().wait
    done = 0
    exit_code = 0
    while True:
        started = clock()
        try:
            on_run(run_once(full_first and done == 0))
            exit_code = 0
        except StewardError as exc:
            if not retried(exc):
                raise
            on_error(exc)
            exit_code = int(exc.exit_code)
        done += 1
        if runs is not None and done >= runs:
            return exit_code
        if wait(max(0.0, started + every_s - clock())):
            return exit_code
