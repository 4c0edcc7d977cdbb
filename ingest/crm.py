"""CRM entities read incrementally from a paginated REST export API.

Protocol (a typical CRM export API; ``tests/ingest/crm_server.py`` serves it for the tests)::

    GET {base_url}{entity.path}?page_size=N[&updated_since=<ISO-8601 UTC>][&cursor=<token>]
    Authorization: Bearer <value of token_env>
    Accept: application/json

    200 {"data": [<record>, ...], "next_cursor": "<opaque token>" | null}

- ``updated_since`` is inclusive: the export holds the records whose ``updated`` field is at or
  after it (ISO-8601; a timestamp without offset is read as UTC).
- Records come in ``(updated, key)`` ascending order (keyset order). A page-wise high-water
  mark is only meaningful in that order; the key breaks ties between equal timestamps.
- ``next_cursor`` is opaque and ``null`` on the last page; the client sends it back unchanged
  with the same ``updated_since`` and ``page_size``.
- 429 (and a 503 that says when): wait ``Retry-After`` (delta-seconds or an HTTP date), then
  send the same request again.
- 408, 5xx, timeouts, connection errors and bodies that are not JSON (a truncated page):
  retried with exponential backoff and jitter; when attempts run out, a transient SourceError.
- 401 and 403 (token refused), redirects, other 4xx, and JSON that is not an export page:
  a terminal SourceError.

Delivery: every record past the committed cursor is delivered; with ``lookback_s`` the window
before it is delivered again, which catches records the source committed late with an older
``updated`` (without it they are skipped). A page the server repeats within a run is dropped by
``(key, updated)`` (repeats of the last pages; an older repeat is re-delivered, harmless
downstream). After each page the client hands out the cursor that describes everything
delivered so far; the caller commits it in the same Iceberg commit as the page's rows
(``CrmCursor.to_summary``), so a crash re-reads from the last commit and loses nothing.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx
import tenacity

from ingest.crm_config import CrmDialogue, CrmEntity, CrmEntityName, CrmSource
from pipelines.errors import LakeError, SourceError

logger = logging.getLogger(__name__)

_STAGE = "ingest"
_SUMMARY_PREFIX = "steward.crm.cursor."
_SUMMARY_VERSION = "1"
# A server that hands back the same next_cursor over and over never finishes the export; a
# repeated page or two is a glitch to tolerate, more is a loop to stop.
_MAX_SAME_CURSOR = 3
# Replays are recognised among the records of the last pages delivered. A repeat of an older
# page is delivered again (duplicates are harmless downstream, losses are not), which keeps
# memory bounded on a multi-million-record first load.
_RECENT_PAGES = 16

Key = str | int
_KeyOrder = tuple[int, int | str]


def _key_order(key: Key) -> _KeyOrder:
    # Integer keys order numerically, string keys by code point (UTF-8 byte order), like the
    # server's keyset order; the tag keeps a mixed-type export from raising TypeError.
    return (0, key) if isinstance(key, int) else (1, key)


def parse_time(value: str) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime (no offset means UTC)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """The UTC ISO-8601 form sent as ``updated_since`` and stored in the cursor."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    ``None`` when the header is missing or unreadable (the caller backs off exponentially);
    a date in the past means 0.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - now).total_seconds())
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class CrmCursor:
    """Where an entity's incremental read stands: everything at or before
    ``(updated_since, last_key)`` has been delivered.

    ``updated_since`` is the high-water mark of ``updated`` over the delivered records;
    ``last_key`` is the largest key delivered at exactly that timestamp (the tie-breaker), or
    ``None`` when nothing at that timestamp was delivered yet (a hand-made starting point).
    """

    entity: str
    updated_since: datetime | None = None
    last_key: Key | None = None

    def to_summary(self) -> dict[str, str]:
        """The cursor as Iceberg snapshot-summary properties (flat strings, namespaced)."""
        return {
            f"{_SUMMARY_PREFIX}version": _SUMMARY_VERSION,
            f"{_SUMMARY_PREFIX}entity": self.entity,
            f"{_SUMMARY_PREFIX}updated-since": (
                format_time(self.updated_since) if self.updated_since else ""
            ),
            # JSON keeps an integer key an integer, so the tie-breaker orders it numerically.
            f"{_SUMMARY_PREFIX}last-key": json.dumps(self.last_key, ensure_ascii=False),
        }

    @classmethod
    def from_summary(cls, summary: Mapping[str, str]) -> CrmCursor | None:
        """The cursor stored by ``to_summary``; ``None`` if the summary carries none."""
        entity = summary.get(f"{_SUMMARY_PREFIX}entity")
        if entity is None:
            return None

        def bad(name: str, reason: str) -> LakeError:
            value = summary.get(f"{_SUMMARY_PREFIX}{name}")
            return LakeError(
                f"snapshot summary has a malformed CRM cursor: {_SUMMARY_PREFIX}{name}="
                f"{value!r}: {reason}",
                stage=_STAGE,
            )

        version = summary.get(f"{_SUMMARY_PREFIX}version")
        if version != _SUMMARY_VERSION:
            raise bad("version", f"expected {_SUMMARY_VERSION}")
        since_text = summary.get(f"{_SUMMARY_PREFIX}updated-since", "")
        try:
            since = parse_time(since_text) if since_text else None
        except ValueError:
            raise bad("updated-since", "not an ISO-8601 timestamp") from None
        try:
            last_key = json.loads(summary.get(f"{_SUMMARY_PREFIX}last-key", "null"))
        except ValueError:
            raise bad("last-key", "not JSON") from None
        if isinstance(last_key, bool) or not isinstance(last_key, str | int | None):
            raise bad("last-key", "expected a string, an integer or null")
        return cls(entity=entity, updated_since=since, last_key=last_key)


@dataclass(frozen=True)
class CrmPage:
    """One page of an export as delivered: new records and the cursor to commit with them.

    ``records`` may be empty (a page the server repeated); ``duplicates`` counts the records
    dropped because this run, or the committed cursor, already covers them.
    """

    entity: str
    number: int
    records: list[dict[str, Any]]
    cursor: CrmCursor
    duplicates: int = 0


def flatten_dialogue(record: Mapping[str, Any], dialogue: CrmDialogue) -> dict[str, Any]:
    """Replace the list of turns with ``<field>_text`` and ``<field>_json``.

    The text holds one ``speaker: text`` line per turn (what the knowledge base indexes); a
    turn in an unexpected shape is kept as its JSON so no words are lost, and the raw turns
    stay in ``<field>_json`` as they came.
    """
    out = {name: value for name, value in record.items() if name != dialogue.field}
    turns = record.get(dialogue.field)
    if turns is None:
        out[f"{dialogue.field}_text"] = None
        out[f"{dialogue.field}_json"] = None
        return out
    raw = json.dumps(turns, ensure_ascii=False, separators=(",", ":"))
    if isinstance(turns, str):
        text = turns
    elif isinstance(turns, list):
        text = "\n".join(_turn_line(turn, dialogue) for turn in turns)
    else:
        text = raw
    out[f"{dialogue.field}_text"] = text
    out[f"{dialogue.field}_json"] = raw
    return out


def _turn_line(turn: object, dialogue: CrmDialogue) -> str:
    if isinstance(turn, str):
        return turn
    if isinstance(turn, dict) and isinstance(turn.get(dialogue.text), str):
        speaker = turn.get(dialogue.speaker)
        return f"{speaker}: {turn[dialogue.text]}" if speaker else turn[dialogue.text]
    return json.dumps(turn, ensure_ascii=False, separators=(",", ":"))


class _Retryable(Exception):
    """A failure another attempt may not repeat; ``retry_after`` comes from a 429."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Pacer:
    """Spaces request starts at least ``1 / requests_per_second`` apart."""

    def __init__(self, requests_per_second: float | None):
        self._interval = 1.0 / requests_per_second if requests_per_second else 0.0
        self._next = 0.0

    def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
            now = self._next
        self._next = now + self._interval


@dataclass
class _Delivered:
    """What this run has delivered, to drop replays and to advance the cursor.

    ``committed`` is the cursor the run started from; ``floor`` is what the read skips as
    already delivered (the committed cursor, or the start of the look-back window).
    """

    committed: CrmCursor
    floor: CrmCursor
    high: tuple[datetime, _KeyOrder] | None = None
    high_key: Key | None = None
    recent: deque[set[tuple[_KeyOrder, datetime]]] = field(
        default_factory=lambda: deque(maxlen=_RECENT_PAGES)
    )

    def before_floor(self, updated: datetime, key: Key) -> bool:
        since = self.floor.updated_since
        if since is None or updated > since:
            return False
        return updated < since or _key_order(key) <= _key_order_or_low(self.floor.last_key)

    def seen(self, mark: tuple[_KeyOrder, datetime]) -> bool:
        return any(mark in page for page in self.recent)

    def out_of_order(self, updated: datetime, key: Key) -> bool:
        return self.high is not None and (updated, _key_order(key)) <= self.high

    def add_page(self, positions: list[tuple[datetime, Key]]) -> None:
        self.recent.append({(_key_order(key), updated) for updated, key in positions})
        for updated, key in positions:
            position = (updated, _key_order(key))
            if self.high is None or position > self.high:
                self.high, self.high_key = position, key

    def cursor(self) -> CrmCursor:
        """The committed cursor moved to the highest position delivered, never backwards
        (a look-back window re-delivers records behind it)."""
        since = self.committed.updated_since
        if self.high is None or (
            since is not None and (since, _key_order_or_low(self.committed.last_key)) >= self.high
        ):
            return self.committed
        return CrmCursor(self.committed.entity, updated_since=self.high[0], last_key=self.high_key)


def _key_order_or_low(key: Key | None) -> _KeyOrder:
    # A cursor without a tie-breaker sits before every key at its timestamp.
    return (-1, 0) if key is None else _key_order(key)


class CrmClient:
    """Reads the entities of one CRM source; use as a context manager (it holds a connection
    pool). Reads the token from ``token_env`` when opened (ConfigError when unset)."""

    def __init__(self, source_name: str, source: CrmSource):
        self.source_name = source_name
        self.source = source
        self._token = source.token(source_name)
        timeouts = source.timeouts
        self._http = httpx.Client(
            base_url=source.base_url,
            headers={
                "Authorization": f"Bearer {self._token.get_secret_value()}",
                "Accept": "application/json",
                "User-Agent": "steward-crm",
            },
            timeout=httpx.Timeout(
                connect=timeouts.connect,
                read=timeouts.read,
                write=timeouts.write,
                pool=timeouts.pool,
            ),
            # A redirect could carry the bearer token to another host; refuse it instead.
            follow_redirects=False,
        )
        self._pacer = _Pacer(source.rate_limit.requests_per_second)
        retry = source.retry
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=retry.initial_s,
            max=retry.max_s,
            exp_base=retry.exp_base,
            jitter=retry.jitter_s,
        )
        self._retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(retry.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def __enter__(self) -> CrmClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def pages(self, entity: CrmEntityName, cursor: CrmCursor | None = None) -> Iterator[CrmPage]:
        """Every page of ``entity`` changed at or after ``cursor`` (from the start when None).

        Each yielded page carries the cursor to commit with its records. With
        ``lookback_s > 0`` the read starts that far before the cursor and re-delivers that
        window (late commits), otherwise it starts at the cursor and skips what it covers.
        An unconfigured entity (ConfigError) or a cursor of another entity (ValueError) fails
        here; while iterating, SourceError (transient or terminal) names URL, page and reason.
        """
        config = self.source.entity(entity)
        start = cursor or CrmCursor(entity)
        if start.entity != entity:
            raise ValueError(f"cursor is for entity {start.entity!r}, not {entity!r}")
        return self._pages(entity, config, start)

    def _pages(self, entity: str, config: CrmEntity, start: CrmCursor) -> Iterator[CrmPage]:
        since = start.updated_since
        lookback = timedelta(seconds=self.source.lookback_s)
        floor = start
        if since is not None and lookback:
            since -= lookback
            floor = CrmCursor(entity, updated_since=since)
        delivered = _Delivered(committed=start, floor=floor)
        params: dict[str, str] = {"page_size": str(config.page_size)}
        if since is not None:
            params["updated_since"] = format_time(since)
        requested: Counter[str] = Counter()
        token: str | None = None
        number = 0
        while True:
            number += 1
            if token is not None:
                requested[token] += 1
                if requested[token] > _MAX_SAME_CURSOR:
                    raise SourceError(
                        f"{self._where(entity, config, params, token, number)}: the server"
                        f" returned the same next_cursor {requested[token]} times; the export"
                        " does not advance",
                        stage=_STAGE,
                    )
            request_params = {**params, "cursor": token} if token is not None else params
            data, token = self._get_page(entity, config, request_params, number)
            records, duplicates = self._deliver(
                entity, config, data, number, delivered, request_params
            )
            yield CrmPage(entity, number, records, delivered.cursor(), duplicates=duplicates)
            if token is None:
                return

    def _deliver(
        self,
        entity: str,
        config: CrmEntity,
        data: list[dict[str, Any]],
        number: int,
        delivered: _Delivered,
        params: Mapping[str, str],
    ) -> tuple[list[dict[str, Any]], int]:
        records: list[dict[str, Any]] = []
        positions: list[tuple[datetime, Key]] = []
        duplicates = 0
        out_of_order = 0
        on_page: set[tuple[_KeyOrder, datetime]] = set()
        for index, record in enumerate(data):
            updated, key = self._position(entity, config, record, number, index, params)
            mark = (_key_order(key), updated)
            if mark in on_page or delivered.before_floor(updated, key) or delivered.seen(mark):
                duplicates += 1
                continue
            if delivered.out_of_order(updated, key):
                out_of_order += 1
            on_page.add(mark)
            positions.append((updated, key))
            records.append(flatten_dialogue(record, config.dialogue) if config.dialogue else record)
        if out_of_order:
            # Delivered anyway (nothing is lost in this run), but a crash between such pages
            # could skip records on resume: the source needs a look-back.
            logger.warning(
                "source %s, CRM %s page %d: %d record(s) out of (updated, key) order;"
                " set lookback_s to cover the disorder",
                self.source_name,
                entity,
                number,
                out_of_order,
            )
        delivered.add_page(positions)
        return records, duplicates

    def _position(
        self,
        entity: str,
        config: CrmEntity,
        record: dict[str, Any],
        number: int,
        index: int,
        params: Mapping[str, str],
    ) -> tuple[datetime, Key]:
        key = record.get(config.key)
        updated = record.get(config.updated)
        reason = None
        if isinstance(key, bool) or not isinstance(key, str | int):
            reason = f"key field {config.key!r} is {key!r}, not a string or integer"
        elif not isinstance(updated, str):
            reason = f"updated field {config.updated!r} is {updated!r}, not a timestamp"
        else:
            try:
                return parse_time(updated), key
            except ValueError:
                reason = f"updated field {config.updated!r} is {updated!r}, not ISO-8601"
        where = self._where(entity, config, params, params.get("cursor"), number)
        raise SourceError(f"{where}, record {index}: {reason}", stage=_STAGE)

    def _where(
        self,
        entity: str,
        config: CrmEntity,
        params: Mapping[str, str],
        token: str | None,
        number: int,
    ) -> str:
        query = {**params, "cursor": token} if token is not None else dict(params)
        url = self._http.build_request("GET", config.path, params=query).url
        return f"source {self.source_name}, CRM {entity}: GET {url} (page {number})"

    def _get_page(
        self, entity: str, config: CrmEntity, params: Mapping[str, str], number: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        where = self._where(entity, config, params, params.get("cursor"), number)
        try:
            body = self._retrying(self._get_once, config.path, params, where)
        except _Retryable as exc:
            attempts = self.source.retry.attempts
            raise SourceError(
                self._redact(f"{where}: {exc.reason} (gave up after {attempts} attempt(s))"),
                transient=True,
                stage=_STAGE,
            ) from None
        data = body.get("data") if isinstance(body, dict) else None
        token = body.get("next_cursor") if isinstance(body, dict) else None
        if not isinstance(data, list) or not isinstance(token, str | None):
            raise SourceError(
                f"{where}: the response is not an export page"
                ' {"data": [...], "next_cursor": "..." | null}',
                stage=_STAGE,
            )
        for index, record in enumerate(data):
            if not isinstance(record, dict):
                raise SourceError(
                    f"{where}, record {index}: a {type(record).__name__}, not a JSON object",
                    stage=_STAGE,
                )
        return data, token

    def _get_once(self, path: str, params: Mapping[str, str], where: str) -> Any:
        self._pacer.wait()
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            # Includes a body cut off mid-transfer (RemoteProtocolError).
            raise _Retryable(f"connection failed ({type(exc).__name__}: {exc})") from None
        status = response.status_code
        label = f"HTTP {status} {response.reason_phrase}".rstrip()
        if status in (429, 503):
            wait = retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC))
            limit = self.source.retry.max_retry_after_s
            if wait is not None and wait > limit:
                raise SourceError(
                    f"{where}: {label}: the server asks to wait {wait:.0f} s, more than"
                    f" retry.max_retry_after_s ({limit:g} s); retry the run later",
                    transient=True,
                    stage=_STAGE,
                )
            raise _Retryable(label, retry_after=wait)
        if status == 408 or status >= 500:
            raise _Retryable(label)
        if status in (401, 403):
            raise SourceError(
                f"{where}: {label}: the server refused the token from ${self.source.token_env}",
                stage=_STAGE,
            )
        if 300 <= status < 400:
            location = response.headers.get("Location", "?").split("?", 1)[0]
            raise SourceError(
                f"{where}: {label}: redirected to {location}; set base_url to the final"
                " address (redirects are not followed, they could carry the token elsewhere)",
                stage=_STAGE,
            )
        if status != 200:
            snippet = self._redact(response.text[:200])
            raise SourceError(f"{where}: {label}: {snippet}", stage=_STAGE)
        try:
            return response.json()
        except json.JSONDecodeError as exc:
            raise _Retryable(
                f"invalid JSON, truncated or corrupt ({exc.msg} at byte {exc.pos}"
                f" of {len(response.content)})"
            ) from None
        except UnicodeDecodeError as exc:
            raise _Retryable(
                f"invalid JSON, not UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return error.retry_after
        return float(self._backoff(state))

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        reason = error.reason if isinstance(error, _Retryable) else repr(error)
        where = state.args[2] if len(state.args) > 2 else "?"
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s: %s; attempt %d of %d, next in %.2f s",
            where,
            self._redact(reason),
            state.attempt_number,
            self.source.retry.attempts,
            wait,
        )

    def _redact(self, text: str) -> str:
        # Belt and braces: the token travels only in a header, but a server or proxy may echo
        # it back in a body or an error message.
        return text.replace(self._token.get_secret_value(), "***")
