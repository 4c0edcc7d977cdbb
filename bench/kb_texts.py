"""Synthetic curated text for the knowledge-base benchmarks: mixed Chinese and English
prescriptions, clinical notes and support dialogue of varied length, from a fixed seed."""

# ruff: noqa: RUF001

from __future__ import annotations

import random

_ZH = [
    "患者胸闷气短，建议复查心电图。",
    "血压平稳，继续当前治疗。",
    "化疗第二周期，注意血常规变化！",
    "儿童发热三天，咽喉红肿；考虑细菌感染。",
    "阿莫西林 250mg 口服 tid ×7d。",
    "客户：我的订单还没有发货？",
    "客服：您好，订单已在今天下午发出，请注意查收。",
    "发票抬头写错了，请提供正确的公司名称和税号。",
]
_EN = [
    "Follow up in two weeks with a repeat ECG.",
    "Patient tolerated chemotherapy well; mild nausea reported.",
    "Metoprolol 25 mg po bid, hold if heart rate below 55.",
    "Customer was charged twice for invoice 4411 and asked for a refund.",
    "Agent confirmed the parcel left the warehouse this afternoon.",
    "Allergic to penicillin. Switch to azithromycin 500 mg daily.",
]


def documents(count: int, seed: int = 7) -> list[str]:
    """``count`` documents of 1 to 40 sentences (most short, a few long: like real notes)."""
    rng = random.Random(seed)
    docs = []
    for i in range(count):
        sentences = min(40, max(1, int(rng.expovariate(1 / 5))))
        parts = [
            rng.choice(_ZH) if rng.random() < 0.5 else rng.choice(_EN) + " "
            for _ in range(sentences)
        ]
        docs.append(f"#{i} " + "".join(parts))
    return docs
