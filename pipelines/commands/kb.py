"""``steward kb``: the RAG knowledge base: load and search."""

from __future__ import annotations

import typer

kb_app = typer.Typer(help="The RAG knowledge base: load and search.")
