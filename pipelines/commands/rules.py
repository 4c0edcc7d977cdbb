"""``steward rules``: the data steward's commands for cleaning rule packs."""

from __future__ import annotations

import typer

rules_app = typer.Typer(help="Cleaning rule packs: lint, test, apply, preview.")
