"""Where the JVM jars live: copied by Maven from the project's ``pom.xml`` into ``.jars/``.

``STEWARD_JARS`` points elsewhere (a shared install, a cluster image).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


def jars_dir() -> Path:
    return Path(os.environ.get("STEWARD_JARS", REPO_ROOT / ".jars"))


def jar_paths(*prefixes: str) -> list[Path]:
    """The jars whose file names start with each prefix; a missing one is a setup error."""
    folder = jars_dir()
    found = []
    for prefix in prefixes:
        matches = sorted(folder.glob(f"{prefix}*.jar"))
        if not matches:
            raise ConfigError(
                f"{folder}: no jar named {prefix}*.jar; run `make jars` (mvn copies the jars"
                " pinned in pom.xml) or set STEWARD_JARS"
            )
        found.extend(matches)
    return found


SPARK_JARS = ("iceberg-spark-runtime-3.5_2.12-", "postgresql-", "sqlite-jdbc-")
