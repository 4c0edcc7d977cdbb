"""The error families Steward raises, each with the exit code a scheduler acts on.

Every error says what failed and where (file:line, table, record, URL without secrets) in its
message, names the stage it happened in when known, and says whether a retry can help
(``transient``): a database that is down may come back, a typo in a YAML file will not.
The CLI turns any ``StewardError`` into one line on stderr and ``exit_code``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in README.md ("Exit codes")."""

    OK = 0
    FAILURE = 1  # an unexpected error: a bug, reported with a traceback
    USAGE = 2  # bad command line (typer/click's own code)
    CONFIG = 3  # invalid config, rule pack or policy; nothing was run
    SOURCE = 4  # a source is unreachable, refuses the credentials or lacks a table
    LAKE = 5  # the catalog or warehouse is locked, corrupt or unreachable
    QUALITY = 6  # a quality gate blocked the publish
    ACCOUNTING = 7  # rows in != rows out + quarantined + dropped
    BUDGET = 8  # the privacy budget would be exceeded
    RULE_TIMEOUT = 9  # a rule exceeded its time limit outside a record context


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (engines raise pages of JVM or Rust trace), or
    its class name when it has no text: what a one-line error quotes of its cause."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class StewardError(Exception):
    """Base of every error meant for a person rather than a traceback."""

    exit_code: ExitCode = ExitCode.FAILURE
    transient: bool = False

    def __init__(self, message: str, *, stage: str | None = None, run_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.run_id = run_id

    def one_line(self) -> str:
        """The message a person reads: error family, stage and run when known, and what."""
        where = "".join(
            f" [{label} {value}]"
            for label, value in (("stage", self.stage), ("run", self.run_id))
            if value
        )
        kind = "transient" if self.transient else "terminal"
        return f"{type(self).__name__}{where} ({kind}): {self.message}"


class ConfigError(StewardError):
    """Invalid configuration: the message carries ``file:line: field: reason``."""

    exit_code = ExitCode.CONFIG


class SourceError(StewardError):
    """A source cannot be read: unreachable, bad credentials, missing table, bad response."""

    exit_code = ExitCode.SOURCE

    def __init__(self, message: str, *, transient: bool = False, **kwargs: str | None):
        super().__init__(message, **kwargs)
        self.transient = transient


class LakeError(StewardError):
    """The Iceberg catalog or warehouse cannot be used (locked, corrupt, missing)."""

    exit_code = ExitCode.LAKE

    def __init__(self, message: str, *, transient: bool = False, **kwargs: str | None):
        super().__init__(message, **kwargs)
        self.transient = transient


class QualityGateFailed(StewardError):
    """A batch-level quality check failed: the publish was blocked."""

    exit_code = ExitCode.QUALITY


class AccountingError(StewardError):
    """Row counts of a stage do not balance: something would have been lost."""

    exit_code = ExitCode.ACCOUNTING


class BudgetExceeded(StewardError):
    """A release would spend more privacy budget than configured."""

    exit_code = ExitCode.BUDGET


class RuleTimeout(StewardError):
    """A cleaning rule ran past its time limit (records that time out are quarantined)."""

    exit_code = ExitCode.RULE_TIMEOUT
