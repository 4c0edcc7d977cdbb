"""Principals and filters become store conditions; filters only ever narrow."""

from __future__ import annotations

import pytest

from index.access import search_conditions
from index.config import AccessConfig
from index.stores.base import Match
from pipelines.errors import ConfigError

ACCESS = AccessConfig(
    tags=["department", "tenant"],
    principals={
        "nurse": {"department": ["cardiology", "oncology"], "tenant": ["acme"]},
        "auditor": {"department": "*", "tenant": "*"},
        "acme_admin": {"department": "*", "tenant": ["acme"]},
    },
)


def test_principal_conditions_cover_every_restricted_tag() -> None:
    assert search_conditions(ACCESS, "nurse", {}) == [
        Match("metadata.access.department", ("cardiology", "oncology")),
        Match("metadata.access.tenant", ("acme",)),
    ]
    assert search_conditions(ACCESS, "acme_admin", {}) == [
        Match("metadata.access.tenant", ("acme",))
    ]
    assert search_conditions(ACCESS, "auditor", {}) == []


def test_filters_are_added_to_the_principal_conditions_never_replacing_them() -> None:
    conditions = search_conditions(
        ACCESS, "nurse", {"access.tenant": "globex", "dataset": "medical_orders"}
    )
    assert Match("metadata.access.tenant", ("acme",)) in conditions
    assert Match("metadata.access.tenant", ("globex",)) in conditions
    assert Match("metadata.dataset", ("medical_orders",)) in conditions


def test_unknown_principal_and_unknown_filter_key_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown principal 'mallory'"):
        search_conditions(ACCESS, "mallory", {})
    with pytest.raises(ConfigError, match="--filter departmnet: unknown key"):
        search_conditions(ACCESS, "nurse", {"departmnet": "x"})
