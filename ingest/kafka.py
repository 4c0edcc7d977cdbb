"""Kafka for the stream path: a one-node local broker, and small client calls through the JVM.

``LocalKafka`` runs a real Apache Kafka broker (KRaft mode: one process is broker and
controller) from the jars the ``kafka-broker`` Maven profile copies into ``.jars/kafka/``, on
free loopback ports, with its data in a folder of the caller's choosing. The tests, the
benchmark and ``steward dev kafka`` use it; production points the stream at its own cluster.

``KafkaClient`` produces records and reads end offsets with the Java ``kafka-clients`` that the
Flink job already loads, through PyFlink's py4j gateway, so Python needs no second Kafka
client library (and no librdkafka) to drive or watch a topic.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pipelines.errors import ConfigError, SourceError
from pipelines.jars import jars_dir

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
BROKER_JARS_SUBDIR = "kafka"
_START_TIMEOUT_S = 60
_STOP_TIMEOUT_S = 20
_LOG_TAIL_LINES = 30


def broker_classpath() -> str:
    folder = jars_dir() / BROKER_JARS_SUBDIR
    if not any(folder.glob("kafka_2.13-*.jar")):
        raise ConfigError(
            f"{folder}: no Kafka broker jars; run"
            " `mvn -q -B -P kafka-broker dependency:copy-dependencies` (see pom.xml)"
        )
    return str(folder / "*")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


@dataclass(frozen=True)
class KafkaInfo:
    bootstrap_servers: str
    data_dir: Path
    log_file: Path


class LocalKafka:
    """A one-node KRaft broker in ``workdir``; a context manager that stops it on exit.

    ``partitions`` is the default partition count of auto-created topics; tests create
    their topics explicitly anyway (``create_topic``), so a typo does not silently make one.
    """

    def __init__(self, workdir: Path, *, partitions: int = 2, heap: str = "512m"):
        self.workdir = workdir
        self.partitions = partitions
        self.heap = heap
        self.port = 0
        self.controller_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def info(self) -> KafkaInfo:
        return KafkaInfo(self.bootstrap_servers, self.workdir / "data", self.workdir / "broker.log")

    def _properties(self) -> str:
        data = self.workdir / "data"
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers={LOOPBACK}:{self.controller_port}",
                f"listeners=PLAINTEXT://{LOOPBACK}:{self.port},CONTROLLER://{LOOPBACK}:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://{LOOPBACK}:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={data}",
                f"num.partitions={self.partitions}",
                "auto.create.topics.enable=false",
                # One node: every internal topic has one replica, or the broker waits forever.
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "",
            ]
        )

    def _java(self, main: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ConfigError("java is not on PATH; Kafka's broker needs a JDK 17")
        return [java, f"-Xmx{self.heap}", "-cp", broker_classpath(), main, *args]

    def start(self) -> KafkaInfo:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port, self.controller_port = free_port(), free_port()
        props = self.workdir / "server.properties"
        props.write_text(self._properties(), encoding="utf-8")
        if not (self.workdir / "data" / "meta.properties").exists():
            # Without formatted storage a KRaft broker stops with "No meta.properties found".
            cluster_id = str(uuid.uuid4().hex[:22])
            self._run_tool(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(props),
            )
        log = self.workdir / "broker.log"
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                self._java("kafka.Kafka", str(props)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _port_open(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self._log_tail()
                self.stop()
                raise SourceError(f"Kafka broker in {self.workdir} did not start:\n{tail}")
            time.sleep(0.2)
        return self.info

    def _run_tool(self, main: str, *args: str) -> None:
        done = subprocess.run(
            self._java(main, *args), capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise SourceError(f"{main} {args[0]} failed: {(done.stderr or done.stdout)[-2000:]}")

    def _log_tail(self) -> str:
        log = self.workdir / "broker.log"
        if not log.exists():
            return "(no log)"
        lines = log.read_text("utf-8", errors="replace").splitlines()
        return "\n".join(lines[-_LOG_TAIL_LINES:])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def wait(self) -> int:
        """Block until the broker exits (``steward dev kafka``); returns its exit code."""
        assert self._process is not None
        return self._process.wait()

    def __enter__(self) -> KafkaInfo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class KafkaClient:
    """Admin, produce and end-offset calls through the JVM's kafka-clients (py4j).

    The gateway JVM is PyFlink's, with kafka-clients on its own classpath
    (``flink_env.prepare_gateway``): not on a thread's context class loader, which py4j's
    pooled Java threads do not share.
    """

    def __init__(self, bootstrap_servers: str, properties: Mapping[str, str] | None = None):
        from pipelines.flink_env import prepare_gateway

        prepare_gateway()
        from py4j.java_gateway import JavaClass
        from pyflink.java_gateway import get_gateway

        self._jvm = get_gateway().jvm
        if not isinstance(self._jvm.org.apache.kafka.clients.producer.KafkaProducer, JavaClass):
            raise ConfigError(
                "kafka-clients is not on the classpath of PyFlink's JVM: something started"
                " the JVM before pipelines.flink_env.prepare_gateway() ran"
            )
        self.bootstrap_servers = bootstrap_servers
        self._properties = {"bootstrap.servers": bootstrap_servers, **(properties or {})}
        self._producer: Any = None

    def _props(self, extra: Mapping[str, str]) -> Any:
        props = self._jvm.java.util.Properties()
        for key, value in {**self._properties, **extra}.items():
            props.setProperty(key, value)
        return props

    def create_topic(self, name: str, partitions: int = 1) -> None:
        admin_cls = self._jvm.org.apache.kafka.clients.admin.Admin
        admin = admin_cls.create(self._props({}))
        try:
            topic = self._jvm.org.apache.kafka.clients.admin.NewTopic(name, partitions, 1)
            topics = self._jvm.java.util.ArrayList()
            topics.add(topic)
            admin.createTopics(topics).all().get()
        finally:
            admin.close()

    def produce(
        self, topic: str, values: Iterable[bytes], *, key: bytes | None = None, flush: bool = True
    ) -> int:
        """Send each value (raw bytes) to ``topic``; returns how many were sent."""
        record_cls = self._jvm.org.apache.kafka.clients.producer.ProducerRecord
        if self._producer is None:
            serializer = "org.apache.kafka.common.serialization.ByteArraySerializer"
            self._producer = self._jvm.org.apache.kafka.clients.producer.KafkaProducer(
                self._props(
                    {
                        "key.serializer": serializer,
                        "value.serializer": serializer,
                        "acks": "all",
                        "linger.ms": "5",
                    }
                )
            )
        count = 0
        for value in values:
            self._producer.send(record_cls(topic, key, bytearray(value)))
            count += 1
        if flush:
            self._producer.flush()
        return count

    def end_offsets(self, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        """The next offset to be written, per (topic, partition)."""
        deserializer = "org.apache.kafka.common.serialization.ByteArrayDeserializer"
        consumer = self._jvm.org.apache.kafka.clients.consumer.KafkaConsumer(
            self._props({"key.deserializer": deserializer, "value.deserializer": deserializer})
        )
        try:
            partitions = self._jvm.java.util.ArrayList()
            for topic in topics:
                for info in consumer.partitionsFor(topic):
                    partitions.add(
                        self._jvm.org.apache.kafka.common.TopicPartition(topic, info.partition())
                    )
            ends = consumer.endOffsets(partitions)
            return {(str(tp.topic()), int(tp.partition())): int(ends.get(tp)) for tp in partitions}
        finally:
            consumer.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None
