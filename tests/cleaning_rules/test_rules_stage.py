"""The cleaning stage over an Arrow batch (no Spark): kept rows cleaned, rejects as they came."""

from __future__ import annotations

import pyarrow as pa

from cleaning_rules.engine import load_packs
from cleaning_rules.stage import CleaningStage

RULESET = load_packs(["common", "medical", "finance"])


def test_batch_of_two_entities_is_split_and_cleaned_as_apply_would() -> None:
    rows = [
        {
            "_entity": "medical_orders",
            "id": 1,
            "prescription": "阿莫西林 0.5g po bid",
            "title": None,
        },
        {"_entity": "medical_orders", "id": 2, "prescription": "测试", "title": None},
        {"_entity": "invoices", "id": 3, "prescription": None, "title": "N/A"},
        {"_entity": "invoices", "id": 4, "prescription": None, "title": "ＡＢＣ公司"},
        {
            "_entity": "medical_orders",
            "id": 5,
            "prescription": "阿莫西林 0.5g po bid",
            "title": None,
        },
    ]
    result = CleaningStage(RULESET).process(pa.Table.from_pylist(rows))
    kept = {row["id"]: row for row in result.kept.to_pylist()}
    assert kept[1]["prescription"] == kept[5]["prescription"] == "阿莫西林 0.5g 口服 每日两次"
    assert kept[4]["title"] == "ABC公司"
    assert {row["_rules_version"] for row in kept.values()} == {RULESET.version}
    assert result.dropped.to_pylist() == [
        {
            **rows[1],
            "_rule_id": "medical.record.test",
            "_reason": "prescription: test order entered while trying the system",
        }
    ]
    (quarantined,) = result.quarantined.to_pylist()
    assert quarantined == {
        **rows[2],
        "_rule_id": "finance.title.missing",
        "_reason": "title: invoice title is empty or a placeholder",
    }
    for row in rows:
        if row["id"] in kept:
            entity = str(row["_entity"])
            fields = RULESET.fields_for(entity)
            alone = RULESET.apply(entity, {f: v for f, v in row.items() if f in fields})
            assert all(kept[row["id"]][f] == v for f, v in alone.record.items())
