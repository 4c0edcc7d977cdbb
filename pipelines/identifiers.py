"""Names that end up inside SQL, held to plain identifiers where config is validated."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

# Table, column and namespace names end up inside SQL (JDBC queries, MERGE statements), so
# they are held to plain identifiers here instead of being quoted everywhere downstream.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a plain identifier (letters, digits, _; max 63)")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
