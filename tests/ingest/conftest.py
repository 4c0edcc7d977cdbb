"""Fixtures for the CRM connector tests: a real HTTP server per test and a fast-retry config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ingest.crm_config import CrmSource
from tests.ingest.crm_server import TOKEN, TOKEN_ENV, CrmServer, generate_crm_data

MakeSource = Callable[..., CrmSource]


@pytest.fixture
def crm_server() -> Iterator[CrmServer]:
    """A fresh server over freshly generated data (tests mutate both)."""
    with CrmServer(generate_crm_data(), token=TOKEN).running() as server:
        yield server


@pytest.fixture
def make_source(crm_server: CrmServer, monkeypatch: pytest.MonkeyPatch) -> MakeSource:
    """Build a CrmSource for the test server; small backoff keeps fault tests fast.

    Keyword arguments override top-level fields; ``page_size`` applies to every entity.
    """
    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    def make(page_size: int = 4, **overrides: Any) -> CrmSource:
        entity = {"key": "id", "updated": "updated_at", "page_size": page_size}
        config: dict[str, Any] = {
            "kind": "rest",
            "base_url": crm_server.base_url,
            "token_env": TOKEN_ENV,
            "entities": {
                "accounts": {"path": "/v1/accounts", **entity},
                "contacts": {"path": "/v1/contacts", **entity},
                "tickets": {"path": "/v1/tickets", "dialogue": {}, **entity},
            },
            "timeouts": {"connect": 1.0, "read": 0.5},
            "retry": {"attempts": 4, "initial_s": 0.01, "max_s": 0.05, "jitter_s": 0.0},
            **overrides,
        }
        return CrmSource.model_validate(config)

    return make
