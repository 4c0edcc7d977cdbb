"""Building blocks every config model shares (pipeline.yaml, rule packs, policies, contracts).

Config is data validated at the edge: a model refuses unknown keys (a typo is reported with its
line instead of being ignored) and is frozen once loaded. Names that end up inside SQL, Iceberg
column names or payload keys are held to plain identifiers, so nothing downstream has to quote.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class StrictModel(BaseModel):
    """Unknown keys are typos until proven otherwise: refuse them with their line."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a plain identifier (letters, digits, _; max 63)")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
