"""Rule-pack throughput: the compiled engine against a naive ``re.sub`` baseline (issue 3).

Generates ``--records`` records (default 1,000,000) of mixed Chinese and English text for every
entity that a shipped pack names in ``applies_to`` (seeded, so runs are comparable), and applies
all shipped packs three ways, timed in the same run on the same records, group by group (the
records of one entity in one ``--chunk``, a few thousand, as a Spark or Flink batch would be):

* the engine on the batch, ``ruleset.apply_columns(entity, columns, rows)``, the path the
  cleaning stage takes (the batch's columns, as the stage reads them from Arrow; each distinct
  value of a field cleaned once, each rule run over many values at once);
* the engine record by record, ``ruleset.apply(entity, record)``, on a rule set of its own
  (the engine remembers the outcomes of short values it cleaned; neither engine run may reuse
  what the other remembered from the same group);
* the naive baseline: each rule in turn on each field it names, its pattern compiled with
  Python's ``re`` and applied with ``re.sub`` (``re.search`` for drop and quarantine rules); a
  ``map`` rule is a loop over its table, one ``re.sub`` per entry.

The three outputs are compared record by record (verdict, deciding rule, cleaned fields); any
difference is printed and the run exits 1. Rates are per CPU second of the process (the machine
may be shared); throughput counts the UTF-8 bytes of the fields the packs name (the text the
rules read), not ids or other columns; "distinct" is the share of field values that are
distinct within their group (what batching can reuse).

How the baseline expresses what ``re`` lacks (no rule is left out on either side):

* ``\\p{..}`` / ``\\P{..}`` Unicode properties (Han, Cc, No, N, P, S, Extended_Pictographic…):
  each is expanded into an explicit ``re`` character class, enumerated once from the ``regex``
  module so both sides use the same definition.
* ``normalize`` without a pattern: ``control_chars`` is the ``re`` class of Cc less tab, newline
  and carriage return; ``whitespace`` is the form's own four substitutions in ``re``;
  ``contract_parties`` (reading declarations, then replacing names) is the form's own code.
  ``normalize`` with a pattern calls the form's function on each ``re`` match, the same
  callback the engine uses (the cost compared is finding the matches).
* ``map``: entries are applied longest first, each to a placeholder, and placeholders become
  the expansions at the end. Without placeholders a later, shorter key would match inside an
  earlier one's text (``IV期`` maps to itself, then ``iv`` would turn it into 静脉注射期), which
  the engine's single alternation never does.

    .venv/bin/python bench/rules_throughput.py                    # 1,000,000 records
    .venv/bin/python bench/rules_throughput.py --records 100000   # quick run
"""

# Generated text uses full-width forms and odd spaces on purpose: the packs must clean them.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import random
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import regex

from cleaning_rules.actions import WORDISH, ExtractRule, MapRule, NormalizeRule
from cleaning_rules.engine import ColumnsResult, RuleSet, available_packs, load_packs
from cleaning_rules.forms import FORMS
from cleaning_rules.pack import ANY_ENTITY
from cleaning_rules.rules import RuleSpec

Record = dict[str, object]

# -- the generated records --------------------------------------------------------------------

_DRUGS = (
    "阿莫西林",
    "阿莫西林胶囊",
    "头孢克肟",
    "二甲双胍",
    "布洛芬",
    "对乙酰氨基酚",
    "奥美拉唑",
    "阿托伐他汀",
    "地西泮",
    "头孢曲松",
    "地塞米松",
    "肾上腺素",
    "Amoxicillin",
    "Metformin",
    "Ibuprofen",
    "Vitamin B12",
    "氯化钠注射液",
    "ａｓｐｉｒｉｎ",  # full-width
    "阿莫\u200b西林",  # zero-width space
)
_DOSES = (
    "0.5g",
    "0.5克",
    "500mg",
    "500 毫克",
    "5 MG",
    "250 毫升",
    "10mL",
    "100 微克",
    "50mcg",
    "25 µg",
    "1 克",
    "２０ｍｇ",
    "2片",
    "60 公斤",
)
_ROUTES = ("po", "PO", "iv", "ivgtt", "IV GTT", "im", "i.m.", "ih", "sc", "口服", "p.o.")
_FREQS = (
    "qd",
    "bid",
    "BID",
    "tid",
    "q.d.",
    "prn",
    "qn",
    "hs",
    "st",
    "每天2次",
    "一日三次",
    "每日1次",
    "每日两次",
    "qod",
)
_MED_NOTES = (
    "饭后服用",
    "皮试阴性",
    "过敏史：青霉素过敏",
    "两周后复诊，监测血糖",
    "Take with food",
    "Avoid alcohol  after dosing",
    "hs-CRP 3.2mg/L, 复查",
    "心电图示 ST段抬高",
    "IV期肺癌，顺铂化疗",
    "bidding for the tender is closed",
    "每天2次，每次1片",
    "Review in two weeks\t",
    "家属电话 138-0013-8000",
    "体重 60 公斤，剂量 10 mg/kg",
)
_ORDER_NOTES = (
    "请尽快发货",
    "周末送货",
    "易碎品，包装要结实",
    "合计 ¥1,234.50，货到付款",
    "预算3万元以内",
    "请于2024年3月5日前送达",
    "到期日 2024/3/5",
    "Leave at the front desk",
    "Gift wrap, please",
    "Deliver after 6 pm  ",
    "RMB 88 deposit paid",
    "　需要开具增值税专用发票　",
    "test order 3",
    "员工3万人的公司，订单号 20240305",
)
_TITLES = (
    "北京某某科技有限公司",
    "上海华信贸易有限公司",
    "个人",
    "Acme Consulting Ltd",
    "无锡某某贸易有限公司",
    "N/A",
    "无",
    "",
    "测试发票",
    "深圳市\u00a0南山区某某电子厂",
    "ＡＢＣ（中国）有限公司",
)
_INVOICE_NOTES = (
    "货款",
    "服务费 1.5万元",
    "技术咨询费 ¥12,000",
    "Consulting fee RMB 8800",
    "开票日期:2024年3月5日",
    "付款期限 2024.03.15",
    "Annual licence 2023-12-31",
    "版本 2024.1.2.3 升级费",
    "金额\u200e100元",
)
_SURNAMES = ("王", "李", "张", "刘", "陈", "欧阳", "Smith", "O'Brien")
_GIVEN = ("伟", "芳", "娜", "敏静", "子涵", "浩宇", "John", "Mary")
_CITIES = ("北京市", "上海市", "杭州市", "深圳市", "成都市", "Hong Kong", "上海 市")
_STREETS = ("朝阳路", "中山东一路", "南京西路", "科技园南路", "Nathan Road")
_LOG_TEXT = (
    "INFO  order service started on port 8080",
    "订单 20240305 已发货，客户 138****8000",
    "WARN  retrying payment gateway (attempt 2)",
    "ERROR disk full on /var/lib/data",
    "用户登录成功 user=zhang.wei",
    "GC pause 35 ms, heap 512 MB",
)


def _medical_order(rng: random.Random) -> Record:
    drug, dose = rng.choice(_DRUGS), rng.choice(_DOSES)
    route, freq = rng.choice(_ROUTES), rng.choice(_FREQS)
    roll = rng.random()
    if roll < 0.5:
        prescription = f"{drug} {dose} {route} {freq}"
    elif roll < 0.8:
        prescription = f"Rp. {drug} {dose} Sig. {freq} {route} ×{rng.choice((3, 5, 7))}d"
    elif roll < 0.9:
        prescription = f"  {drug}\t{dose}   {freq}  "
    elif roll < 0.94:
        prescription = f"{dose} {route} {freq}"  # no drug: quarantined
    elif roll < 0.96:
        # UTF-8 read as Windows-1252: quarantined as mojibake.
        prescription = f"{drug} {dose}".encode().decode("cp1252", errors="ignore")
    elif roll < 0.98:
        prescription = f"{drug}\x1b[0m\x07 {dose} {freq}"
    else:
        prescription = rng.choice(("测试", "TEST order 2", "dummy", ""))
    notes = rng.choice(_MED_NOTES) if rng.random() < 0.6 else None
    return {
        "id": rng.randrange(1 << 30),
        "drug": drug,
        "dose": dose,
        "prescription": prescription,
        "notes": notes,
    }


def _order(rng: random.Random) -> Record:
    note = rng.choice(_ORDER_NOTES) if rng.random() < 0.65 else None
    return {"id": rng.randrange(1 << 30), "note": note}


def _invoice(rng: random.Random) -> Record:
    notes = rng.choice(_INVOICE_NOTES) if rng.random() < 0.7 else None
    return {"id": rng.randrange(1 << 30), "title": rng.choice(_TITLES), "notes": notes}


def _customer(rng: random.Random) -> Record:
    name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
    if rng.random() < 0.1:
        name = f" {name}\u3000"
    city = rng.choice(_CITIES)
    address = f"{city}{rng.choice(_STREETS)}{rng.randint(1, 999)}号 {rng.randint(1, 30)}栋"
    if rng.random() < 0.1:
        address = address.replace(" ", "\u00a0\u00a0")
    return {"id": rng.randrange(1 << 30), "name": name, "address": address, "city": city}


_JAVA_FRAMES = (
    "com.acme.order.OrderService.ship(OrderService.java:118)",
    "com.acme.order.OrderController.post(OrderController.java:52)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
    "java.base/java.lang.Thread.run(Thread.java:833)",
)


def _stack_trace(rng: random.Random) -> str:
    if rng.random() < 0.5:
        frames = "".join(f"\n\tat {frame}" for frame in _JAVA_FRAMES[: rng.randint(1, 5)])
        return f"ERROR ship failed\njava.lang.IllegalStateException: no stock{frames}"
    calls = [("app.py", 10, "<module>", "main()"), ("app.py", 6, "main", "run(job)")]
    calls = [*calls[: rng.randint(0, 2)], ("job.py", 3, "run", 'raise ValueError("boom")')]
    frames = "".join(
        f'\n  File "{name}", line {line}, in {func}\n    {code}' for name, line, func, code in calls
    )
    return f"Traceback (most recent call last):{frames}\nValueError: boom"


def _log_message(rng: random.Random) -> str:
    text = rng.choice(_LOG_TEXT)
    roll = rng.random()
    if roll < 0.25:
        return f"\x1b[31m{text}\x1b[0m"
    if roll < 0.3:
        link = f"https://ci.example/run/{rng.randint(1, 99)}"
        return f"see \x1b]8;;{link}\x1b\\build\x1b]8;;\x1b\\ {text}"
    if roll < 0.35:
        return "下载 10%\r下载 55%\r下载 100%"
    if roll < 0.45:
        status = rng.choice((200, 200, 204, 503))
        client = f"10.0.0.{rng.randint(1, 254)} - - [05/Mar/2024:10:{rng.randint(10, 59)}:00 +0800]"
        return f'{client} "GET /{rng.choice(("healthz", "api/orders"))} HTTP/1.1" {status} 2'
    if roll < 0.47:
        return rng.choice(("", "   ", "\x1b[0m"))
    if roll < 0.52:
        return _stack_trace(rng)
    if roll < 0.62:
        clock = f"10:{rng.randint(10, 59)}:{rng.randint(10, 59)},{rng.randint(100, 999)}"
        return f"2024-03-05 {clock}+08:00 {text}"
    return f"2024-03-05T10:{rng.randint(10, 59)}:00Z {text}"


_COMPANIES = (
    "北京某某科技有限公司",
    "上海华信贸易有限公司",
    "深圳市南山区某某电子厂",
    "杭州云帆网络科技有限公司",
    "成都天府物业管理有限公司",
)
_PEOPLE = ("张三", "李娜", "王伟", "刘子涵", "陈浩宇")
_EN_COMPANIES = ("Acme Software Ltd.", "Beta Trading Co., Ltd.", "Northwind Logistics Inc.")
_ZH_NUMERALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二")
_UPPERCASE_AMOUNTS = ("伍仟元整", "壹万贰仟元整", "叁仟伍佰元整", "捌佰元零伍角", "贰万元整")
_CLAUSES = (
    ("租赁物", "甲方将位于{city}的房屋出租给乙方使用，{a}保证对该房屋享有出租权。"),
    ("租金", "租金为每月人民币{upper}，乙方应于每月{day}日前支付；押金¥{deposit:,}。"),
    ("违约责任", "逾期超过十五日的，甲方有权依照第{ref}条第三款解除合同，{b}应承担违约金。"),
    ("期限", "本合同自二〇二四年{month}月{dayzh}日起生效，有效期至2025年{monthnum}月{day}日。"),
    ("保密", "双方对本合同内容负有保密义务，未经对方书面同意不得向第三方披露。"),
    ("争议解决", "因本合同引起的争议，由双方协商解决；协商不成的，提交{city}仲裁委员会仲裁。"),
)


def _contract(rng: random.Random) -> Record:
    if rng.random() < 0.25:
        return _english_contract(rng)
    a, b = rng.choice(_COMPANIES), rng.choice(_PEOPLE + _COMPANIES)
    fill = {
        "a": a,
        "b": b,
        "city": rng.choice(_CITIES),
        "upper": rng.choice(_UPPERCASE_AMOUNTS),
        "day": rng.randint(1, 28),
        "deposit": rng.choice((5000, 10000, 24000)),
        "ref": rng.choice(_ZH_NUMERALS),
        "month": rng.choice(_ZH_NUMERALS),
        "dayzh": rng.choice(_ZH_NUMERALS),
        "monthnum": rng.randint(1, 12),
    }
    header = rng.choice(
        (f"甲方：{a}\n乙方：{b}", f"出租方（甲方）：{a}\n承租方（乙方）：{b}",
         f"{a}（以下简称“甲方”）与{b}（以下简称“乙方”）经协商一致，签订本合同。")
    )  # fmt: skip
    lines = [header]
    for number, (heading, text) in enumerate(rng.sample(_CLAUSES, rng.randint(3, 6)), 1):
        lines.append(f"第{_ZH_NUMERALS[number - 1]}条　{heading}\n{text.format(**fill)}")
        if rng.random() < 0.3:
            lines.append(f"第 {number} 页 共 6 页")
    lines.append("甲方（盖章）：＿＿＿＿＿＿\n乙方（签字）：________\n签订日期：二〇二四年三月五日")
    body = "\n".join(lines)
    if rng.random() < 0.03:
        body = "【草稿】\n" + body
    title = rng.choice(("房屋租赁合同", "房 屋 租 赁 合 同", "技术服务合同", "采购合同"))
    return {"id": rng.randrange(1 << 30), "title": title, "body": body}


def _english_contract(rng: random.Random) -> Record:
    a, b = rng.sample(_EN_COMPANIES, 2)
    body = (
        f'This Agreement is made between {a} (the "Licensor") and {b} (the "Licensee").\n'
        f"1. Licence. {a} grants {b} a non-exclusive licence to use the Software.\n"
        f"Page 1 of {rng.randint(2, 9)}\n"
        f"2. Fees. The Licensee shall pay USD {rng.randint(1, 99)},000 within 30 days &amp; "
        "late payments bear interest.\n"
        "3. Term. This Agreement ends on the date set out in Schedule 1.\n"
        "Signed: ____________  Date: ______"
    )
    return {"id": rng.randrange(1 << 30), "title": "Software Licence Agreement", "body": body}


def _any_text(rng: random.Random) -> str:
    pool = _MED_NOTES + _ORDER_NOTES + _INVOICE_NOTES + _LOG_TEXT
    return rng.choice(pool)


_GENERATORS: dict[str, Callable[[random.Random], Record]] = {
    "medical_orders": _medical_order,
    "orders": _order,
    "invoices": _invoice,
    "customers": _customer,
    "contracts": _contract,
}


def entity_fields(ruleset: RuleSet) -> dict[str, list[str]]:
    """Every entity some pack names (``*`` left out) and the fields the packs clean on it."""
    entities = dict.fromkeys(
        selector.entity
        for pack in ruleset.packs
        for selector in pack.spec.applies_to
        if selector.entity != ANY_ENTITY
    )
    return {entity: sorted(ruleset.fields_for(entity)) for entity in entities}


def generator_for(entity: str, fields: list[str]) -> Callable[[random.Random], Record]:
    """The entity's own generator; a log-shaped entity (a ``message`` field) gets log lines,
    and an entity this script does not know gets mixed text in each named field, so a pack
    that adds an entity is still measured."""
    known = _GENERATORS.get(entity)
    if known is not None:
        return known
    if fields == ["message"]:
        return lambda rng: {"id": rng.randrange(1 << 30), "message": _log_message(rng)}
    return lambda rng: {"id": rng.randrange(1 << 30), **{f: _any_text(rng) for f in fields}}


def records(
    entities: dict[str, list[str]], count: int, chunk: int, seed: int
) -> Iterator[list[tuple[str, Record]]]:
    """``count`` records in chunks, entities drawn uniformly, from one seeded generator."""
    rng = random.Random(seed)
    makers = [(entity, generator_for(entity, fields)) for entity, fields in entities.items()]
    done = 0
    while done < count:
        size = min(chunk, count - done)
        out = []
        for _ in range(size):
            entity, make = rng.choice(makers)
            out.append((entity, make(rng)))
        done += size
        yield out


# -- the naive baseline ------------------------------------------------------------------------

_PROPERTY = re.compile(r"\\([pP])\{(\w+)\}")
_property_ranges: dict[str, list[tuple[int, int]]] = {}


def _ranges(name: str) -> list[tuple[int, int]]:
    """Code point ranges of Unicode property ``name``, as the ``regex`` module defines it."""
    cached = _property_ranges.get(name)
    if cached is not None:
        return cached
    test = regex.compile(rf"\p{{{name}}}")
    ranges: list[tuple[int, int]] = []
    start = None
    for code in range(0x110001):
        inside = code < 0x110000 and test.match(chr(code)) is not None
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            ranges.append((start, code - 1))
            start = None
    _property_ranges[name] = ranges
    return ranges


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, low = [], 0
    for start, end in ranges:
        if start > low:
            out.append((low, start - 1))
        low = end + 1
    if low <= 0x10FFFF:
        out.append((low, 0x10FFFF))
    return out


def _class_body(ranges: list[tuple[int, int]]) -> str:
    def char(code: int) -> str:
        return f"\\U{code:08x}"

    return "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges)


def to_re(pattern: str) -> str:
    """``pattern`` with each ``\\p{X}`` / ``\\P{X}`` spelled as an explicit ``re`` class."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            found = _PROPERTY.match(pattern, i)
            if found is not None:
                ranges = _ranges(found.group(2))
                if found.group(1) == "P":
                    ranges = _complement(ranges)
                body = _class_body(ranges)
                out.append(body if in_class else f"[{body}]")
                i = found.end()
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
            out.append(c)
            # A ']' (or '^]') right after '[' is a literal, not the end of the class.
            if pattern.startswith("^", i + 1):
                out.append("^")
                i += 1
            if pattern.startswith("]", i + 1):
                out.append("]")
                i += 1
        elif c == "]" and in_class:
            in_class = False
            out.append(c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


_RE_FLAGS = {
    "IGNORECASE": re.IGNORECASE,
    "MULTILINE": re.MULTILINE,
    "DOTALL": re.DOTALL,
    "VERBOSE": re.VERBOSE,
    "ASCII": re.ASCII,
}


def _re_compile(pattern: str, flags: list[str]) -> re.Pattern[str]:
    bits = 0
    for name in flags:
        bits |= _RE_FLAGS[name]
    return re.compile(to_re(pattern), bits)


_RE_WORDISH = to_re(WORDISH)
# Placeholders for map entries: private-use characters, which no generated text contains and
# which are not word characters (so they do not change the word boundaries of later keys).
_MARK, _FIRST_INDEX = "\ue000", 0xE100
_PLACEHOLDER = re.compile(f"{_MARK}([\ue100-\uf8ff])")


def _naive_map(spec: MapRule) -> Callable[[str], str]:
    flags = re.IGNORECASE if "IGNORECASE" in spec.flags else 0
    if "ASCII" in spec.flags:
        flags |= re.ASCII
    entries = sorted(spec.table.items(), key=lambda item: (-len(item[0]), item[0]))
    steps = []
    for index, (key, _) in enumerate(entries):
        left = f"(?<!{_RE_WORDISH})" if re.match(_RE_WORDISH, key[0]) else ""
        right = f"(?!{_RE_WORDISH})" if re.match(_RE_WORDISH, key[-1]) else ""
        steps.append(
            (re.compile(left + re.escape(key) + right, flags), _MARK + chr(_FIRST_INDEX + index))
        )
    values = [value for _, value in entries]

    def restore(match: re.Match[str]) -> str:
        return values[ord(match.group(1)) - _FIRST_INDEX]

    def apply(text: str) -> str:
        for pattern, placeholder in steps:
            text = pattern.sub(placeholder, text)
        return _PLACEHOLDER.sub(restore, text)

    return apply


_RE_CONTROL = re.compile(to_re(r"[^\P{Cc}\t\n\r]+"))
_RE_LINE_BREAK = re.compile(r"\r\n?")
_RE_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_RE_SPACE_AT_LINE_END = re.compile(r" ?\n ?")
_RE_BLANK_LINES = re.compile(r"\n{3,}")


def _re_whitespace(text: str) -> str:
    text = _RE_LINE_BREAK.sub("\n", text)
    text = _RE_HORIZONTAL_SPACE.sub(" ", text)
    text = _RE_SPACE_AT_LINE_END.sub("\n", text)
    text = _RE_BLANK_LINES.sub("\n\n", text)
    return text.strip()


# Forms a pattern-less normalize rule applies to the whole field, written with ``re``.
_WHOLE_FIELD_FORMS: dict[str, Callable[[str], str]] = {
    "control_chars": lambda text: _RE_CONTROL.sub("", text),
    "whitespace": _re_whitespace,
    "nfkc": lambda text: unicodedata.normalize("NFKC", text),
    "contract_parties": FORMS["contract_parties"].apply,
}


def _naive_normalize(spec: NormalizeRule) -> Callable[[str], str]:
    form = FORMS[spec.form].apply
    if spec.pattern is None:
        whole = _WHOLE_FIELD_FORMS.get(spec.form)
        if whole is None:
            raise SystemExit(f"{spec.id}: no naive version of form {spec.form!r}; add one")
        return whole
    pattern = _re_compile(spec.pattern, spec.flags)
    return lambda text: pattern.sub(lambda match: form(match.group()), text)


def _naive_text(spec: RuleSpec) -> Callable[[str], str]:
    if isinstance(spec, MapRule):
        return _naive_map(spec)
    if isinstance(spec, NormalizeRule):
        return _naive_normalize(spec)
    action = getattr(spec, "action", None)
    if action == "remove_lines":
        assert spec.pattern is not None
        line = _re_compile(spec.pattern, spec.flags)
        return lambda text: "\n".join(
            kept for kept in text.split("\n") if line.fullmatch(kept) is None
        )
    if action != "replace":
        raise SystemExit(f"{spec.id}: no naive version of action {action!r}; add one")
    assert spec.pattern is not None
    pattern = _re_compile(spec.pattern, spec.flags)
    replacement = spec.replacement  # type: ignore[attr-defined]
    return lambda text: pattern.sub(replacement, text)


@dataclass(frozen=True)
class NaiveStep:
    rule_id: str
    fields: tuple[str, ...]
    rewrite: Callable[[str], str] | None
    search: Callable[[str], object] | None
    verdict: str | None
    # An extract rule: its search, the field it writes and the value's template.
    extract: tuple[Callable[[str], re.Match[str] | None], str, str] | None = None


def naive_plan(ruleset: RuleSet, entity: str) -> list[NaiveStep]:
    """Each rule of each pack (in the engine's pack order) on the fields it names for
    ``entity``, as ``re`` calls."""
    steps = []
    for pack in ruleset.packs:
        pack_fields = dict.fromkeys(
            field
            for selector in pack.spec.applies_to
            if selector.matches(entity)
            for field in selector.fields
        )
        for spec in pack.rules:
            fields = tuple(f for f in pack_fields if spec.fields is None or f in spec.fields)
            if not fields:
                continue
            if isinstance(spec, ExtractRule):
                search = _re_compile(spec.pattern, spec.flags).search
                extract = (search, spec.into, spec.value)
                steps.append(NaiveStep(spec.id, fields, None, None, None, extract))
            elif spec.verdict is None:
                steps.append(NaiveStep(spec.id, fields, _naive_text(spec), None, None))
            else:
                assert spec.pattern is not None
                search = _re_compile(spec.pattern, spec.flags).search
                steps.append(NaiveStep(spec.id, fields, None, search, spec.verdict))
    return steps


Outcome = tuple[str, str | None, Record]


def naive_apply(plan: list[NaiveStep], record: Record) -> Outcome:
    """The engine's contract, naively: (verdict, deciding rule, cleaned record)."""
    cleaned = dict(record)
    for step in plan:
        for field in step.fields:
            value = cleaned.get(field)
            if not isinstance(value, str):
                continue
            if step.rewrite is not None:
                cleaned[field] = step.rewrite(value)
            elif step.extract is not None:
                search, into, template = step.extract
                if (match := search(value)) is not None:
                    cleaned[into] = match.expand(template)
            elif step.search is not None and step.search(value) is not None:
                assert step.verdict is not None
                return step.verdict, step.rule_id, dict(record)
    return "keep", None, cleaned


def as_records(result: ColumnsResult, rows: list[Record]) -> list[Outcome]:
    """The engine's column results row by row, in the naive baseline's form."""
    out: list[Outcome] = []
    for row, (record, verdict) in enumerate(zip(rows, result.verdicts, strict=True)):
        cleaned = dict(record)
        if verdict == "keep":
            cleaned.update((field, values[row]) for field, values in result.columns.items())
            cleaned.update(
                (field, values[row])
                for field, values in result.extracted.items()
                if values[row] is not None
            )
        out.append((verdict, result.rule_ids[row], cleaned))
    return out


# -- the run -----------------------------------------------------------------------------------


def text_bytes(record: Record, fields: list[str]) -> int:
    return sum(len(v.encode("utf-8")) for f in fields if isinstance(v := record.get(f), str))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000, help="records generated at once")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    packs = available_packs()
    ruleset = load_packs(packs)
    # Each path on its own rule set: the engine remembers the outcomes of short values it has
    # cleaned, and neither path may read what the other one remembered from the same group.
    record_ruleset = load_packs(packs)
    entities = entity_fields(ruleset)
    rule_count = sum(len(pack.rules) for pack in ruleset.packs)
    plans = {entity: naive_plan(ruleset, entity) for entity in entities}
    for entity in entities:
        record_ruleset.fields_for(entity)  # its per-field plans, compiled before the clock runs
    print(f"packs: {', '.join(ruleset.pack_names)} ({rule_count} rules), version {ruleset.version}")
    print("entities: " + "; ".join(f"{e} [{', '.join(f)}]" for e, f in entities.items()))

    tally = {entity: Tally() for entity in entities}
    # CPU seconds of this process: on a shared machine, time spent waiting for a core while
    # other processes run is not the engine's (wall seconds are printed at the end).
    clock = time.process_time
    wall_started = time.perf_counter()
    mismatched = changed_fields = 0
    verdicts: dict[str, int] = {}
    for chunk in records(entities, args.records, args.chunk, args.seed):
        groups: dict[str, list[Record]] = {}
        for entity, record in chunk:
            groups.setdefault(entity, []).append(record)
        # The three runs go back to back on each group, so a change in the machine's load
        # during the run touches all of them alike.
        for entity, rows in groups.items():
            fields, plan, counts = entities[entity], plans[entity], tally[entity]
            counts.records += len(rows)
            counts.bytes += sum(text_bytes(record, fields) for record in rows)
            for field in fields:
                values = [v for record in rows if isinstance(v := record.get(field), str)]
                counts.values += len(values)
                counts.distinct += len(set(values))
            # The cleaning stage hands the engine the batch's columns (from Arrow), not records.
            columns = {field: [record.get(field) for record in rows] for field in fields}
            started = clock()
            by_column = ruleset.apply_columns(entity, columns, len(rows))
            counts.batch_s += clock() - started
            batch_out = as_records(by_column, rows)
            started = clock()
            record_out = [record_ruleset.apply(entity, record) for record in rows]
            counts.record_s += clock() - started
            started = clock()
            naive_out = [naive_apply(plan, record) for record in rows]
            counts.naive_s += clock() - started
            for record, batch, single, theirs in zip(
                rows, batch_out, record_out, naive_out, strict=True
            ):
                verdict, rule_id, cleaned = batch
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
                if verdict == "keep":
                    changed_fields += sum(cleaned[f] != record.get(f) for f in fields)
                if batch != (single.verdict, single.rule_id, single.record) or batch != theirs:
                    mismatched += 1
                    if mismatched <= 5:
                        print(f"DIFFERENT ({entity}): {record!r}")
                        print(f"  batch:      {verdict} {rule_id} {cleaned!r}")
                        print(f"  per record: {single.verdict} {single.rule_id} {single.record!r}")
                        print(f"  naive:      {theirs!r}")

    total = Tally.sum(tally.values())
    print(f"records: {total.records:,}, text: {total.bytes / 1e6:,.1f} MB (UTF-8 of the fields)")
    print(f"verdicts: {verdicts}, changed fields in kept records: {changed_fields:,}")
    print(f"identical output: {total.records - mismatched:,} of {total.records:,} records")
    print(
        f"{'entity':16}{'records':>10}{'distinct':>9}{'batch rec/s':>13}{'MB/s':>6}"
        f"{'record rec/s':>14}{'naive rec/s':>13}{'batch':>8}{'record':>8}"
    )
    for entity, counts in [*tally.items(), ("all", total)]:
        print(
            f"{entity:16}{counts.records:>10,}{counts.distinct / counts.values:>9.0%}"
            f"{counts.records / counts.batch_s:>13,.0f}{counts.bytes / 1e6 / counts.batch_s:>6.2f}"
            f"{counts.records / counts.record_s:>14,.0f}{counts.records / counts.naive_s:>13,.0f}"
            f"{counts.naive_s / counts.batch_s:>7.2f}x{counts.naive_s / counts.record_s:>7.2f}x"
        )
    print(
        f"CPU seconds: batch {total.batch_s:.1f}, per record {total.record_s:.1f}, "
        f"naive {total.naive_s:.1f}; wall seconds of the whole run, generation and checks "
        f"included: {time.perf_counter() - wall_started:.0f}"
    )
    print(
        f"speed-up: batch {total.naive_s / total.batch_s:.2f}x, per record "
        f"{total.naive_s / total.record_s:.2f}x (issue 3 target: at least 5x)"
    )
    return 1 if mismatched else 0


@dataclass
class Tally:
    """One entity's counts: records, text bytes, field values and distinct values per group,
    and seconds of each of the three runs."""

    records: int = 0
    bytes: int = 0
    values: int = 0
    distinct: int = 0
    batch_s: float = 0.0
    record_s: float = 0.0
    naive_s: float = 0.0

    @staticmethod
    def sum(tallies: Iterable[Tally]) -> Tally:
        total = Tally()
        for tally in tallies:
            for name, value in vars(tally).items():
                setattr(total, name, getattr(total, name) + value)
        return total


if __name__ == "__main__":
    sys.exit(main())
