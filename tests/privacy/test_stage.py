"""The privacy stage over Arrow: treatments, quarantine, version column, chain contract."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from pipelines.chain import Chain
from pipelines.errors import ConfigError
from privacy.detect import Detector
from privacy.keys import PseudonymKey
from privacy.policy import PrivacyPolicy
from privacy.stage import PrivacyStage

KEY = PseudonymKey(b"k" * 32, "test")
POLICY = PrivacyPolicy.model_validate(
    {
        "version": "7",
        "dataset": "customers",
        "key": {"env": "UNUSED_BECAUSE_PASSED"},
        "types": {
            "EMAIL": "pseudonymize",
            "BANK_CARD": {"action": "mask"},
            "US_SSN": "quarantine",
            "IP_ADDRESS": "keep",
            "CN_RESIDENT_ID": "drop",
        },
        "fields": {
            "phone": {"type": "CN_MOBILE"},
            "customer_id": {"action": "pseudonymize", "domain": "customer"},
            "birth_date": {"action": "generalize", "to": "year"},
            "age": {"action": "generalize", "to": "band"},
            "address": {"action": "generalize", "to": "city"},
            "salary": {
                "action": "noise",
                "mechanism": "laplace",
                "epsilon": 1.0,
                "lower": 0,
                "upper": 100,
            },
        },
    }
)


def batch() -> pa.Table:
    return pa.table(
        {
            "customer_id": ["c1", "c2", "c1"],
            "phone": ["138-0013-8000", "not a phone", None],
            "birth_date": [date(1990, 5, 12), date(1985, 1, 2), None],
            "age": [37, 52, 18],
            "address": ["广东省深圳市南山区科技园", "1 Main St, Springfield, IL 62704", "?"],
            "salary": [50.0, 500.0, None],
            "notes": [
                "mail a@b.com, card 4111 1111 1111 1111, 身份证11010519491231002X, ip 10.0.0.1",
                "SSN 536-90-4399",
                None,
            ],
            "_source": ["erp", "erp", "crm"],
        }
    )


def stage() -> PrivacyStage:
    return PrivacyStage(POLICY, key=KEY, rng=np.random.default_rng(0))


def test_treatments_apply_per_field_and_per_span() -> None:
    result = stage().process(batch())
    rows = result.kept.to_pylist()
    assert len(rows) == 2 and result.dropped.num_rows == 0
    first, third = rows
    assert first["phone"] == "<CN_MOBILE>"  # declared field, redacted whatever it holds
    assert first["customer_id"] == third["customer_id"] == KEY.token("customer", "c1")
    assert first["birth_date"] == date(1990, 1, 1) and third["birth_date"] is None
    assert (first["age"], third["age"]) == (30, 10)
    assert first["address"] == "广东省深圳市" and third["address"] is None  # fails closed
    assert first["notes"] == (
        f"mail {KEY.token('EMAIL', 'a@b.com')}, card **** **** **** 1111, 身份证, ip 10.0.0.1"
    )
    assert first["_source"] == "erp"  # lineage untouched
    assert first["_privacy_policy_version"] == POLICY.version_tag
    assert third["salary"] is None and first["salary"] != 50.0


def test_quarantine_keeps_the_original_and_names_field_and_offsets_not_value() -> None:
    quarantined = stage().process(batch()).quarantined.to_pylist()
    assert len(quarantined) == 1
    (row,) = quarantined
    assert row["_rule_id"] == "privacy.US_SSN"
    assert row["_reason"] == "notes[4:15]: US_SSN"
    assert row["notes"] == "SSN 536-90-4399"


def test_pseudonyms_join_across_spellings() -> None:
    policy = PrivacyPolicy.model_validate(
        {
            "version": "1",
            "dataset": "d",
            "key": {"env": "X"},
            "types": {"CN_MOBILE": "pseudonymize"},
        }
    )
    kept = (
        PrivacyStage(policy, key=KEY)
        .process(pa.table({"t": ["tel 138-0013-8000", "手机+86 13800138000"]}))
        .kept
    )
    tokens = [text.split()[-1].removeprefix("手机") for text in kept["t"].to_pylist()]
    assert tokens[0] == tokens[1] == KEY.token("CN_MOBILE", "13800138000")


def test_in_the_chain_rows_balance_and_no_redacted_pii_remains() -> None:
    chain = Chain([stage()])
    tagged = chain.run(batch())
    assert tagged.num_rows == 3
    kept = tagged.filter(pa.compute.equal(tagged["_outcome"], "keep"))
    treated_types = ["CN_MOBILE", "BANK_CARD", "EMAIL", "CN_RESIDENT_ID", "US_SSN"]
    rescan = Detector(treated_types)
    for column in ("phone", "notes", "customer_id", "address"):
        assert rescan.scan_many(kept[column].to_pylist()) == [()] * kept.num_rows


def test_mechanisms_report_the_noise_charge() -> None:
    (mechanism,) = stage().mechanisms()
    assert mechanism.kind == "laplace" and mechanism.epsilon == 1.0


def test_refuses_to_run_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNUSED_BECAUSE_PASSED", raising=False)
    with pytest.raises(ConfigError, match="refusing to pseudonymise without a key"):
        PrivacyStage(POLICY)


def test_string_treatment_on_a_number_column_is_a_config_error() -> None:
    policy = PrivacyPolicy.model_validate(
        {"version": "1", "dataset": "d", "fields": {"n": "redact"}}
    )
    with pytest.raises(ConfigError, match="field n is int64; redact needs a string column"):
        PrivacyStage(policy).process(pa.table({"n": [1, 2]}))


def test_scan_fields_limit_the_scan() -> None:
    policy = PrivacyPolicy.model_validate({"version": "1", "dataset": "d", "scan_fields": ["a"]})
    kept = PrivacyStage(policy).process(pa.table({"a": ["a@b.com"], "b": ["a@b.com"]})).kept
    assert kept.to_pylist()[0] | {"_privacy_policy_version": None} == {
        "a": "<EMAIL>",
        "b": "a@b.com",
        "_privacy_policy_version": None,
    }
