"""Errors raised while loading or compiling rule packs.

A pack is edited by a data steward, so every problem names the file and line it came from. One
load can find several problems; they are all kept on the error so that a linter can list them,
while the message (what the CLI prints on one line) shows the first and counts the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import ConfigError

STAGE = "cleaning_rules"


@dataclass(frozen=True, slots=True)
class PackIssue:
    """One problem in a pack file: where it is (``path:line``), which field, and why."""

    path: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        field = f" {self.field}:" if self.field else ""
        return f"{self.path}:{self.line}:{field} {self.message}"


class RulePackError(ConfigError):
    """A rule pack is missing, unreadable or invalid; ``issues`` lists every problem found."""

    def __init__(self, message: str, *, issues: tuple[PackIssue, ...] = ()):
        super().__init__(message, stage=STAGE)
        self.issues = issues

    @classmethod
    def from_issues(cls, issues: list[PackIssue]) -> RulePackError:
        """One error for a non-empty list of issues, the first one in the message."""
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        return cls(f"{issues[0]}{more}", issues=tuple(issues))
