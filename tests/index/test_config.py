"""The kb config: typed, refused with file:line when it would leave a hole in access control."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from index.config import EdgeStoreConfig, KnowledgeBaseConfig, QdrantStoreConfig
from pipelines.errors import ConfigError
from pipelines.yaml_models import parse_yaml_model

VALID = """\
kb:
  collection: clinic
  store: {kind: edge}
  access:
    tags: [department, tenant]
    principals:
      nurse: {department: [cardiology], tenant: [acme]}
      auditor: {department: "*", tenant: "*"}
  datasets:
    medical_orders:
      fields: [prescription, notes]
      access: {department: department, tenant: _source}
    invoices:
      fields:
        notes: {max_tokens: 64}
      chunking: {overlap_tokens: 4}
      access: {department: {value: finance}, tenant: _source}
"""


class File(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kb: KnowledgeBaseConfig


def parse(text: str) -> KnowledgeBaseConfig:
    return parse_yaml_model(text, File, "pipeline.yaml").kb


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return caught.value.message


def test_valid_config_and_chunking_inheritance() -> None:
    kb = parse(VALID)
    assert kb.datasets["medical_orders"].table_name("medical_orders") == "curated.medical_orders"
    assert kb.datasets["medical_orders"].tag_columns() == {
        "department": "department",
        "tenant": "_source",
    }
    assert kb.chunking_for("invoices", "notes").model_dump() == {
        "max_tokens": 64,
        "overlap_tokens": 4,
    }
    assert kb.chunking_for("medical_orders", "notes").model_dump() == {
        "max_tokens": None,
        "overlap_tokens": 32,
    }


def test_principal_must_state_every_tag() -> None:
    message = error_of(
        VALID.replace(
            "nurse: {department: [cardiology], tenant: [acme]}", "nurse: {department: [cardiology]}"
        )
    )
    assert message.startswith("pipeline.yaml:4: kb.access:")
    assert "principal 'nurse' does not state tags ['tenant']" in message


def test_principal_may_not_allow_an_empty_list() -> None:
    message = error_of(VALID.replace("tenant: [acme]}", "tenant: []}"))
    assert "allows no value" in message


def test_dataset_must_source_every_tag() -> None:
    message = error_of(
        VALID.replace(
            "access: {department: department, tenant: _source}", "access: {department: department}"
        )
    )
    assert "dataset 'medical_orders' does not source access tags ['tenant']" in message


def test_unknown_keys_and_bad_names_are_refused_with_their_line() -> None:
    message = error_of(VALID.replace("  collection: clinic", "  colection: clinic"))
    assert "pipeline.yaml:2: kb.colection: Extra inputs are not permitted" in message
    message = error_of(VALID.replace("fields: [prescription, notes]", "fields: [pre-scription]"))
    assert "pipeline.yaml:11:" in message and "not a plain identifier" in message


def test_qdrant_store_needs_exactly_one_location_and_no_key_in_the_url() -> None:
    assert "exactly one of url" in error_of(VALID.replace("{kind: edge}", "{kind: qdrant}"))
    message = error_of(
        VALID.replace("{kind: edge}", "{kind: qdrant, url: 'http://q:6333?api-key=x'}")
    )
    assert "api_key_env" in message


def test_anchoring_resolves_paths_and_defaults_the_edge_shard_into_the_lake(tmp_path: Path) -> None:
    kb = parse(VALID).anchored(tmp_path, tmp_path / "lake")
    assert isinstance(kb.store, EdgeStoreConfig)
    assert kb.store.path == tmp_path / "lake" / "kb" / "clinic"
    local = parse(VALID.replace("{kind: edge}", "{kind: qdrant, path: q}")).anchored(
        tmp_path, tmp_path / "lake"
    )
    assert isinstance(local.store, QdrantStoreConfig)
    assert local.store.path == (tmp_path / "q").resolve()
