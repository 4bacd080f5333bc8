"""The worker's side of callbacks: claim due callbacks, attempt them a few at a time, record
what came of each, and sleep until the next is due or PostgreSQL says one was committed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import httpx

from db import callbacks as rows
from db.errors import is_unavailable
from db.pool import Pool
from service.accounts.sealing import SealError, TokenSealer, sealer_for
from service.callbacks.delivery import Attempt, Deliverer, loggable_url
from service.callbacks.fairness import Fairness, host_of
from service.callbacks.guard import Resolver, system_resolver
from service.callbacks.outbox import next_attempt
from service.logs import new_request_id, request_id
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger(__name__)

# The migration's trigger notifies this channel when a callback becomes pending.
CHANNEL = "recordings_callbacks"
# Without a notification, look for due callbacks at least this often (a lost NOTIFY, a
# listener reconnecting, a callback scheduled by another worker's retry).
MAX_IDLE_SECONDS = 2.0
# A claim holds a callback this much longer than an attempt may last, for recording its result.
LEASE_MARGIN_SECONDS = 30.0


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(seconds, 0.0))


class Dispatcher:
    """Delivers the outbox: at most ``callback_concurrency`` attempts at once per worker."""

    def __init__(
        self,
        pool: Pool,
        settings: Settings,
        metrics: Metrics,
        deliverer: Deliverer,
        sealer: TokenSealer | None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.deliverer = deliverer
        self.sealer = sealer
        self.clock = clock
        self.lease_seconds = settings.callback_timeout + LEASE_MARGIN_SECONDS
        self._wake = asyncio.Event()
        self.fairness = Fairness(
            host_limit=settings.callback_host_concurrency,
            account_limit=settings.callback_account_concurrency,
            cooldown_initial=settings.callback_retry_initial_seconds,
            cooldown_max=settings.callback_host_cooldown_max_seconds,
            slots=settings.callback_concurrency,
        )
        self._inflight: dict[int, asyncio.Task[None]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; PostgreSQL going away only pauses it."""
        if self.sealer is None:
            log.warning("RECORDINGS_SECRET_KEY is not set: status callbacks go out unsigned")
        listener = asyncio.create_task(self._listen(stop))
        delay = 0.5
        try:
            while not stop.is_set():
                try:
                    claimed = await self._claim()
                    wait = await self._idle_seconds(claimed)
                    delay = 0.5
                except Exception as exc:
                    if not is_unavailable(exc):
                        raise
                    log.warning("callbacks: PostgreSQL unavailable (%s); retrying", exc)
                    wait, delay = delay, min(delay * 2, 10.0)
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._woken(stop), wait)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self._drain()

    async def _woken(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        woken = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({stopping, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            woken.cancel()

    async def _claim(self) -> int:
        free = self.settings.callback_concurrency - len(self._inflight)
        if free <= 0:
            return 0
        # Cleared before the query: a notification that arrives during it is kept.
        self._wake.clear()
        claimed = await rows.claim_due(
            self.pool,
            limit=free,
            lease_seconds=self.lease_seconds,
            exclude=list(self._inflight),
        )
        deferred: dict[int, float] = {}
        for item in claimed:
            host, account = host_of(item.callback.url), item.callback.account_sid
            wait = self.fairness.wait_seconds(host, account)
            if wait > 0:
                deferred[item.callback.id] = wait
                continue
            self.fairness.started(host, account)
            task = asyncio.create_task(self._fair_attempt(item, host))
            self._inflight[item.callback.id] = task
            task.add_done_callback(self._done)
        if deferred:
            await rows.defer(self.pool, claimed[0].lease, deferred)
        return len(claimed)

    async def _fair_attempt(self, claimed: rows.Claimed, host: str) -> None:
        answered = True
        try:
            answered = await self.attempt(claimed)
        finally:
            self.fairness.finished(host, claimed.callback.account_sid, answered=answered)

    def _done(self, task: asyncio.Task[None]) -> None:
        for callback_id, running in list(self._inflight.items()):
            if running is task:
                del self._inflight[callback_id]
        self._wake.set()

    async def _idle_seconds(self, claimed: int) -> float:
        free = self.settings.callback_concurrency - len(self._inflight)
        if claimed and free > 0:
            return 0.0  # there may be more due right now
        if free <= 0:
            return MAX_IDLE_SECONDS  # a finished attempt wakes the loop
        due_in = await rows.seconds_to_next_due(self.pool)
        if due_in is None:
            return MAX_IDLE_SECONDS
        return min(max(due_in, 0.0), MAX_IDLE_SECONDS)

    async def _drain(self) -> None:
        """Let attempts under way finish (their results recorded) before the worker stops."""
        if not self._inflight:
            return
        _, pending = await asyncio.wait(
            list(self._inflight.values()), timeout=self.settings.callback_timeout + 5
        )
        for task in pending:
            task.cancel()
        # What was cut short is claimed again when its lease runs out: at least once.
        await asyncio.gather(*pending, return_exceptions=True)

    async def _listen(self, stop: asyncio.Event) -> None:
        """LISTEN on a connection of its own (not the pool's), reconnecting when it drops."""
        delay = 0.5
        while not stop.is_set():
            conn = None
            try:
                # A session of its own: past any transaction pooler.
                conn = await asyncpg.connect(
                    self.settings.session_database_url, timeout=self.settings.database_timeout
                )
                await conn.add_listener(CHANNEL, lambda *_: self._wake.set())
                # Anything committed while no one listened is found by the next claim.
                self._wake.set()
                delay = 0.5
                while not stop.is_set():
                    await _pause(stop, 5.0)
                    # A dead server's connection is noticed here at the latest.
                    await conn.execute("SELECT 1", timeout=self.settings.database_timeout)
            except Exception as exc:
                # Whatever ends the LISTEN, polling goes on; only the wake-up is late meanwhile.
                level = logging.DEBUG if is_unavailable(exc) else logging.WARNING
                log.log(level, "callbacks: LISTEN connection lost (%s)", exc)
                await _pause(stop, delay)
                delay = min(delay * 2, 10.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)

    def _token(self, claimed: rows.Claimed) -> str | None:
        account = claimed.callback.account_sid
        if self.sealer is None:
            return None
        if claimed.token_sealed is None:
            log.warning(
                "callback %d goes out unsigned: %s's AuthToken predates RECORDINGS_SECRET_KEY;"
                " run `recordings accounts rotate-token %s`",
                claimed.callback.id,
                account,
                account,
            )
            return None
        try:
            return self.sealer.open(account, claimed.token_sealed)
        except SealError as exc:
            log.warning(
                "callback %d goes out unsigned: %s's sealed AuthToken does not open (%s);"
                " run `recordings accounts rotate-token %s`",
                claimed.callback.id,
                account,
                exc,
                account,
            )
            return None

    async def attempt(self, claimed: rows.Claimed) -> bool:
        """One attempt at a claimed callback, logged with the ingest's request id; whether the
        receiving host answered at all (a refused URL counts as answered: the host is not to
        blame)."""
        callback = claimed.callback
        token = request_id.set(new_request_id(callback.request_id))
        try:
            try:
                attempt = await self.deliverer.send(callback, self._token(claimed))
            except Exception as exc:  # a bug must not leave the callback claimed for nothing
                log.exception("callback %d: attempt failed unexpectedly", callback.id)
                attempt = Attempt("retry", None, f"{type(exc).__name__}: {exc}"[:500], 0.0)
            outcome = await self._record(claimed, attempt)
            self.metrics.callbacks.labels(outcome).inc()
            self.metrics.callback_attempt_seconds.observe(attempt.seconds)
            if outcome == "delivered":
                delay = (self.clock() - callback.date_created).total_seconds()
                self.metrics.callback_delivery_delay.observe(max(delay, 0.0))
            level = logging.INFO if outcome == "delivered" else logging.WARNING
            log.log(
                level,
                "callback %d of %s: %s %s -> %s (%s), attempt %d in %.3f s",
                callback.id,
                callback.recording_sid,
                callback.method,
                loggable_url(callback.url),
                outcome,
                attempt.detail,
                callback.attempts,
                attempt.seconds,
                extra={
                    # On the record too, so it survives handlers that format later (elsewhere).
                    "request_id": request_id.get(),
                    "callback_id": callback.id,
                    "recording_sid": callback.recording_sid,
                    "outcome": outcome,
                    "attempt": callback.attempts,
                    "status": attempt.status_code,
                },
            )
        finally:
            request_id.reset(token)
        return attempt.status_code is not None or attempt.outcome == "refused"

    async def _record(self, claimed: rows.Claimed, attempt: Attempt) -> str:
        """Store the attempt's result, waiting out a PostgreSQL outage: a delivery that was
        made must be recorded, or it would be made again."""
        delay = 0.5
        while True:
            try:
                return await self._store(claimed, attempt)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                log.warning(
                    "callback %d: cannot record the result yet (%s)", claimed.callback.id, exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _store(self, claimed: rows.Claimed, attempt: Attempt) -> str:
        callback, lease = claimed.callback, claimed.lease
        if attempt.outcome == "delivered":
            await rows.mark_delivered(
                self.pool, callback.account_sid, callback.id, attempt.status_code or 0
            )
            return "delivered"
        if attempt.outcome in ("failed", "refused"):
            await rows.mark_failed(
                self.pool,
                callback.account_sid,
                callback.id,
                lease,
                status_code=attempt.status_code,
                error=attempt.detail,
            )
            return attempt.outcome
        at = next_attempt(
            self.clock(),
            callback.attempts,
            callback.give_up_at,
            initial=self.settings.callback_retry_initial_seconds,
            maximum=self.settings.callback_retry_max_seconds,
        )
        if at is None:
            error = f"gave up after {callback.attempts} attempts: {attempt.detail}"
            await rows.mark_failed(
                self.pool,
                callback.account_sid,
                callback.id,
                lease,
                status_code=attempt.status_code,
                error=error,
            )
            return "expired"
        await rows.reschedule(
            self.pool,
            callback.account_sid,
            callback.id,
            lease,
            at=at,
            status_code=attempt.status_code,
            error=attempt.detail,
        )
        return "retried"


async def run_callbacks(
    pool: Pool,
    settings: Settings,
    metrics: Metrics,
    stop: asyncio.Event,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver = system_resolver,
) -> None:
    """The worker's callback loop, until ``stop`` is set."""
    deliverer = Deliverer(
        allow_private=settings.webhook_allow_private,
        connect_timeout=settings.callback_connect_timeout,
        timeout=settings.callback_timeout,
        concurrency=settings.callback_concurrency,
        transport=transport,
        resolver=resolver,
    )
    try:
        dispatcher = Dispatcher(pool, settings, metrics, deliverer, sealer_for(settings.secret_key))
        await dispatcher.run(stop)
    finally:
        await deliverer.aclose()
