"""``steward demo``: the main job on embedded defaults, end to end on one machine.

Starts a throwaway PostgreSQL holding a generated ERP (Chinese and English, planted PII and a
few spoiled records), writes the demo's pipeline config, runs the Spark batch path into the
Iceberg lake, publishes a release of every curated table and prints the summary.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from rich.console import Console

from pipelines.config import PipelineConfig, config_hash, load_config

if TYPE_CHECKING:
    from index.loader import LoadReport
    from pipelines.lake import Lake

DEMO_FILES = resources.files("pipelines").joinpath("demo")
PSEUDONYM_KEY_ENV = "STEWARD_PSEUDONYM_KEY"


def write_demo_config(path: Path, *, port: int, password_file: Path, lake_root: Path) -> Path:
    """Render the shipped example config for a demo database and lake."""
    template = DEMO_FILES.joinpath("pipeline.yaml").read_text("utf-8")
    with resources.as_file(DEMO_FILES.joinpath("privacy")) as policy_dir:
        text = Template(template).substitute(
            port=port,
            password_file=str(password_file),
            lake_root=str(lake_root),
            policy_dir=str(policy_dir),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_knowledge_base(config: PipelineConfig, lake: Lake) -> list[LoadReport]:
    """``steward kb load`` for the demo: embed the changed chunks of the curated datasets."""
    from index.embed import SentenceTransformerEmbedder
    from index.loader import KnowledgeBaseLoader
    from index.stores import open_store

    if config.kb is None:
        return []
    store = open_store(config.kb)
    try:
        loader = KnowledgeBaseLoader(
            config.kb, SentenceTransformerEmbedder(config.kb.embedding), store
        )
        return loader.load_lake(lake)
    finally:
        store.close()


def ensure_demo_key(workdir: Path) -> None:
    """The demo's pseudonymisation key: the environment's if set, else a random key kept in
    a 0600 file in the demo folder (so tokens stay stable across demo runs)."""
    if os.environ.get(PSEUDONYM_KEY_ENV):
        return
    key_file = workdir / "pseudonym.key"
    if not key_file.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_hex(32), encoding="utf-8")
    os.environ[PSEUDONYM_KEY_ENV] = key_file.read_text(encoding="utf-8").strip()


def run_demo(workdir: Path, lake_root: Path, scale: int, console: Console, as_json: bool) -> None:
    from pipelines.card import release_with_card
    from pipelines.demo_erp import load_demo_erp
    from pipelines.lake import Lake
    from pipelines.local_postgres import LocalPostgres
    from pipelines.report import batch_summary_json, print_batch_summary
    from pipelines.spark_job import run_batch
    from pipelines.spark_session import spark_session

    started = time.perf_counter()
    ensure_demo_key(workdir)
    server = LocalPostgres(workdir / "postgres")
    with server as info, console.status("Preparing the demo ERP…") as status:
        erp_rows = load_demo_erp(info, scale=scale)
        config_path = write_demo_config(
            workdir / "pipeline.yaml",
            port=info.port,
            password_file=server.password_file,
            lake_root=lake_root,
        )
        config = load_config(config_path)
        status.update("Starting Spark…")
        lake = Lake(config.lake)
        spark = spark_session(config.spark, lake)
        status.update("Running the batch job…")
        run_id, reports = run_batch(spark, config, config_hash(config_path))
        status.update("Publishing releases…")
        releases = [release_with_card(lake, config.quality, r.entity) for r in reports]
        status.update("Loading the knowledge base…")
        kb_reports = load_knowledge_base(config, lake)
    seconds = time.perf_counter() - started

    if as_json:
        summary = batch_summary_json(run_id, reports, seconds)
        summary["erp_rows"] = erp_rows
        summary["config"] = str(config_path)
        summary["releases"] = [{**r.__dict__, "path": str(r.path)} for r in releases]
        summary["knowledge_base"] = [r.to_json() for r in kb_reports]
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        return
    console.print(f"demo ERP: {', '.join(f'{t} {n}' for t, n in erp_rows.items())} rows")
    print_batch_summary(console, run_id, reports, seconds)
    for r in releases:
        verb = "released" if r.created else "unchanged, already released as"
        console.print(f"{verb} {r.dataset} {r.version} ({r.rows} rows) → {r.path}")
    for r in kb_reports:
        console.print(
            f"knowledge base: {r.dataset}: {r.chunks} chunks, {r.embedded} embedded,"
            f" {r.deleted} stale points removed"
        )
    console.print(f"config: {config_path}")
    console.print(f'try: steward kb search -c {config_path} -p clinician "每日两次 口服"')
