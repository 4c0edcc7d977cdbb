"""``steward rules``: the data steward's commands for cleaning rule packs."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipelines.commands.common import JsonOption, handles_errors, out, print_json
from pipelines.errors import ConfigError

rules_app = typer.Typer(help="Cleaning rule packs: test, lint, preview, apply, schema.")

PacksArgument = Annotated[
    Path | None,
    typer.Argument(help="A pack file or a folder of packs (default: the shipped packs)."),
]


def _packs_at(path: Path | None) -> tuple[Path | None, list[str]]:
    """The pack folder and pack names that ``path`` (a file, a folder or None) stands for."""
    from cleaning_rules.engine import DEFAULT_PACK_DIR
    from cleaning_rules.lint import pack_files

    files = pack_files(DEFAULT_PACK_DIR if path is None else path)
    if not files:
        raise ConfigError(f"{path}: no *.yaml rule packs there")
    return files[0].parent, [file.stem for file in files]


def _visible(text: str) -> str:
    """``text`` with control characters escaped (``\\r``, ``\\x1b``), so a diff shows them."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _diff(expected: str, actual: str) -> list[str]:
    """A line diff of expected against actual, with ``?`` lines marking changed characters."""
    lines = difflib.ndiff(
        [_visible(line) for line in expected.split("\n")],
        [_visible(line) for line in actual.split("\n")],
    )
    return [line.rstrip("\n") for line in lines]


def _say(text: str, style: str | None = None) -> None:
    # Pack texts hold brackets and long lines: print them as written, never as markup or
    # wrapped at the terminal width.
    out.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


@rules_app.command("test")
@handles_errors
def test_command(path: PacksArgument = None, as_json: JsonOption = False) -> None:
    """Run every golden example of the packs; print each failure as a diff (exit 1 on any)."""
    from cleaning_rules.engine import load_packs
    from cleaning_rules.examples import check_rule

    folder, names = _packs_at(path)
    ruleset = load_packs(names, folder)
    failures = []
    rules = examples = 0
    for pack in ruleset.packs:
        for index, spec in enumerate(pack.spec.rules):
            rules += 1
            examples += len(spec.examples)
            failures.extend(check_rule(pack, index))
    if as_json:
        print_json(
            {
                "packs": ruleset.pack_names,
                "rules": rules,
                "examples": examples,
                "failures": [
                    {
                        "rule_id": f.rule_id,
                        "path": str(f.path),
                        "line": f.line,
                        "problem": f.problem,
                        "in": f.text,
                        "expected": f.expected,
                        "actual": f.actual,
                    }
                    for f in failures
                ],
            }
        )
    else:
        for failure in failures:
            _say(
                f"FAIL {failure.path}:{failure.line}: {failure.rule_id}: {failure.problem}",
                style="red",
            )
            _say(f"  in: {_visible(failure.text)}")
            _say("  --- expected\n  +++ actual")
            for line in _diff(failure.expected, failure.actual):
                _say(f"  {line}")
        verdict = f"{len(failures)} failed" if failures else "all passed"
        _say(
            f"{examples} examples of {rules} rules in {len(ruleset.packs)} packs: {verdict}",
        )
    if failures:
        raise typer.Exit(1)


@rules_app.command("apply")
@handles_errors
def apply_command(
    pack: Annotated[list[str], typer.Option("--pack", "-p", help="A pack to apply (repeatable).")],
    entity: Annotated[str, typer.Option(help="The entity the value belongs to.")],
    field: Annotated[str, typer.Option(help="The field the value belongs to.")],
    text: Annotated[str, typer.Option(help="The value to clean; '-' reads stdin, one per line.")],
    packs_dir: Annotated[
        Path | None, typer.Option(help="Folder of the packs (default: the shipped packs).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Clean one value (or each stdin line) as a run would; print it, the rules that fired
    and the values extract rules found."""
    from cleaning_rules.engine import load_packs

    ruleset = load_packs(pack, packs_dir)
    if field not in ruleset.fields_for(entity):
        named = ", ".join(sorted(ruleset.fields_for(entity))) or "none"
        raise ConfigError(
            f"packs {', '.join(ruleset.pack_names)} do not clean field {field!r} of entity "
            f"{entity!r} (they clean: {named})"
        )
    values = [line.rstrip("\r\n") for line in sys.stdin] if text == "-" else [text]
    extract_fields = ruleset.extracted_fields(entity)
    for value in values:
        result = ruleset.apply(entity, {field: value})
        cleaned = result.record.get(field)
        extracted = {name: result.record[name] for name in extract_fields if name in result.record}
        if as_json:
            row = {
                "in": value,
                "out": cleaned,
                "verdict": result.verdict,
                "rule_id": result.rule_id,
                "reason": result.reason,
                "fired": list(result.fired),
                "extracted": extracted,
            }
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            continue
        _say(_visible(str(cleaned)))
        if result.verdict != "keep":
            _say(
                f"  {result.verdict} by {result.rule_id}: {result.reason}",
            )
        _say(f"  fired: {', '.join(result.fired) or 'none'}")
        for name, found in extracted.items():
            _say(f"  extracted {name}: {_visible(str(found))}")


@rules_app.command("lint")
@handles_errors
def lint_command(path: PacksArgument = None, as_json: JsonOption = False) -> None:
    """Check packs before they ship: errors (schema, duplicate ids, failing examples) exit 1;
    warnings (backtracking-prone patterns, rules not idempotent on examples) are listed apart."""
    from cleaning_rules.engine import DEFAULT_PACK_DIR
    from cleaning_rules.lint import lint_packs

    report = lint_packs(DEFAULT_PACK_DIR if path is None else path)
    if as_json:
        print_json(report.as_json())
    else:
        for title, findings in (("errors", report.errors), ("warnings", report.warnings)):
            if findings:
                _say(f"{title}:")
                for finding in findings:
                    _say(f"  {finding}")
        _say(
            f"{len(report.packs)} packs: {len(report.errors)} errors, "
            f"{len(report.warnings)} warnings",
        )
    if not report.ok:
        raise typer.Exit(1)


@rules_app.command("schema")
@handles_errors
def schema_command(
    write: Annotated[
        bool, typer.Option("--write", help="Write cleaning_rules/pack.schema.json instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of the pack format (generated from the pack models), which
    editors use to check and complete pack files; --write refreshes the committed copy."""
    from cleaning_rules.pack import SCHEMA_PATH, pack_json_schema_text

    text = pack_json_schema_text()
    if write:
        SCHEMA_PATH.write_text(text, encoding="utf-8")
        _say(f"wrote {SCHEMA_PATH}")
    else:
        sys.stdout.write(text)


@rules_app.command("preview")
@handles_errors
def preview_command(
    pack: Annotated[list[str], typer.Option("--pack", "-p", help="A pack to apply (repeatable).")],
    input_path: Annotated[
        Path, typer.Option("--input", "-i", help="Rows to try the packs on: .parquet or .jsonl.")
    ],
    n: Annotated[int, typer.Option("--n", min=0, help="Rows shown of each kind.")] = 20,
    entity: Annotated[
        str | None,
        typer.Option(help="The rows' entity (default: each row's _entity value)."),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option("--field", "-f", help="Clean only this field (repeatable)."),
    ] = None,
    packs_dir: Annotated[
        Path | None, typer.Option(help="Folder of the packs (default: the shipped packs).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show what the packs would do to real rows before they ship: values before and after,
    rows dropped or quarantined (and by which rule), and counts per rule. Writes nothing."""
    from cleaning_rules.engine import load_packs
    from cleaning_rules.preview import preview

    ruleset = load_packs(pack, packs_dir)
    result = preview(ruleset, input_path, entity=entity, fields=field or (), n=n)
    if as_json:
        print_json(result.as_json())
        return
    entities = ", ".join(f"{count:,} {name}" for name, count in result.entities.items())
    _say(
        f"packs {', '.join(result.packs)} on {result.path}: {result.rows:,} rows"
        + (f" ({entities})" if entities else "")
    )
    unchanged = result.rows - result.changed_rows - result.dropped_rows - result.quarantined_rows
    _say(
        f"changed {result.changed_rows:,} rows ({result.changed_fields:,} values), "
        f"dropped {result.dropped_rows:,}, quarantined {result.quarantined_rows:,}, "
        f"unchanged {unchanged:,}"
    )
    if result.rules:
        width = max(len(rule_id) for rule_id in result.rules)
        _say(f"\n{'rule':{width}}  {'changed':>8}  {'dropped':>8}  {'quarantined':>11}")
        for rule_id, counts in sorted(result.rules.items()):
            _say(
                f"{rule_id:{width}}  {counts.changed:>8,}  {counts.dropped:>8,}  "
                f"{counts.quarantined:>11,}"
            )
    for title, total, rows in (
        ("dropped", result.dropped_rows, result.dropped),
        ("quarantined", result.quarantined_rows, result.quarantined),
    ):
        if rows:
            _say(f"\n{title} (first {len(rows)} of {total:,}):")
        for row in rows:
            _say(f"  {row.where}: {row.rule_id} on {row.field}: {row.reason}", style="red")
            _say(f"    {_visible(str(row.value))}")
    if result.changed:
        _say(f"\nchanged (first {len(result.changed)} of {result.changed_rows:,}):")
    for changed in result.changed:
        _say(f"  {changed.where}: {', '.join(changed.fired)}")
        for change in changed.changes:
            _say(f"    {change.field}")
            for line in _diff(change.before, change.after):
                if not line.startswith("  "):
                    _say(f"      {line}")
