"""``steward kb``: the RAG knowledge base: load and search.

Both commands read the ``kb:`` (and ``lake:``) sections of the same ``pipeline.yaml`` the
scheduler already passes to ``steward run``, so one file describes a deployment. The file is
read through a small wrapper model that ignores the other sections, which keeps these commands
working whether or not ``PipelineConfig`` declares ``kb`` yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from index.config import KnowledgeBaseConfig
from pipelines.commands.common import ConfigOption, JsonOption, handles_errors, out, print_json
from pipelines.config import LakeConfig
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from index.embed import SentenceTransformerEmbedder

kb_app = typer.Typer(help="The RAG knowledge base: load and search.", no_args_is_help=True)


def load_kb_config(path: Path) -> tuple[LakeConfig, KnowledgeBaseConfig]:
    """The lake and kb sections of the pipeline config (paths already anchored)."""
    from pipelines.config import load_config

    config = load_config(path)
    if config.kb is None:
        raise ConfigError(f"{path}: no kb section (see `steward kb load --help`)")
    return config.lake, config.kb


def _embedder(kb: KnowledgeBaseConfig) -> SentenceTransformerEmbedder:
    from index.embed import SentenceTransformerEmbedder

    with out.status("Loading the embedding model…"):
        return SentenceTransformerEmbedder(kb.embedding)


@kb_app.command("load")
@handles_errors
def kb_load(
    config: ConfigOption = Path("pipeline.yaml"),
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", "-d", help="Only this dataset (repeatable; default: all)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Chunk, embed and load curated datasets; only changed chunks are embedded."""
    from rich.table import Table

    from index.loader import KnowledgeBaseLoader
    from index.stores import open_store
    from pipelines.lake import Lake

    lake_config, kb = load_kb_config(config)
    store = open_store(kb)
    try:
        loader = KnowledgeBaseLoader(kb, _embedder(kb), store)
        with out.status("Loading the knowledge base…"):
            reports = loader.load_lake(Lake(lake_config), dataset)
    finally:
        store.close()
    if as_json:
        print_json([r.to_json() for r in reports])
        return
    table = Table(
        "dataset",
        "snapshot",
        "rows",
        "chunks",
        "embedded",
        "upserted",
        "payload",
        "unchanged",
        "deleted",
        "seconds",
    )
    for r in reports:
        table.add_row(
            r.dataset,
            str(r.snapshot_id or ""),
            str(r.rows),
            str(r.chunks),
            str(r.embedded),
            str(r.upserted),
            str(r.payload_updated),
            str(r.unchanged),
            str(r.deleted),
            f"{sum(r.seconds.values()):.1f}",
        )
    out.print(table)


def _parse_filters(values: list[str]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not key=value", param_hint="--filter")
        filters[key.strip()] = wanted.strip()
    return filters


@kb_app.command("search")
@handles_errors
def kb_search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    principal: Annotated[
        str, typer.Option("--principal", "-p", help="Search as this principal (kb.access).")
    ],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="How many chunks.")] = 5,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", "-f", help="key=value on metadata, e.g. dataset=orders."),
    ] = None,
    config: ConfigOption = Path("pipeline.yaml"),
    as_json: JsonOption = False,
) -> None:
    """The chunks nearest to QUERY that PRINCIPAL may see, with score, text and lineage."""
    from index.access import search_conditions
    from index.search import search
    from index.stores import open_store

    _lake, kb = load_kb_config(config)
    wanted = _parse_filters(filters or [])
    # Refuse an unknown principal or filter key before the model takes seconds to load.
    search_conditions(kb.access, principal, wanted)
    store = open_store(kb)
    try:
        if not store.exists():
            from index.errors import VectorStoreError

            raise VectorStoreError(
                f"no knowledge base {kb.collection} yet (run `steward kb load` first)", stage="kb"
            )
        results = search(kb, _embedder(kb), store, query, principal=principal, k=k, filters=wanted)
    finally:
        store.close()
    if as_json:
        print_json([r.to_json() for r in results])
        return
    for rank, r in enumerate(results, 1):
        m = r.metadata
        out.print(
            f"[bold]{rank}.[/bold] {r.score:.3f}  {m.get('dataset')}.{m.get('field')}"
            f"  key {m.get('_source_key')}  run {m.get('_run_id')}",
            highlight=False,
        )
        out.print(f"   {r.text[:300]}", markup=False, highlight=False)
    if not results:
        out.print("no results visible to this principal")
