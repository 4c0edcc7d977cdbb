"""Policy YAML: shorthand, validation with file:line, key requirement, version tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import ConfigError
from privacy.policy import Generalize, Mask, PrivacyPolicy, Redact, load_policy

POLICY = """\
version: "3"
dataset: customers
key: {file: pseudonym.key}
types:
  CN_MOBILE: redact
  BANK_CARD: {action: mask, keep_last: 4}
  EMAIL: pseudonymize
fields:
  phone: {type: CN_MOBILE}
  card: {type: BANK_CARD, action: redact}
  birth_date: {action: generalize, to: year}
  ssn: drop
budget: {privacy_unit: customer_id, epsilon: 3.0, delta: 1.0e-6}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_shorthand_and_resolves_declared_fields(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, POLICY))
    assert policy.span_treatment("CN_MOBILE") == Redact(action="redact")
    assert isinstance(policy.span_treatment("BANK_CARD"), Mask)
    assert policy.span_treatment("IBAN") == Redact(action="redact")  # default_action
    assert policy.field_treatment("phone") == Redact(action="redact")  # through types
    assert policy.field_type("phone") == "CN_MOBILE"
    assert policy.field_treatment("card").action == "redact" and policy.field_type("card")
    assert isinstance(policy.field_treatment("birth_date"), Generalize)
    assert policy.key is not None and policy.key.file == (tmp_path / "pseudonym.key").resolve()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("CN_MOBILE: redact", "CN_MOBIL: redact"), r"policy.yaml:5: types.CN_MOBIL.*unknown PII"),
        (("keep_last: 4", "keep_last: 40"), r"policy.yaml:6: types.BANK_CARD.*less than or equal"),
        (("to: year", "to: decade"), r"policy.yaml:11: fields.birth_date.*unknown generalization"),
        (("key: {file: pseudonym.key}\n", ""), r"policy.yaml:1: .*key \(env or file\) is required"),
        (("ssn: drop", "ssn: shred"), r"policy.yaml:12: fields.ssn"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_policy(write(tmp_path, POLICY.replace(*edit)))


def test_version_tag_changes_with_any_edit() -> None:
    base = {"version": "1", "dataset": "d"}
    one = PrivacyPolicy.model_validate(base)
    two = PrivacyPolicy.model_validate({**base, "types": {"EMAIL": "drop"}})
    assert one.version_tag.startswith("1+") and one.version_tag != two.version_tag
