"""Config validation: typed objects in, ``file:line: field: message`` out."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.demo import write_demo_config
from pipelines.errors import ConfigError, ExitCode

VALID = """\
lake:
  root: lake
sources:
  erp:
    url: jdbc:postgresql://127.0.0.1:5432/erp
    user: steward
    password_env: ERP_PASSWORD
    schema: erp
    tables:
      - {name: customers, key: customer_id}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.exit_code == ExitCode.CONFIG
    return caught.value.message


def test_valid_config_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.lake.root == (tmp_path / "lake").resolve()
    assert config.lake.warehouse == config.lake.root / "warehouse"
    assert config.sources["erp"].tables[0].entity_name == "customers"
    assert config.spark.master == "local[*]"


def test_shipped_demo_config_is_valid(tmp_path: Path) -> None:
    path = write_demo_config(
        tmp_path / "pipeline.yaml", port=5432, password_file=tmp_path / "pw", lake_root=tmp_path
    )
    config = load_config(path)
    assert [t.name for t in config.sources["erp"].tables] == [
        "customers",
        "orders",
        "medical_orders",
        "invoices",
    ]
    assert config.transform.rule_packs == ["common", "medical", "finance"]


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "transform:\n  rule_packs: [common\n")
    message = error_of(path)
    assert message.startswith(f"{path}:")
    assert "invalid YAML" in message


def test_unknown_key_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("  root: lake", "  root: lake\n  rooot: typo"))
    assert error_of(path) == f"{path}:3: lake.rooot: Extra inputs are not permitted"


def test_wrong_type_names_field_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "spark:\n  shuffle_partitions: many\n")
    message = error_of(path)
    assert message.startswith(f"{path}:12: spark.shuffle_partitions:")


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("    user: steward\n", ""))
    assert error_of(path) == f"{path}:4: sources.erp.user: Field required"


def test_identifiers_refuse_sql(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("name: customers", 'name: "customers; DROP TABLE x"'))
    message = error_of(path)
    assert "sources.erp.tables[0].name" in message
    assert "not a plain identifier" in message


def test_password_must_not_be_in_the_url(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("/erp\n", "/erp?password=hunter2\n"))
    message = error_of(path)
    assert "must not carry a password" in message
    assert "hunter2" not in message


def test_exactly_one_password_source(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("password_env: ERP_PASSWORD", "password_file: pw"))
    config = load_config(path)
    assert config.sources["erp"].password_file == (tmp_path / "pw").resolve()
    both = write(
        tmp_path,
        VALID.replace("password_env: ERP_PASSWORD", "password_env: A\n    password_file: pw"),
    )
    assert "exactly one of password_env or password_file" in error_of(both)


def test_password_from_env_and_missing_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = load_config(write(tmp_path, VALID)).sources["erp"]
    monkeypatch.delenv("ERP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="ERP_PASSWORD is not set"):
        source.password("erp")
    monkeypatch.setenv("ERP_PASSWORD", "s3cret")
    secret = source.password("erp")
    assert secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(secret)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    assert "no such file" in error_of(tmp_path / "absent.yaml")
    assert error_of(write(tmp_path, "# nothing\n")).endswith(":1: the file is empty")
