"""What every command group shares: consoles, common options, error handling, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pipelines.config import LakeConfig, load_config
from pipelines.errors import StewardError

P = ParamSpec("P")
R = TypeVar("R")

out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Pipeline config (YAML).", show_default=True)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a StewardError into one line on stderr and its exit code."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except StewardError as exc:
            print_error(exc)
            raise typer.Exit(int(exc.exit_code)) from None

    return wrapper


def print_error(exc: StewardError) -> None:
    """The error as one line on stderr, whatever the terminal's width (a scheduler greps it);
    the message's own brackets ("[stage ingest]") are text, not markup."""
    err.print(
        f"[red]error:[/red] {escape(exc.one_line())}",
        markup=True,
        highlight=False,
        soft_wrap=True,
    )


def print_json(value: Any, *, one_line: bool = False) -> None:
    """``value`` as JSON on stdout: indented, or on one line (JSON Lines, flushed at once, for
    a command that prints one object per event)."""
    indent = None if one_line else 2
    sys.stdout.write(json.dumps(value, indent=indent, ensure_ascii=False, default=str) + "\n")
    if one_line:
        sys.stdout.flush()


def lake_config(config: Path) -> LakeConfig:
    """The lake section of the config, or the default ``./lake`` when there is no config."""
    if config.exists():
        return load_config(config).lake
    return LakeConfig(root=Path("lake").resolve())
