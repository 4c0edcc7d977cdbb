"""A real CRM export API for the tests: HTTP on 127.0.0.1, generated data, injectable faults.

It serves the protocol documented in ``ingest/crm.py`` (keyset pages ordered by
``(updated_at, id)``, ``updated_since`` inclusive, opaque ``next_cursor``) from a
``ThreadingHTTPServer`` in a thread, so the connector is tested over real sockets: timeouts,
cut connections and keep-alive behave as they do against a production CRM.
"""

# Support dialogue in Chinese uses full-width punctuation, as real tickets do.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

ENTITIES = ("accounts", "contacts", "tickets")
TOKEN = "s3cr3t-crm-token-do-not-log"
TOKEN_ENV = "STEWARD_TEST_CRM_TOKEN"
KEY = "id"
UPDATED = "updated_at"
BASE_TIME = datetime(2024, 5, 1, tzinfo=UTC)
_CHINA = timezone(timedelta(hours=8))

FaultKind = Literal["status", "retry_after", "slow", "truncate", "cut", "repeat", "body"]


@dataclass
class Fault:
    """A fault the server injects into the next ``times`` requests that match it.

    ``page`` is the 1-based page of an export (None: any page); ``entity`` None: any entity.
    - ``status``: reply ``status_code`` with a JSON error (and ``Retry-After`` when given).
    - ``retry_after``: 429 with that ``Retry-After``.
    - ``slow``: sleep ``delay_s`` before a normal reply.
    - ``truncate``: a 200 whose body is cut in half (valid HTTP, invalid JSON).
    - ``cut``: announce the whole body, send half, close the connection.
    - ``repeat``: serve the previous page again with the cursor just received.
    - ``body``: reply 200 with ``body`` as JSON.
    """

    kind: FaultKind
    page: int | None = None
    entity: str | None = None
    times: int = 1
    status_code: int = 500
    retry_after: str | None = None
    delay_s: float = 0.0
    body: Any = None


@dataclass(frozen=True)
class Served:
    """One request as the server saw it."""

    entity: str
    page: int
    status: int
    params: dict[str, str]
    fault: FaultKind | None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_COMPANIES_EN = ("Northwind Traders", "Contoso Ltd", "Fabrikam Inc", "Tailspin Toys", "Litware")
_COMPANIES_ZH = ("华信科技有限公司", "东方物流集团", "蓝海医疗器械", "长江建设股份", "金桥数据服务")
_PEOPLE_EN = ("Alice Smith", "Bob Jones", "Carol White", "David Brown", "Emma Clark")
_PEOPLE_ZH = ("张伟", "王芳", "李娜", "刘洋", "陈静")
_INDUSTRIES = ("retail", "logistics", "healthcare", "construction", "software")
_DIALOGUES_EN = (
    ("My invoice #{n} was charged twice.", "Sorry about that, I have refunded the duplicate."),
    ("I cannot log in since yesterday.", "Please reset your password from the login page."),
    ("The delivery for order {n} is late.", "It ships tomorrow; here is the tracking link."),
)
_DIALOGUES_ZH = (
    ("我的发票{n}被重复扣款了。", "非常抱歉，我们已经为您退回重复的款项。"),
    ("从昨天开始我就无法登录。", "请在登录页面重置您的密码。"),
    ("订单{n}的物流一直没有更新。", "包裹明天发出，这是物流单号。"),
)


def generate_crm_data(
    seed: int = 7, accounts: int = 12, contacts: int = 20, tickets: int = 25
) -> dict[str, list[dict[str, Any]]]:
    """Deterministic CRM data in Chinese and English (same seed, same records).

    Timestamps come in groups of three equal values, so page boundaries fall inside ties and
    the key tie-breaker is exercised. Account keys are integers, contact and ticket keys
    zero-padded strings; contacts carry a +08:00 offset, the others UTC.
    """
    rng = random.Random(seed)

    def moment(i: int) -> datetime:
        return BASE_TIME + timedelta(minutes=i // 3)

    data: dict[str, list[dict[str, Any]]] = {name: [] for name in ENTITIES}
    for i in range(accounts):
        chinese = i % 2 == 0
        data["accounts"].append(
            {
                KEY: 1000 + i,
                "name": rng.choice(_COMPANIES_ZH if chinese else _COMPANIES_EN),
                "industry": rng.choice(_INDUSTRIES),
                "country": "CN" if chinese else "US",
                UPDATED: _iso(moment(i)),
            }
        )
    for i in range(contacts):
        chinese = i % 2 == 1
        data["contacts"].append(
            {
                KEY: f"C-{i:05d}",
                "account_id": 1000 + rng.randrange(accounts),
                "name": rng.choice(_PEOPLE_ZH if chinese else _PEOPLE_EN),
                "phone": f"+86 138 {rng.randrange(10**8):08d}" if chinese else None,
                UPDATED: moment(i).astimezone(_CHINA).isoformat(),
            }
        )
    for i in range(tickets):
        chinese = i % 3 != 0
        ask, answer = rng.choice(_DIALOGUES_ZH if chinese else _DIALOGUES_EN)
        start = moment(i) - timedelta(hours=1)
        data["tickets"].append(
            {
                KEY: f"T-{i:06d}",
                "account_id": 1000 + rng.randrange(accounts),
                "subject": ask.format(n=4000 + i)[:20],
                "language": "zh" if chinese else "en",
                "status": rng.choice(("open", "pending", "solved")),
                "dialogue": [
                    {"role": "customer", "text": ask.format(n=4000 + i), "at": _iso(start)},
                    {"role": "agent", "text": answer, "at": _iso(start + timedelta(minutes=5))},
                ],
                UPDATED: _iso(moment(i)),
            }
        )
    return data


def _encode(after: tuple[str, Any], page: int) -> str:
    raw = json.dumps({"after": list(after), "page": page}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> tuple[tuple[str, Any], int]:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    value = json.loads(raw)
    return (value["after"][0], value["after"][1]), int(value["page"])


@dataclass
class CrmServer:
    """The export API over ``data``; ``token`` is the only bearer token it accepts."""

    data: dict[str, list[dict[str, Any]]]
    token: str
    faults: list[Fault] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _http: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._http is not None, "start the server first"
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def upsert(self, entity: str, record: dict[str, Any]) -> None:
        """Add a record or replace the one with the same key (a change at the source)."""
        with self._lock:
            rows = self.data[entity]
            rows[:] = [row for row in rows if row[KEY] != record[KEY]]
            rows.append(record)

    def pages_served(self, entity: str, page: int) -> list[Served]:
        return [s for s in self.served if s.entity == entity and s.page == page]

    @contextmanager
    def running(self) -> Iterator[CrmServer]:
        handler = type("Handler", (_Handler,), {"crm": self})
        http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # A handler still sleeping on a "slow" fault must not hold up shutdown.
        http.daemon_threads = True
        http.block_on_close = False
        self._http = http
        thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        thread.start()
        try:
            yield self
        finally:
            http.shutdown()
            http.server_close()
            thread.join(timeout=5)

    def _take_fault(self, entity: str, page: int) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (
                    fault.times > 0
                    and fault.entity in (None, entity)
                    and fault.page in (None, page)
                    and not (fault.kind == "repeat" and page == 1)
                ):
                    fault.times -= 1
                    return fault
        return None

    def _sorted(self, entity: str, since: datetime | None) -> list[dict[str, Any]]:
        with self._lock:
            rows = list(self.data[entity])
        rows = [r for r in rows if since is None or _parse(r[UPDATED]) >= since]
        return sorted(rows, key=lambda r: (_parse(r[UPDATED]), r[KEY]))

    def page(self, entity: str, params: dict[str, str], repeat: bool) -> tuple[int, dict[str, Any]]:
        """The export page for ``params``: (page number, JSON body)."""
        since = _parse(params["updated_since"]) if "updated_since" in params else None
        size = int(params["page_size"])
        rows = self._sorted(entity, since)
        start, number = 0, 1
        if "cursor" in params:
            (after_time, after_key), number = _decode(params["cursor"])
            after = (_parse(after_time), after_key)
            start = next(
                (i for i, r in enumerate(rows) if (_parse(r[UPDATED]), r[KEY]) > after),
                len(rows),
            )
        if repeat:
            # The previous page (it was full, since it had a next page) and the same cursor.
            chunk = rows[max(0, start - size) : start]
            return number, {"data": chunk, "next_cursor": params["cursor"]}
        chunk = rows[start : start + size]
        token = None
        if start + size < len(rows):
            last = chunk[-1]
            token = _encode((last[UPDATED], last[KEY]), number + 1)
        return number, {"data": chunk, "next_cursor": token}


class _Handler(BaseHTTPRequestHandler):
    crm: CrmServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read ``CrmServer.served`` instead."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        entity = parts.path.removeprefix("/v1/")
        if entity not in ENTITIES:
            self._json(404, {"error": f"no such export: {parts.path}"}, entity, 0, params)
            return
        if self.headers.get("Authorization") != f"Bearer {self.crm.token}":
            # Echo what was sent, as careless servers do: the client must not repeat it.
            sent = self.headers.get("Authorization", "")
            self._json(401, {"error": f"invalid credentials {sent!r}"}, entity, 0, params)
            return
        number = _decode(params["cursor"])[1] if "cursor" in params else 1
        fault = self.crm._take_fault(entity, number)
        kind = fault.kind if fault else None
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            self._json(
                fault.status_code, {"error": "injected"}, entity, number, params, kind, headers
            )
            return
        if fault is not None and fault.kind == "retry_after":
            headers = {"Retry-After": fault.retry_after or "0"}
            self._json(429, {"error": "slow down"}, entity, number, params, kind, headers)
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay_s)
        if fault is not None and fault.kind == "body":
            self._json(200, fault.body, entity, number, params, kind)
            return
        number, body = self.crm.page(entity, params, repeat=kind == "repeat")
        payload = json.dumps(body, ensure_ascii=False).encode()
        if kind == "truncate":
            payload = payload[: len(payload) // 2]
        if kind == "cut":
            self._send(200, payload, entity, number, params, kind, announce=len(payload) * 2)
            self.close_connection = True
            return
        self._send(200, payload, entity, number, params, kind)

    def _json(
        self,
        status: int,
        body: Any,
        entity: str,
        number: int,
        params: dict[str, str],
        kind: FaultKind | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps(body, ensure_ascii=False).encode()
        self._send(status, payload, entity, number, params, kind, headers=headers)

    def _send(
        self,
        status: int,
        payload: bytes,
        entity: str,
        number: int,
        params: dict[str, str],
        kind: FaultKind | None,
        headers: dict[str, str] | None = None,
        announce: int | None = None,
    ) -> None:
        self.crm.served.append(Served(entity, number, status, params, kind))
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(announce or len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up on a slow page; that is the point of the fault.
            self.close_connection = True
