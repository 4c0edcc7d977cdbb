"""Access control: a principal's allowed tags, and user filters, as store conditions.

Every search goes through ``search_conditions``: the principal's conditions come first and
user filters are only ever added to them (a conjunction), so a filter can narrow what a
principal sees and never widen it.
"""

from __future__ import annotations

from collections.abc import Mapping

from index.config import ALL_VALUES, AccessConfig
from index.points import METADATA_KEY, access_path
from index.stores.base import Match
from pipelines.errors import ConfigError

# Metadata keys a user filter may name (besides ``access.<tag>``): string-valued lineage and
# placement. Unknown keys are refused: a typo would otherwise silently match nothing.
FILTER_KEYS = (
    "dataset",
    "field",
    "_source",
    "_entity",
    "_source_key",
    "_run_id",
    "_content_hash",
    "_rules_version",
)


def principal_conditions(access: AccessConfig, principal: str) -> list[Match]:
    """One condition per tag the principal is restricted on (``"*"`` adds none)."""
    allowed = access.principals.get(principal)
    if allowed is None:
        known = ", ".join(sorted(access.principals)) or "none configured"
        raise ConfigError(f"kb.access: unknown principal {principal!r} (known: {known})")
    return [
        Match(access_path(tag), tuple(values))
        for tag in access.tags
        if (values := allowed[tag]) != ALL_VALUES
    ]


def filter_conditions(filters: Mapping[str, str], access: AccessConfig) -> list[Match]:
    """User filters (``key=value``) as conditions on ``metadata.<key>``."""
    allowed = (*FILTER_KEYS, *(f"access.{tag}" for tag in access.tags))
    conditions = []
    for key, value in filters.items():
        if key not in allowed:
            raise ConfigError(f"--filter {key}: unknown key (one of: {', '.join(allowed)})")
        conditions.append(Match(f"{METADATA_KEY}.{key}", (value,)))
    return conditions


def search_conditions(
    access: AccessConfig, principal: str, filters: Mapping[str, str]
) -> list[Match]:
    """What a query by ``principal`` with ``filters`` may match: both, always together."""
    return [*principal_conditions(access, principal), *filter_conditions(filters, access)]
