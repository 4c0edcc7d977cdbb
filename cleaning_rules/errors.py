"""Errors raised while loading or compiling rule packs.

A pack is edited by a data steward, so every problem names the file and line it came from. One
load can find several problems; they are all kept on the error so that a linter can list them,
while the message (what the CLI prints on one line) shows the first and counts the rest.
"""

from __future__ import annotations

from pipelines.yaml_models import YamlError, YamlIssue

STAGE = "cleaning_rules"

# One problem in a pack file: ``path:line``, the field, and why.
PackIssue = YamlIssue


class RulePackError(YamlError):
    """A rule pack is missing, unreadable or invalid; ``issues`` lists every problem found."""

    def __init__(
        self, message: str, *, issues: tuple[YamlIssue, ...] = (), stage: str | None = None
    ):
        super().__init__(message, issues=issues, stage=stage or STAGE)
