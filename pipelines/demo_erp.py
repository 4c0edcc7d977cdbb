"""A deterministic demo ERP (customers, orders, medical orders, invoices) loaded into PostgreSQL.

The rows come from Faker (zh_CN and en_US) and one ``random.Random``, all seeded, with fixed
date ranges, so the same ``seed`` and ``scale`` give byte-identical tables on every run and
every machine with the pinned Faker version. Everything lives in schema ``erp``; every table has
an integer primary key and an ``updated_at timestamptz`` watermark (see ``DEMO_TABLES``).

Personal data is synthetic but shaped like the real thing, so detectors have work to do:

* ``customers.mobile``: mainland mobile numbers; ``customers.resident_id``: 18-character resident
  ids with a valid GB 11643-1999 check digit (NULL for foreign customers); ``email``, ``address``.
* ``invoices.bank_card``: 16- and 19-digit UnionPay (62…) and 16-digit Visa (4…) numbers with a
  valid Luhn check digit.
* Planted in free text: ``orders.note``, ``medical_orders.notes`` and ``invoices.notes`` carry
  mobile numbers (plain, dashed or ``+86`` spaced), resident ids, bank card numbers and e-mail
  addresses in some rows, in Chinese and English sentences.

Planted bad rows, for the cleaning stage to quarantine: ``BAD_MEDICAL_ORDERS_PER_SCALE * scale``
rows of ``medical_orders`` have an unusable ``prescription``, cycling through: empty string,
whitespace only, control characters (ESC, BEL, backspace) inside the text, UTF-8 mis-read as
Windows-1252 (Latin letters and C1 controls for each Chinese character), and UTF-8 mis-read as
GBK (``闃胯帿…``). About 2% of customers are soft-deleted (``deleted = true``).
"""

# Chinese text here uses full-width punctuation and the multiplication sign on purpose: real
# ERP text does, and the cleaning stage must cope with it.
# ruff: noqa: RUF001

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import NamedTuple

import psycopg
from faker import Faker
from psycopg import sql

from pipelines.errors import SourceError
from pipelines.local_postgres import PostgresInfo

SCHEMA = "erp"
BAD_MEDICAL_ORDERS_PER_SCALE = 10


@dataclass(frozen=True)
class DemoTable:
    """A demo table as the ingest config names it: primary key and incremental watermark."""

    name: str
    primary_key: str
    watermark: str
    schema: str = SCHEMA

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


DEMO_TABLES: tuple[DemoTable, ...] = (
    DemoTable("customers", "customer_id", "updated_at"),
    DemoTable("orders", "order_id", "updated_at"),
    DemoTable("medical_orders", "med_order_id", "updated_at"),
    DemoTable("invoices", "invoice_id", "updated_at"),
)

# Rows per table at scale=1, in load order (foreign keys point backwards).
_BASE_ROWS = {"customers": 500, "orders": 2000, "medical_orders": 1000, "invoices": 1500}

_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "customers": (
        ("customer_id", "integer PRIMARY KEY"),
        ("name", "text NOT NULL"),
        ("name_en", "text NOT NULL"),
        ("mobile", "text NOT NULL"),
        ("resident_id", "char(18)"),
        ("email", "text NOT NULL"),
        ("city", "text NOT NULL"),
        ("address", "text NOT NULL"),
        ("created_at", "timestamptz NOT NULL"),
        ("updated_at", "timestamptz NOT NULL"),
        ("deleted", "boolean NOT NULL DEFAULT false"),
    ),
    "orders": (
        ("order_id", "integer PRIMARY KEY"),
        ("customer_id", "integer NOT NULL REFERENCES erp.customers"),
        ("order_date", "date NOT NULL"),
        ("amount", "numeric(12,2) NOT NULL"),
        ("currency", "char(3) NOT NULL"),
        ("status", "text NOT NULL"),
        ("note", "text"),
        ("updated_at", "timestamptz NOT NULL"),
    ),
    "medical_orders": (
        ("med_order_id", "integer PRIMARY KEY"),
        ("customer_id", "integer NOT NULL REFERENCES erp.customers"),
        ("drug", "text NOT NULL"),
        ("dose", "text NOT NULL"),
        ("prescription", "text NOT NULL"),
        ("doctor", "text NOT NULL"),
        ("notes", "text"),
        ("updated_at", "timestamptz NOT NULL"),
    ),
    "invoices": (
        ("invoice_id", "integer PRIMARY KEY"),
        ("order_id", "integer NOT NULL REFERENCES erp.orders"),
        ("amount", "numeric(12,2) NOT NULL"),
        ("bank_card", "text NOT NULL"),
        ("title", "text NOT NULL"),
        ("notes", "text"),
        ("issued_at", "timestamptz NOT NULL"),
        ("updated_at", "timestamptz NOT NULL"),
    ),
}

# Fixed bounds, never "now": generated dates must not depend on the day the demo runs.
_CST = timezone(timedelta(hours=8))
_PERIOD_START = datetime(2023, 1, 1, tzinfo=_CST)
_PERIOD_SECONDS = int((datetime(2025, 7, 1, tzinfo=_CST) - _PERIOD_START).total_seconds())

# (province, city, district, district code); the code starts resident ids.
_PLACES = (
    ("北京市", "北京市", "朝阳区", "110105"),
    ("北京市", "北京市", "海淀区", "110108"),
    ("天津市", "天津市", "和平区", "120101"),
    ("上海市", "上海市", "徐汇区", "310104"),
    ("上海市", "上海市", "浦东新区", "310115"),
    ("江苏省", "南京市", "鼓楼区", "320106"),
    ("浙江省", "杭州市", "西湖区", "330106"),
    ("山东省", "青岛市", "市南区", "370202"),
    ("湖北省", "武汉市", "洪山区", "420111"),
    ("广东省", "广州市", "天河区", "440106"),
    ("广东省", "深圳市", "南山区", "440305"),
    ("重庆市", "重庆市", "渝中区", "500103"),
    ("四川省", "成都市", "武侯区", "510107"),
    ("陕西省", "西安市", "雁塔区", "610113"),
)

# Faker's zh_CN names carry no romanisation of the same name, hence these pinyin pairs.
_SURNAMES = (
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("吴", "Wu"),
    ("周", "Zhou"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("马", "Ma"),
    ("朱", "Zhu"),
    ("胡", "Hu"),
    ("郭", "Guo"),
    ("何", "He"),
    ("林", "Lin"),
    ("罗", "Luo"),
    ("高", "Gao"),
    ("郑", "Zheng"),
    ("梁", "Liang"),
    ("谢", "Xie"),
    ("宋", "Song"),
    ("唐", "Tang"),
    ("欧阳", "Ouyang"),
)
_GIVEN = (
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("艳", "yan"),
    ("杰", "jie"),
    ("娟", "juan"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀", "xiu"),
    ("霞", "xia"),
    ("平", "ping"),
    ("刚", "gang"),
    ("桂", "gui"),
    ("英", "ying"),
    ("华", "hua"),
    ("建", "jian"),
    ("国", "guo"),
    ("文", "wen"),
    ("辉", "hui"),
    ("玲", "ling"),
    ("婷", "ting"),
    ("浩", "hao"),
    ("宇", "yu"),
    ("欣", "xin"),
    ("子", "zi"),
    ("涵", "han"),
    ("轩", "xuan"),
    ("晨", "chen"),
)
_MAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "gmail.com", "outlook.com")

# (Chinese name, English name, doses, routes, frequencies): real drugs with plausible sigs.
_DRUGS = (
    ("阿莫西林", "Amoxicillin", ("0.25g", "0.5g"), ("po",), ("bid", "tid")),
    ("头孢克肟", "Cefixime", ("100mg",), ("po",), ("qd", "bid")),
    ("二甲双胍", "Metformin", ("500mg", "850mg"), ("po",), ("bid", "tid")),
    ("阿司匹林", "Aspirin", ("100mg",), ("po",), ("qd",)),
    ("布洛芬", "Ibuprofen", ("200mg", "400mg"), ("po",), ("tid", "prn")),
    ("对乙酰氨基酚", "Paracetamol", ("0.5g",), ("po",), ("prn", "qid")),
    ("奥美拉唑", "Omeprazole", ("20mg", "40mg"), ("po", "iv"), ("qd", "bid")),
    ("阿托伐他汀", "Atorvastatin", ("20mg", "40mg"), ("po",), ("qn",)),
    ("氨氯地平", "Amlodipine", ("5mg",), ("po",), ("qd",)),
    ("地西泮", "Diazepam", ("5mg",), ("po",), ("hs", "qn")),
    ("头孢曲松", "Ceftriaxone", ("1g", "2g"), ("iv",), ("qd",)),
    ("左氧氟沙星", "Levofloxacin", ("0.5g",), ("po", "iv"), ("qd",)),
    ("地塞米松", "Dexamethasone", ("5mg",), ("iv", "im"), ("st",)),
    ("肾上腺素", "Epinephrine", ("0.5mg",), ("im",), ("st",)),
    ("呋塞米", "Furosemide", ("20mg",), ("iv", "po"), ("st", "qd")),
    ("维生素B12", "Vitamin B12", ("0.5mg",), ("im",), ("qd",)),
    ("氨溴索口服液", "Ambroxol oral solution", ("10毫升",), ("po",), ("tid",)),
    ("氯化钠注射液", "Sodium chloride 0.9%", ("250毫升", "500ml"), ("iv",), ("qd",)),
)
_ROUTES_ZH = {"po": "口服", "iv": "静脉滴注", "im": "肌内注射"}

_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11643_CHECK = "10X98765432"
_UNIONPAY_BINS = ("622202", "621700", "622848", "622588", "621483", "623668")
_VISA_BINS = ("427020", "438088", "404119", "455952")


@dataclass
class _Sources:
    """The seeded random sources; the order of draws shapes the output, so it is fixed."""

    rng: random.Random
    zh: Faker
    en: Faker


@dataclass(frozen=True)
class _Person:
    customer_id: int
    name: str
    name_en: str
    mobile: str
    resident_id: str | None
    email: str
    city: str
    address: str
    created_at: datetime


class _Order(NamedTuple):
    """One ``erp.orders`` row, fields in ``_COLUMNS["orders"]`` order; invoices refer to it."""

    order_id: int
    customer_id: int
    order_date: date
    amount: Decimal
    currency: str
    status: str
    note: str | None
    updated_at: datetime


def load_demo_erp(info: PostgresInfo, *, scale: int = 1, seed: int = 7) -> dict[str, int]:
    """Replace schema ``erp`` with the demo tables and return the number of rows per table.

    Row counts are ``scale`` times 500 customers, 2000 orders, 1000 medical orders and 1500
    invoices. The schema is dropped, recreated and filled in one transaction, so a reader sees
    the old tables or the new ones, and equal ``(scale, seed)`` give identical content.
    Raises SourceError when the server cannot be reached or refuses the load.
    """
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    tables = generate_demo_rows(scale=scale, seed=seed)
    try:
        with psycopg.connect(info.dsn()) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
            for name, rows in tables.items():
                cur.execute(_create_table(name))
                _copy_rows(cur, name, rows)
    except psycopg.OperationalError as exc:
        raise SourceError(
            f"cannot load the demo ERP into {info.redacted_url}: {exc}", transient=True
        ) from exc
    except psycopg.Error as exc:
        raise SourceError(f"loading the demo ERP into {info.redacted_url} failed: {exc}") from exc
    return {name: len(rows) for name, rows in tables.items()}


def generate_demo_rows(*, scale: int = 1, seed: int = 7) -> dict[str, Sequence[tuple[object, ...]]]:
    """Generate the demo rows without a database: table name to rows in ``_COLUMNS`` order."""
    zh, en = Faker("zh_CN"), Faker("en_US")
    zh.seed_instance(seed)
    en.seed_instance(seed)
    src = _Sources(random.Random(seed), zh, en)
    counts = {name: base * scale for name, base in _BASE_ROWS.items()}
    people = [_person(src, customer_id) for customer_id in range(1, counts["customers"] + 1)]
    orders = _orders(src, people, counts["orders"])
    return {
        "customers": _customers(src, people),
        "orders": orders,
        "medical_orders": _medical_orders(src, people, counts["medical_orders"], scale),
        "invoices": _invoices(src, people, orders, counts["invoices"]),
    }


def _create_table(name: str) -> sql.Composed:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(ddl))
        for column, ddl in _COLUMNS[name]
    )
    return sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(SCHEMA, name), columns)


def _copy_rows(cur: psycopg.Cursor[object], name: str, rows: Sequence[tuple[object, ...]]) -> None:
    columns = sql.SQL(", ").join(sql.Identifier(column) for column, _ in _COLUMNS[name])
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(SCHEMA, name), columns)
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _person(src: _Sources, customer_id: int) -> _Person:
    rng = src.rng
    province, city, district, code = rng.choice(_PLACES)
    region = city if province == city else province + city
    street = f"{src.zh.street_name()}{rng.randint(1, 999)}号"
    address = f"{region}{district}{street}{rng.randint(1, 30)}栋{rng.randint(101, 2808)}室"
    if rng.random() < 0.1:
        # Foreign residents: an English name and no resident id.
        name = src.en.name()
        return _Person(
            customer_id=customer_id,
            name=name,
            name_en=name,
            mobile=src.zh.phone_number(),
            resident_id=None,
            email=src.en.free_email(),
            city=city,
            address=address,
            created_at=_moment(rng),
        )
    surname, surname_py = rng.choice(_SURNAMES)
    given = rng.choices(_GIVEN, k=rng.choice((1, 2, 2)))
    given_py = "".join(py for _, py in given)
    if rng.random() < 0.3:
        email = f"{rng.randint(10_000, 3_999_999_999)}@qq.com"
    else:
        email = f"{given_py}.{surname_py.lower()}{rng.randint(1, 99)}@{rng.choice(_MAIL_DOMAINS)}"
    # Most people live where they were born; the id keeps the birthplace.
    birth_code = code if rng.random() < 0.7 else rng.choice(_PLACES)[3]
    return _Person(
        customer_id=customer_id,
        name=surname + "".join(hanzi for hanzi, _ in given),
        name_en=f"{given_py.capitalize()} {surname_py}",
        mobile=src.zh.phone_number(),
        resident_id=_resident_id(rng, birth_code),
        email=email,
        city=city,
        address=address,
        created_at=_moment(rng),
    )


def _customers(src: _Sources, people: Sequence[_Person]) -> list[tuple[object, ...]]:
    return [
        (
            p.customer_id,
            p.name,
            p.name_en,
            p.mobile,
            p.resident_id,
            p.email,
            p.city,
            p.address,
            p.created_at,
            _later(src.rng, p.created_at),
            src.rng.random() < 0.02,
        )
        for p in people
    ]


def _orders(src: _Sources, people: Sequence[_Person], count: int) -> list[_Order]:
    rng = src.rng
    rows: list[_Order] = []
    for order_id in range(1, count + 1):
        person = rng.choice(people)
        placed = _moment(rng)
        currency = rng.choices(("CNY", "USD", "EUR"), weights=(85, 10, 5))[0]
        cents = rng.randint(990, 2_000_000) if currency == "CNY" else rng.randint(500, 300_000)
        status = rng.choices(
            ("pending", "paid", "shipped", "delivered", "cancelled", "refunded"),
            weights=(10, 20, 20, 40, 7, 3),
        )[0]
        rows.append(
            _Order(
                order_id,
                person.customer_id,
                placed.date(),
                Decimal(cents).scaleb(-2),
                currency,
                status,
                _order_note(src, person),
                _later(rng, placed),
            )
        )
    return rows


def _order_note(src: _Sources, person: _Person) -> str | None:
    rng = src.rng
    roll = rng.random()
    if roll < 0.35:
        return None
    if roll < 0.75:
        return rng.choice(
            (
                "请尽快发货",
                "周末送货",
                "易碎品，包装要结实",
                "需要开具增值税专用发票",
                "Leave at the front desk",
                "Gift wrap, please",
                "Deliver after 6 pm",
            )
        )
    return rng.choice(
        (
            f"收货人电话：{_mobile_in_text(rng, person.mobile)}",
            f"请联系 {person.email} 确认发票信息",
            f"送货地址：{person.address}，联系人{person.name}，电话{person.mobile}",
            f"Call {_mobile_in_text(rng, person.mobile)} before delivery",
            f"Send the receipt to {person.email}, thanks",
            f"报关身份证号：{person.resident_id or _resident_id(rng, rng.choice(_PLACES)[3])}",
        )
    )


def _medical_orders(
    src: _Sources, people: Sequence[_Person], count: int, scale: int
) -> list[tuple[object, ...]]:
    rng = src.rng
    doctors = [_doctor(src) for _ in range(20 + 5 * scale)]
    bad_ids = set(rng.sample(range(1, count + 1), BAD_MEDICAL_ORDERS_PER_SCALE * scale))
    rows: list[tuple[object, ...]] = []
    bad_seen = 0
    for med_order_id in range(1, count + 1):
        person = rng.choice(people)
        drug_zh, drug_en, doses, routes, freqs = rng.choice(_DRUGS)
        dose, route, freq = rng.choice(doses), rng.choice(routes), rng.choice(freqs)
        if med_order_id in bad_ids:
            prescription = _spoiled_prescription(drug_zh, dose, route, freq, bad_seen)
            bad_seen += 1
        else:
            prescription = _prescription(rng, drug_zh, drug_en, dose, route, freq)
        rows.append(
            (
                med_order_id,
                person.customer_id,
                drug_zh,
                dose,
                prescription,
                rng.choice(doctors),
                _medical_note(src, person),
                _later(rng, _moment(rng)),
            )
        )
    return rows


def _prescription(
    rng: random.Random, drug_zh: str, drug_en: str, dose: str, route: str, freq: str
) -> str:
    # English sigs space the unit ("500 mg") and write millilitres as ml.
    value, unit = re.fullmatch(r"([\d.]+)(\D+)", dose).groups()  # type: ignore[union-attr]
    unit = unit.replace("毫升", "ml")
    style = rng.randrange(4)
    if style == 0:
        return f"{drug_zh} {dose} {route} {freq}"
    if style == 1:
        return f"{drug_zh} {dose} {freq} {_ROUTES_ZH[route]}"
    if style == 2:
        return f"{drug_en} {value} {unit} {route} {freq}"
    if freq == "st":  # a single immediate dose has no course length
        return f"Rp. {drug_zh} {dose} Sig. {freq} {route}"
    return f"Rp. {drug_zh} {dose} Sig. {freq} {route} ×{rng.choice((3, 5, 7, 14))}d"


def _spoiled_prescription(drug_zh: str, dose: str, route: str, freq: str, index: int) -> str:
    """An unusable prescription of the kind ``index`` picks (see the module docstring)."""
    kind = index % 5
    if kind == 0:
        return ""
    if kind == 1:
        return " \t "
    if kind == 2:
        return f"{drug_zh}\x1b[0m\x07 {dose} {route} {freq}\x08"
    # All-Chinese wording, so that mis-decoding visibly changes every word but the dose.
    raw = f"{drug_zh} {dose} {freq} {_ROUTES_ZH[route]}".encode()
    if kind == 3:
        return _read_as_windows_1252(raw)
    return raw.decode("gbk", errors="replace")


def _read_as_windows_1252(raw: bytes) -> str:
    # Browsers map the five bytes Windows-1252 leaves undefined to C1 controls; so do we.
    return "".join(bytes((byte,)).decode("cp1252", errors="ignore") or chr(byte) for byte in raw)


def _medical_note(src: _Sources, person: _Person) -> str | None:
    rng = src.rng
    roll = rng.random()
    if roll < 0.4:
        return None
    if roll < 0.88:
        return rng.choice(
            (
                "饭后服用",
                "皮试阴性",
                "过敏史：青霉素过敏",
                "孕妇慎用",
                "两周后复诊",
                "监测血糖",
                "Take with food",
                "Avoid alcohol",
                "Review in two weeks",
                "Check renal function",
            )
        )
    phone = _mobile_in_text(rng, src.zh.phone_number())
    return rng.choice(
        (
            f"家属电话 {phone}",
            f"如有不适请拨打{phone}",
            f"Patient's son, phone {phone}",
            f"患者联系方式：{person.mobile}",
        )
    )


def _doctor(src: _Sources) -> str:
    if src.rng.random() < 0.15:
        return f"Dr. {src.en.name()}"
    return src.zh.name()


def _invoices(
    src: _Sources, people: Sequence[_Person], orders: Sequence[_Order], count: int
) -> list[tuple[object, ...]]:
    rng = src.rng
    by_id = {person.customer_id: person for person in people}
    chosen = sorted(rng.sample(range(len(orders)), count))
    rows: list[tuple[object, ...]] = []
    for invoice_id, index in enumerate(chosen, start=1):
        order = orders[index]
        person = by_id[order.customer_id]
        issued = datetime.combine(order.order_date, datetime.min.time(), _CST) + timedelta(
            seconds=rng.randrange(86_400 * 30)
        )
        card = _bank_card(rng)
        rows.append(
            (
                invoice_id,
                order.order_id,
                order.amount,
                card,
                _invoice_title(src, person),
                _invoice_note(src, person, card),
                issued,
                _later(rng, issued),
            )
        )
    return rows


def _invoice_title(src: _Sources, person: _Person) -> str:
    roll = src.rng.random()
    if roll < 0.6:
        return src.zh.company()
    if roll < 0.75:
        return "个人"
    if roll < 0.9:
        return person.name
    return src.en.company()


def _invoice_note(src: _Sources, person: _Person, card: str) -> str | None:
    rng = src.rng
    roll = rng.random()
    if roll < 0.3:
        return None
    if roll < 0.8:
        return rng.choice(("货款", "服务费", "技术咨询费", "Consulting fee", "Annual licence"))
    spaced_card = " ".join(card[i : i + 4] for i in range(0, len(card), 4))
    return rng.choice(
        (
            f"付款账号 {card}",
            f"退款请转至卡号 {spaced_card}",
            f"开票人身份证号 {person.resident_id or _resident_id(rng, rng.choice(_PLACES)[3])}",
            f"电子发票请发送至 {person.email}",
            f"Refund to card {spaced_card}",
        )
    )


def _resident_id(rng: random.Random, district_code: str) -> str:
    """An 18-character resident id for someone born 1950-2005 with a GB 11643 check digit."""
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
    body = f"{district_code}{born:%Y%m%d}{rng.randrange(1, 1000):03d}"
    total = sum(int(digit) * weight for digit, weight in zip(body, _GB11643_WEIGHTS, strict=True))
    return body + _GB11643_CHECK[total % 11]


def _bank_card(rng: random.Random) -> str:
    """A UnionPay (16 or 19 digits) or Visa (16 digits) number with a valid Luhn digit."""
    if rng.random() < 0.8:
        prefix, length = rng.choice(_UNIONPAY_BINS), rng.choice((16, 19, 19))
    else:
        prefix, length = rng.choice(_VISA_BINS), 16
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    return body + _luhn_digit(body)


def _luhn_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        # Counted from the right of the body, even positions get doubled once the check digit
        # is appended.
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str(-total % 10)


def _mobile_in_text(rng: random.Random, mobile: str) -> str:
    """Write a mobile number the way people do in free text: plain, dashed or +86 spaced."""
    style = rng.randrange(3)
    if style == 0:
        return mobile
    if style == 1:
        return f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    return f"+86 {mobile[:3]} {mobile[3:7]} {mobile[7:]}"


def _moment(rng: random.Random) -> datetime:
    return _PERIOD_START + timedelta(seconds=rng.randrange(_PERIOD_SECONDS))


def _later(rng: random.Random, moment: datetime) -> datetime:
    """An ``updated_at`` at or after ``moment``: most rows are touched again within 90 days."""
    return moment + timedelta(seconds=rng.randrange(86_400 * 90))
