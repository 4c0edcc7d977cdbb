"""A demo support-ticket corpus where two intents are rare, and the task that augments them.

The corpus stands in for real tickets: utterances composed from many phrasings per intent,
with order numbers, amounts and dates, written as ``curated.support_tickets`` with the
lineage columns a curated table has. ``demo_split`` gives the scarce situation synth is for:
plenty of seed tickets for the common intents, a handful for ``refund_request`` and
``damaged_item``, and a held-out test split of real tickets for every intent.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipelines.yaml_models import parse_yaml_model
from synth.config import SynthConfig

if TYPE_CHECKING:
    from pipelines.lake import Lake

DATASET = "support_tickets"
RARE = ("refund_request", "damaged_item")

DEMO_CONFIG_YAML = """\
synth:
  tasks:
    - name: rare_support_intents
      dataset: support_tickets
      text_field: text
      label_field: intent
      labels: [refund_request, damaged_item]
      per_label: 40
      exemplars: {k: 6, diversity_lambda: 0.5}
      backend: {kind: substitute, seed: 7, oversample: 5}
      filters:
        rule_packs: [common]
        entity: orders          # clean the text as the common pack cleans orders.note
        field: note
        memorisation: {max_cosine: 0.97, max_ngram: 12}
        dedup_cosine: 0.985
      review: {auto_approve: true, spot_check_rate: 0.1}
"""

_OPENERS = ("", "Hi,", "Hello,", "Hi there,", "Good morning,", "Hey,", "Excuse me,")
_CLOSERS = ("", "Thanks.", "Thank you!", "Please help.", "Thanks in advance.", "Any update?")
_ITEMS = (
    "blender",
    "jacket",
    "phone case",
    "coffee maker",
    "desk lamp",
    "running shoes",
    "headphones",
    "backpack",
    "kettle",
    "monitor",
    "bed sheets",
    "watch",
)
_PHRASES: dict[str, tuple[str, ...]] = {
    "track_order": (
        "where is my order {order}?",
        "my {item} has not arrived yet, it was due on {date}.",
        "can you tell me when order {order} will be delivered?",
        "the tracking for {order} has not moved in {n} days.",
        "I ordered a {item} {n} days ago and still have no shipping update.",
        "is my package {order} still on its way?",
        "what is the delivery status of my {item}?",
        "the courier said {date} but nothing came, where is it?",
    ),
    "cancel_order": (
        "please cancel order {order}.",
        "I want to cancel the {item} I ordered today.",
        "I changed my mind, cancel {order} before it ships.",
        "can I still cancel my order for the {item}?",
        "stop order {order}, I placed it by mistake.",
        "I no longer need the {item}, please cancel the purchase.",
        "cancel my order from {date} please.",
    ),
    "change_address": (
        "I need to change the delivery address for order {order}.",
        "I moved, can you ship the {item} to my new address?",
        "please update the shipping address on {order}.",
        "wrong address on my order, can you correct it before it ships?",
        "can the {item} be delivered to my office instead of home?",
        "I typed the wrong street for {order}, how do I fix it?",
    ),
    "payment_issue": (
        "my card was charged twice for order {order}.",
        "the payment for my {item} failed but the money left my account.",
        "why was I charged {amount} dollars when the total was lower?",
        "checkout keeps rejecting my card.",
        "I see a pending charge of {amount} dollars I do not recognise.",
        "the coupon was not applied and I paid full price for the {item}.",
        "my payment did not go through, is the order {order} placed?",
    ),
    "refund_request": (
        "I returned the {item} {n} days ago and still have not got my refund.",
        "please refund the {amount} dollars for order {order}.",
        "I want my money back for the {item}.",
        "when will the refund for {order} reach my card?",
        "you confirmed the return of my {item} but no refund yet.",
        "I would like a refund instead of a replacement for the {item}.",
        "the refund for {order} was only partial, I paid {amount}.",
    ),
    "damaged_item": (
        "the {item} arrived broken.",
        "my {item} came with a cracked screen.",
        "order {order} was delivered damaged, the box was crushed.",
        "the {item} I received is scratched and dented.",
        "one part of the {item} is missing and another is bent.",
        "the {item} stopped working the first time I used it, it looks defective.",
        "the package was wet and the {item} inside is ruined.",
    ),
}
INTENTS = tuple(_PHRASES)


def _ticket(rng: random.Random, intent: str) -> str:
    body = rng.choice(_PHRASES[intent]).format(
        order=f"#{rng.randint(10000, 99999)}",
        item=rng.choice(_ITEMS),
        date=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        n=rng.randint(2, 20),
        amount=rng.randint(12, 480),
    )
    if rng.random() < 0.35:  # a second sentence from the same intent, as real tickets ramble
        extra = rng.choice(_PHRASES[intent]).format(
            order=f"#{rng.randint(10000, 99999)}",
            item=rng.choice(_ITEMS),
            date=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            n=rng.randint(2, 20),
            amount=rng.randint(12, 480),
        )
        body = f"{body} {extra[0].upper()}{extra[1:]}"
    parts = [rng.choice(_OPENERS), body[0].upper() + body[1:], rng.choice(_CLOSERS)]
    return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class DemoSplit:
    seed: list[dict[str, Any]]  # what the lake holds: the scarce training data
    test: list[dict[str, Any]]  # held-out real tickets, never seen by synth


def demo_split(
    *, common: int = 60, rare: int = 6, test_per_intent: int = 40, seed: int = 13
) -> DemoSplit:
    """Seed rows (``common`` per common intent, ``rare`` per rare one) and a test split."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    test: list[dict[str, Any]] = []
    for intent in INTENTS:
        wanted = rare if intent in RARE else common
        for _ in range(wanted):
            rows.append({"text": _ticket(rng, intent), "intent": intent})
        for _ in range(test_per_intent):
            test.append({"text": _ticket(rng, intent), "intent": intent})
    seen = {r["text"] for r in rows}
    return DemoSplit(rows, [t for t in test if t["text"] not in seen])


def demo_config() -> SynthConfig:
    """The demo task, through the same YAML validation a pipeline.yaml gets."""
    from pydantic import BaseModel, ConfigDict

    class _File(BaseModel):
        model_config = ConfigDict(extra="forbid")
        synth: SynthConfig

    return parse_yaml_model(DEMO_CONFIG_YAML, _File, "synth/demo/support_tickets.py").synth


def write_curated(lake: Lake, rows: list[dict[str, Any]], run_id: str = "demo") -> None:
    """Write ``rows`` as ``curated.support_tickets`` with lineage columns (replacing it)."""
    lake.prepare()
    catalog = lake.catalog
    catalog.create_namespace_if_not_exists("curated")
    now = datetime.now(UTC)
    data = pa.Table.from_pylist(
        [
            {
                "ticket_id": f"T{i:05d}",
                "text": r["text"],
                "intent": r["intent"],
                "_source": "crm",
                "_entity": "tickets",
                "_source_key": f"T{i:05d}",
                "_ingested_at": now,
                "_run_id": run_id,
                "_content_hash": hashlib.sha256(r["text"].encode()).hexdigest(),
            }
            for i, r in enumerate(rows)
        ],
        pa.schema(
            [
                ("ticket_id", pa.string()),
                ("text", pa.string()),
                ("intent", pa.string()),
                ("_source", pa.string()),
                ("_entity", pa.string()),
                ("_source_key", pa.string()),
                ("_ingested_at", pa.timestamp("us", tz="UTC")),
                ("_run_id", pa.string()),
                ("_content_hash", pa.string()),
            ]
        ),
    )
    name = f"curated.{DATASET}"
    if catalog.table_exists(name):
        catalog.drop_table(name)
    catalog.create_table(name, schema=data.schema).append(data)
