"""Config of a CRM source read over its paginated REST export API (``kind: rest``).

Validated once at the edge like the rest of ``pipeline.yaml``; the connector (``ingest/crm.py``)
only ever sees these typed objects. The bearer token never lives in the file: ``token_env``
names the environment variable that holds it, read when a client is opened.

This module must not import ``pipelines.config``: that module imports ``CrmSource`` from here
for its ``sources`` union.
"""

from __future__ import annotations

import os
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from pipelines.config_types import Identifier, StrictModel
from pipelines.errors import ConfigError

CrmEntityName = Literal["accounts", "contacts", "tickets"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# JSON field names the connector reads from each record: plain names, so a typo surfaces here
# rather than as a record "missing" a field with a space in its name.
FieldName = Identifier


class CrmDialogue(StrictModel):
    """Where a record keeps its conversation: a list of turns, each ``{speaker: …, text: …}``.

    The connector replaces the list with ``<field>_text`` (one ``speaker: text`` line per turn,
    the text the knowledge base indexes) and ``<field>_json`` (the turns as they came, so
    nothing the flattening ignores is lost).
    """

    field: FieldName = "dialogue"
    speaker: FieldName = "role"
    text: FieldName = "text"


class CrmEntity(StrictModel):
    """One exported entity: where it is served and which fields order and identify records."""

    path: str
    key: FieldName = "id"
    updated: FieldName = "updated_at"
    page_size: int = Field(default=200, ge=1, le=10_000)
    dialogue: CrmDialogue | None = None

    @field_validator("path")
    @classmethod
    def _plain_path(cls, value: str) -> str:
        # A path is appended to base_url; a scheme, host or query here would send the token to
        # another place or override the protocol's own parameters.
        if not value.startswith("/") or "://" in value or "?" in value or "#" in value:
            raise ValueError("must be a path starting with '/' (no scheme, host or query)")
        return value


class CrmEntities(StrictModel):
    """The entities to read; leave one out (``null``) to skip it."""

    accounts: CrmEntity | None = CrmEntity(path="/v1/accounts")
    contacts: CrmEntity | None = CrmEntity(path="/v1/contacts")
    tickets: CrmEntity | None = CrmEntity(path="/v1/tickets", dialogue=CrmDialogue())

    @model_validator(mode="after")
    def _at_least_one(self) -> CrmEntities:
        if self.accounts is None and self.contacts is None and self.tickets is None:
            raise ValueError("configure at least one of accounts, contacts, tickets")
        return self


class CrmTimeouts(StrictModel):
    """httpx timeouts in seconds; a read timeout is what a slow page runs into."""

    connect: float = Field(default=10.0, gt=0)
    read: float = Field(default=60.0, gt=0)
    write: float = Field(default=10.0, gt=0)
    pool: float = Field(default=10.0, gt=0)


class CrmRetry(StrictModel):
    """Exponential backoff (with jitter) for timeouts, 5xx, connection errors, invalid JSON.

    Attempt ``n`` (from 1) waits ``min(initial_s * exp_base ** (n - 1) + U(0, jitter_s), max_s)``.

    A 429 waits what its ``Retry-After`` says instead, unless that is longer than
    ``max_retry_after_s``: then the read stops with a transient error and the scheduler retries
    the run later, rather than a worker sleeping for an hour.
    """

    attempts: int = Field(default=6, ge=1, le=100)
    initial_s: float = Field(default=1.0, ge=0)
    max_s: float = Field(default=60.0, ge=0)
    exp_base: float = Field(default=2.0, ge=1)
    jitter_s: float = Field(default=1.0, ge=0)
    max_retry_after_s: float = Field(default=300.0, ge=0)


class CrmRateLimit(StrictModel):
    """Client-side pacing, so a bulk export stays inside the API's published quota."""

    requests_per_second: float | None = Field(default=None, gt=0)


class CrmSource(StrictModel):
    """A CRM read through its paginated JSON export API (see ``ingest/crm.py`` for the protocol)."""

    kind: Literal["rest"]
    base_url: str
    token_env: str
    entities: CrmEntities = CrmEntities()
    timeouts: CrmTimeouts = CrmTimeouts()
    retry: CrmRetry = CrmRetry()
    rate_limit: CrmRateLimit = CrmRateLimit()
    # Re-read this many seconds before the committed high-water mark on every incremental run,
    # for sources that commit records late with an ``updated`` set before the commit. 0 reads
    # exactly from the committed cursor (key tie-breaker) and re-delivers nothing.
    lookback_s: float = Field(default=0.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; the token comes from token_env")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value.rstrip("/")

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    def entity_names(self) -> list[str]:
        """The configured entities, in the order the export reads them."""
        return [n for n in CrmEntities.model_fields if getattr(self.entities, n)]

    def entity(self, name: str) -> CrmEntity:
        """The configured entity ``name``; a ConfigError names the ones that are configured."""
        entity = getattr(self.entities, name, None) if name in CrmEntities.model_fields else None
        if not isinstance(entity, CrmEntity):
            configured = self.entity_names()
            raise ConfigError(f"CRM entity {name!r} is not configured (configured: {configured})")
        return entity

    def token(self, source_name: str) -> SecretStr:
        """Read the bearer token from ``token_env`` at the moment it is needed."""
        value = os.environ.get(self.token_env, "").strip()
        if not value:
            raise ConfigError(
                f"source {source_name}: environment variable {self.token_env} is not set or empty"
            )
        return SecretStr(value)
