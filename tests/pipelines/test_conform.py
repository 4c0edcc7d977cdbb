"""The conform plan: a read's schema judged against its contract (pure Python)."""

from __future__ import annotations

import pyarrow as pa

from pipelines.conform import plan_conform
from pipelines.contracts import EntityContract

CONTRACT = EntityContract.model_validate(
    {
        "entity": "parcels",
        "version": 1,
        "description": "Parcels.",
        "key": "parcel_id",
        "columns": [
            {"name": "parcel_id", "type": "integer", "required": True, "description": "Id."},
            {"name": "weight_kg", "type": "decimal", "description": "Weight."},
            {"name": "carrier", "type": "string", "required": True, "description": "Carrier."},
            {"name": "note", "type": "string", "description": "Note."},
        ],
    }
)
FITS = pa.schema(
    [
        ("parcel_id", pa.int32()),
        ("weight_kg", pa.decimal128(8, 2)),
        ("carrier", pa.string()),
        ("note", pa.string()),
        ("extra", pa.string()),  # new source columns are not the contract's business
    ]
)


def _with(schema: pa.Schema, name: str, kind: pa.DataType | None) -> pa.Schema:
    index = schema.get_field_index(name)
    return schema.remove(index) if kind is None else schema.set(index, pa.field(name, kind))


def test_a_fitting_read_needs_nothing() -> None:
    plan = plan_conform(CONTRACT, FITS)
    assert not plan.needed and plan.warnings == ()


def test_a_retyped_column_is_cast_to_the_type_the_lake_has() -> None:
    plan = plan_conform(
        CONTRACT, _with(FITS, "weight_kg", pa.string()), {"weight_kg": "decimal(8,2)"}
    )
    [cast] = plan.casts
    assert (cast.column, cast.found, cast.expected, cast.target) == (
        "weight_kg",
        "string",
        "decimal",
        "decimal(8,2)",
    )
    assert cast.rule_id == "quality.parcels.weight_kg.type"
    assert cast.reason == (
        "weight_kg: string at the source, expected decimal; the value does not convert"
    )
    assert plan.broken is None and len(plan.warnings) == 1
    # Without a lake table yet, the logical type's default.
    [fresh] = plan_conform(CONTRACT, _with(FITS, "weight_kg", pa.string())).casts
    assert fresh.target == "decimal(38,9)"


def test_missing_columns_are_filled_or_break_the_batch() -> None:
    optional = plan_conform(CONTRACT, _with(FITS, "note", None))
    assert optional.fill == (("note", "string"),) and optional.broken is None
    assert optional.warnings == (
        "parcels: contract column note is missing at the source; filled with nulls",
    )
    required = plan_conform(CONTRACT, _with(_with(FITS, "carrier", None), "parcel_id", None))
    assert required.broken == (
        "parcels: key or required columns missing at the source: parcel_id, carrier"
    )
    assert required.rule_id == "quality.parcels.schema"


def test_a_column_of_nulls_takes_the_contract_type_silently() -> None:
    plan = plan_conform(CONTRACT, _with(FITS, "note", pa.null()))
    assert plan.fill == (("note", "string"),) and plan.warnings == () and plan.casts == ()
