"""A labelled evaluation set for PII detection: generated, reproducible, with hard negatives.

Each record is one line of mixed Chinese/English business text and the gold spans in it
(``type``, ``start``, ``end``). Names and addresses come from Faker (zh_CN, en_US) as
distractors; PII values are valid by construction (checksums computed with python-stdnum,
cards and IBANs from Faker and re-checked) and each appears with or without a context word.
Hard negatives are what real data is full of: the same numbers with one digit changed (bad
checksum), millisecond timestamps, order and invoice numbers, random 18-digit transaction
serials (one in 31 passes the USCC check character alone), versions, clock times, prices.

    .venv/bin/python bench/privacy_evalset.py --lines 20000 --out /tmp/pii_eval.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faker import Faker
from stdnum import luhn
from stdnum.cn import ric, uscc
from stdnum.us import ssn as std_ssn


@dataclass(frozen=True)
class Record:
    text: str
    spans: list[tuple[str, int, int]]

    def as_json(self) -> dict[str, object]:
        return {"text": self.text, "spans": [list(s) for s in self.spans]}


_REGIONS = ("110101", "310104", "440305", "330106", "510107", "420102", "320102", "370202")
_AREAS = ("010", "021", "0755", "0571", "020", "028", "025", "0532")
_IBAN_LOCALES = ("de_DE", "en_GB", "fr_FR", "nl_NL", "es_ES", "it_IT")
# Not Faker's "jcb16": it draws prefixes such as 3508 outside JCB's real range (3528-3589).
_CARD_TYPES = ("visa16", "visa13", "mastercard", "amex", "discover")
# USCC registration authority and category (GB 32100), weighted roughly as issued:
# companies, sole traders and cooperatives (9x) first, then public institutions (1x), social
# organisations (5x), lawyers (31), village collectives (N2) and other (Y1).
_USCC_HEADS = ("91",) * 12 + ("92",) * 4 + ("93", "12", "12", "11", "52", "51", "31", "N2", "Y1")
# Registration regions: counties, a city (440300), a province (110000), and 100000 for
# entities registered nationally (state-owned banks).
_USCC_REGIONS = (*_REGIONS, "440300", "110000", "100000")
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # digits and capitals but I, O, S, V, Z


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.zh = Faker("zh_CN")
        self.en = Faker("en_US")
        self.iban_fakers = {loc: Faker(loc) for loc in _IBAN_LOCALES}
        for i, faker in enumerate([self.zh, self.en, *self.iban_fakers.values()]):
            faker.seed_instance(seed + i)

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def flip(self, value: str, positions: range | None = None) -> str:
        """Change one digit: a look-alike whose checksum fails (retried until it does)."""
        idx = [i for i, ch in enumerate(value) if ch.isdigit()]
        if positions is not None:
            idx = [i for i in idx if i in positions]
        i = self.rng.choice(idx)
        new = self.rng.choice([d for d in "0123456789" if d != value[i]])
        return value[:i] + new + value[i + 1 :]

    # -- valid values ------------------------------------------------------------------------

    def ric(self) -> str:
        year = self.rng.randint(1950, 2005)
        body = (
            f"{self.rng.choice(_REGIONS)}{year}{self.rng.randint(1, 12):02d}"
            f"{self.rng.randint(1, 28):02d}{self.digits(3)}"
        )
        return body + ric.calc_check_digit(body + "0")

    def uscc(self) -> str:
        # Chars 9-17 are a GB 11714 organisation code with its own check character: all
        # digits for older organisations, "MA" and mixed characters for most issued since 2015.
        if self.rng.random() < 0.3:
            organisation = "MA" + "".join(self.rng.choice(_USCC_CHARS) for _ in range(6))
        else:
            organisation = self.digits(8)
        body = (
            self.rng.choice(_USCC_HEADS)
            + self.rng.choice(_USCC_REGIONS)
            + organisation
            + _organisation_check(organisation)
        )
        return body + uscc.calc_check_digit(body + "0")

    def card(self) -> str:
        if self.rng.random() < 0.3:  # UnionPay, which Faker does not make
            body = "62" + self.digits(15)
            number = body + luhn.calc_check_digit(body)
        else:
            number = self.en.credit_card_number(card_type=self.rng.choice(_CARD_TYPES))
        style = self.rng.random()
        if style < 0.5 or len(number) not in (15, 16):
            return number
        sep = self.rng.choice(" -")
        if len(number) == 15:
            return sep.join([number[:4], number[4:10], number[10:]])
        return sep.join(number[i : i + 4] for i in range(0, 16, 4))

    def iban(self) -> str:
        value = self.iban_fakers[self.rng.choice(_IBAN_LOCALES)].iban()
        if self.rng.random() < 0.5:
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def ssn(self) -> str:
        while not std_ssn.is_valid(value := self.en.ssn()):
            pass
        return value

    def mobile(self) -> str:
        number = "1" + self.rng.choice("3456789") + self.digits(9)
        style = self.rng.random()
        if style < 0.6:
            return number
        if style < 0.8:
            sep = self.rng.choice(" -")
            return sep.join([number[:3], number[3:7], number[7:]])
        return "+86 " + number

    def landline(self) -> str:
        area = self.rng.choice(_AREAS)
        local = self.rng.choice("2345678") + self.digits(7 if len(area) == 3 else 6)
        return f"({area}){local}" if self.rng.random() < 0.3 else f"{area}-{local}"

    def passport(self) -> str:
        return "E" + self.digits(8)

    # -- hard negatives ----------------------------------------------------------------------

    def negative(self) -> str:
        kind = self.rng.randrange(14)
        if kind == 0:
            return f"订单号 2024{self.digits(14)}"
        if kind == 1:
            return f"ts={self.rng.randint(1_600_000_000_000, 1_800_000_000_000)}"
        if kind == 2:
            return f"发票代码 0440{self.digits(8)} 发票号码 {self.digits(8)}"
        if kind == 3:
            return f"id {self.flip(self.ric(), range(14, 17))}"
        if kind == 4:
            card = self.en.credit_card_number(card_type="visa16")
            return f"ref {card[:-1]}{(int(card[-1]) + 1) % 10}"
        if kind == 5:
            value = self.iban_fakers["de_DE"].iban()
            return f"acct {value[:-1]}{(int(value[-1]) + 1) % 10}"
        if kind == 6:
            body = self.uscc()
            return f"代码 {body[:-1]}{'0' if body[-1] != '0' else '1'}"
        if kind == 7:
            return f"v{self.rng.randint(1, 9)}.{self.rng.randint(0, 20)}.{self.rng.randint(0, 99)}"
        if kind == 8:
            return f"{self.rng.randint(0, 23):02d}:{self.rng.randint(0, 59):02d}:{self.digits(2)}"
        if kind == 9:
            return f"¥{self.rng.randint(1, 99_999)}.{self.digits(2)}"
        if kind == 10:
            return f"SN {self.rng.choice(['000', '666', '900'])}-{self.digits(2)}-{self.digits(4)}"
        if kind == 11:
            return f"INV-{self.rng.randint(2015, 2025)}-{self.digits(6)}"
        if kind == 12:
            return f"交易流水号 {self.rng.randint(1, 9)}{self.digits(17)}"
        return f"运单号 SF{self.digits(12)}"


def _organisation_check(body: str) -> str:
    """GB 11714 check character: 11 - sum(value * weight) mod 11, 10 as X and 11 as 0.

    Written here rather than imported from privacy.validators, so that the labels do not
    share a mistake with the detector they grade.
    """
    values = ["0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".index(ch) for ch in body]
    check = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return {10: "X", 11: "0"}.get(check, str(check))


# Templates: (type, make value, with-context phrasing, bare phrasing).
Slot = tuple[str, Callable[[Generator], str], tuple[str, ...], tuple[str, ...]]
SLOTS: list[Slot] = [
    ("CN_RESIDENT_ID", Generator.ric, ("身份证号码：{}", "ID card {}"), ("证件 {}", "{}")),  # noqa: RUF001
    ("CN_MOBILE", Generator.mobile, ("手机 {}", "mobile: {}"), ("联系 {}", "{}")),
    ("BANK_CARD", Generator.card, ("银行卡号 {}", "credit card {}"), ("付款 {}", "{}")),
    ("EMAIL", lambda g: g.en.email(), ("邮箱 {}", "email: {}"), ("{}",)),
    ("IP_ADDRESS", lambda g: g.en.ipv4(), ("client ip {}", "IP地址 {}"), ("from {}",)),
    ("IP_ADDRESS", lambda g: g.en.ipv6(), ("server {}",), ("peer {}",)),
    ("IBAN", Generator.iban, ("IBAN {}", "account {}"), ("to {}",)),
    ("US_SSN", Generator.ssn, ("SSN {}", "social security number {}"), ("{}",)),
    ("CN_USCC", Generator.uscc, ("统一社会信用代码 {}", "USCC {}"), ("{}",)),
    ("PASSPORT", Generator.passport, ("护照号 {}", "passport {}"), ()),
    ("CN_LANDLINE", Generator.landline, ("电话 {}", "tel {}"), ("{}",)),
]


def record(gen: Generator) -> Record:
    parts: list[str] = []
    spans: list[tuple[str, int, int]] = []
    cursor = 0

    def add(text: str) -> None:
        nonlocal cursor
        parts.append(text)
        cursor += len(text)

    if gen.rng.random() < 0.5:
        add(f"客户{gen.zh.name()}，地址{gen.zh.address().split()[0]}；")  # noqa: RUF001
    else:
        add(f"Customer {gen.en.name()} at {gen.en.address().replace(chr(10), ', ')}; ")
    for _ in range(gen.rng.randint(0, 3)):
        if gen.rng.random() < 0.35:
            add(gen.negative() + "; ")
            continue
        entity, make, framed, bare = gen.rng.choice(SLOTS)
        phrasing = framed if not bare or gen.rng.random() < 0.6 else bare
        template = gen.rng.choice(phrasing)
        value = make(gen)
        head, tail = template.split("{}")
        add(head)
        spans.append((entity, cursor, cursor + len(value)))
        add(value)
        add(tail + "; ")
    note = "备注：" + gen.zh.sentence()  # noqa: RUF001
    add(note if gen.rng.random() < 0.5 else gen.en.sentence())
    return Record("".join(parts), spans)


def generate(lines: int, seed: int = 4) -> list[Record]:
    gen = Generator(seed)
    return [record(gen) for _ in range(lines)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with args.out.open("w", encoding="utf-8") as out:
        for rec in generate(args.lines, args.seed):
            out.write(json.dumps(rec.as_json(), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
