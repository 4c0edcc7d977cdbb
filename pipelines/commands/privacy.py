"""``steward privacy``: PII scan, treatment policies and the privacy budget."""

from __future__ import annotations

import typer

privacy_app = typer.Typer(help="PII scan, treatment policies and the privacy budget.")
