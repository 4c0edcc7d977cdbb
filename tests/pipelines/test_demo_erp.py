"""The demo ERP: row counts, valid check digits, planted PII and bad rows, repeatable loads."""

from __future__ import annotations

import re

import psycopg
import pytest
from psycopg import sql

from pipelines.demo_erp import (
    BAD_MEDICAL_ORDERS_PER_SCALE,
    DEMO_TABLES,
    generate_demo_rows,
    load_demo_erp,
)
from pipelines.local_postgres import PostgresInfo

EXPECTED_ROWS = {"customers": 500, "orders": 2000, "medical_orders": 1000, "invoices": 1500}
FREQUENCIES = r"\b(qd|bid|tid|qid|qn|prn|hs|st)\b"
MOBILE = re.compile(r"(?<!\d)1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")

# Independent oracles: written from the standards, not from the generator's code.
GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def gb11643_valid(resident_id: str) -> bool:
    if not re.fullmatch(r"\d{17}[\dX]", resident_id):
        return False
    total = sum(int(d) * w for d, w in zip(resident_id[:17], GB11643_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == resident_id[17]


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    doubled = [d * 2 - 9 if d > 4 else d * 2 for d in digits[1::2]]
    return (sum(digits[0::2]) + sum(doubled)) % 10 == 0


def usable_prescription(drug: str, prescription: str) -> bool:
    """Whether a prescription reads as one: no control or replacement characters, a frequency,
    and the drug's Chinese name or the English sig form."""
    if re.search(r"[\x00-\x1f\x7f-\x9f\ufffd]", prescription):
        return False
    english = re.fullmatch(
        rf"[A-Z][\w .%]+ [\d.]+ (mg|g|ml) (po|iv|im) {FREQUENCIES}", prescription
    )
    return bool(english) or (drug in prescription and bool(re.search(FREQUENCIES, prescription)))


def test_oracles_accept_known_examples() -> None:
    assert gb11643_valid("11010519491231002X")  # the example printed in GB 11643-1999
    assert not gb11643_valid("110105194912310021")
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_generation_is_deterministic_and_seeded() -> None:
    assert generate_demo_rows(seed=3) == generate_demo_rows(seed=3)
    assert generate_demo_rows(seed=3)["customers"] != generate_demo_rows(seed=4)["customers"]


@pytest.fixture(scope="module")
def demo(postgres: PostgresInfo) -> dict[str, int]:
    return load_demo_erp(postgres)


def column(info: PostgresInfo, query: str) -> list[object]:
    with psycopg.connect(info.dsn()) as conn:
        return [row[0] for row in conn.execute(query)]


def table_digests(info: PostgresInfo) -> dict[str, str]:
    """md5 of each table's rows in primary-key order, as text."""
    digests = {}
    with psycopg.connect(info.dsn()) as conn:
        for table in DEMO_TABLES:
            query = sql.SQL("SELECT md5(string_agg(t::text, E'\\n' ORDER BY t.{})) FROM {} t")
            row = conn.execute(
                query.format(sql.Identifier(table.primary_key), sql.Identifier("erp", table.name))
            ).fetchone()
            assert row is not None
            digests[table.name] = row[0]
    return digests


@pytest.mark.postgres
def test_load_returns_counts_that_match_the_tables(
    postgres: PostgresInfo, demo: dict[str, int]
) -> None:
    assert demo == EXPECTED_ROWS
    for table in DEMO_TABLES:
        assert column(postgres, f"SELECT count(*) FROM {table.qualified_name}") == [
            demo[table.name]
        ]


@pytest.mark.postgres
def test_demo_tables_name_primary_keys_and_watermarks(
    postgres: PostgresInfo, demo: dict[str, int]
) -> None:
    for table in DEMO_TABLES:
        primary_key = column(
            postgres,
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            f" WHERE i.indisprimary AND i.indrelid = '{table.qualified_name}'::regclass",
        )
        assert primary_key == [table.primary_key]
        watermark_type = column(
            postgres,
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'erp'"
            f" AND table_name = '{table.name}' AND column_name = '{table.watermark}'",
        )
        assert watermark_type == ["timestamp with time zone"]


@pytest.mark.postgres
def test_resident_ids_have_valid_check_digits(postgres: PostgresInfo, demo: dict[str, int]) -> None:
    ids = column(postgres, "SELECT resident_id FROM erp.customers WHERE resident_id IS NOT NULL")
    assert len(ids) > 0.8 * demo["customers"]
    assert all(gb11643_valid(str(resident_id)) for resident_id in ids)


@pytest.mark.postgres
def test_bank_cards_pass_luhn(postgres: PostgresInfo, demo: dict[str, int]) -> None:
    cards = [str(card) for card in column(postgres, "SELECT bank_card FROM erp.invoices")]
    assert all(luhn_valid(card) for card in cards)
    assert {(card[:2] if card.startswith("62") else card[0], len(card)) for card in cards} == {
        ("62", 16),
        ("62", 19),
        ("4", 16),
    }


@pytest.mark.postgres
def test_mobiles_and_planted_pii(postgres: PostgresInfo, demo: dict[str, int]) -> None:
    mobiles = column(postgres, "SELECT mobile FROM erp.customers")
    assert all(re.fullmatch(r"1[3-9]\d{9}", str(mobile)) for mobile in mobiles)

    order_notes = [str(n) for n in column(postgres, "SELECT note FROM erp.orders WHERE note <> ''")]
    assert any(MOBILE.search(note) for note in order_notes)
    assert any(re.search(r"\S+@\S+\.\w+", note) for note in order_notes)
    medical_notes = column(postgres, "SELECT notes FROM erp.medical_orders WHERE notes <> ''")
    assert any(MOBILE.search(str(note)) for note in medical_notes)
    invoice_notes = [str(n) for n in column(postgres, "SELECT notes FROM erp.invoices")]
    digit_runs = [m.replace(" ", "") for n in invoice_notes for m in re.findall(r"\d[\d ]+\d", n)]
    planted_cards = [run for run in digit_runs if len(run) in (16, 19)]
    assert planted_cards and all(luhn_valid(card) for card in planted_cards)
    planted_ids = [m for n in invoice_notes for m in re.findall(r"(?<!\d)\d{17}[\dX](?!\d)", n)]
    assert planted_ids and all(gb11643_valid(i) for i in planted_ids)


@pytest.mark.postgres
def test_bad_prescriptions_are_planted(postgres: PostgresInfo, demo: dict[str, int]) -> None:
    with psycopg.connect(postgres.dsn()) as conn:
        rows = conn.execute("SELECT drug, prescription FROM erp.medical_orders").fetchall()

    bad = [
        prescription for drug, prescription in rows if not usable_prescription(drug, prescription)
    ]
    assert len(bad) == BAD_MEDICAL_ORDERS_PER_SCALE
    assert "" in bad
    assert any(p and not p.strip() for p in bad)
    assert any("\x1b" in p for p in bad)
    assert any("\ufffd" in p for p in bad)


@pytest.mark.postgres
def test_reloading_gives_identical_tables(postgres: PostgresInfo, demo: dict[str, int]) -> None:
    before = table_digests(postgres)
    assert load_demo_erp(postgres) == demo
    assert table_digests(postgres) == before
