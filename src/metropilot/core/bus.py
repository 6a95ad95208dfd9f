"""The event bus rooms use to react to each other without importing each other.

Subjects are dot-separated tokens, NATS style (``assets.asset.created``); a subscription pattern may use
``*`` for exactly one token and ``>`` for one or more trailing tokens. This module holds the in-process
bus of the embedded default. ``publish`` is safe from any thread (request handlers run in a thread
pool): handlers always run on the bus' event loop, one event at a time, in publication order.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog
from sqlalchemy.orm import Session

from metropilot.core.clock import Clock, SystemClock

log = structlog.get_logger(__name__)

Handler = Callable[["Event"], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Event:
    subject: str
    data: Mapping[str, Any]
    at: datetime
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


def subject_matches(pattern: str, subject: str) -> bool:
    pattern_tokens = pattern.split(".")
    subject_tokens = subject.split(".")
    for index, part in enumerate(pattern_tokens):
        if part == ">":
            return len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if part not in ("*", subject_tokens[index]):
            return False
    return len(pattern_tokens) == len(subject_tokens)


PENDING_EVENTS = "metropilot.pending_events"


def emit(session: Session, subject: str, data: dict[str, Any]) -> None:
    """Queue an event on a write session: published by ``Platform.transaction`` after the commit,
    never for a transaction that rolled back."""
    session.info.setdefault(PENDING_EVENTS, []).append((subject, data))


class EventBus(Protocol):
    def publish(self, subject: str, data: Mapping[str, Any]) -> Event: ...

    def subscribe(self, pattern: str, handler: Handler) -> Callable[[], None]: ...


@dataclass(slots=True)
class _Subscription:
    pattern: str
    handler: Handler


class InProcessBus:
    """Delivers events inside one process.

    Before ``start()`` (or with no running loop, e.g. in a CLI command) events are kept and delivered
    once the bus starts, so nothing published during start-up is lost. ``max_pending`` bounds that
    backlog; past it the oldest events are dropped and counted.
    """

    def __init__(self, clock: Clock | None = None, max_pending: int = 100_000) -> None:
        self._clock = clock or SystemClock()
        self._subscriptions: list[_Subscription] = []
        self._lock = threading.Lock()
        self._pending: deque[Event] = deque()
        self._max_pending = max_pending
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Event] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.dropped = 0
        self.delivered = 0
        self.handler_errors = 0

    def subscribe(self, pattern: str, handler: Handler) -> Callable[[], None]:
        subscription = _Subscription(pattern, handler)
        with self._lock:
            self._subscriptions.append(subscription)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscriptions.remove(subscription)

        return unsubscribe

    def publish(self, subject: str, data: Mapping[str, Any]) -> Event:
        event = Event(subject=subject, data=data, at=self._clock.now())
        loop, queue = self._loop, self._queue
        if loop is None or queue is None or loop.is_closed():
            with self._lock:
                if len(self._pending) >= self._max_pending:
                    self._pending.popleft()
                    self.dropped += 1
                self._pending.append(event)
            return event
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            queue.put_nowait(event)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, event)
        return event

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        with self._lock:
            backlog, self._pending = list(self._pending), deque()
        for event in backlog:
            self._queue.put_nowait(event)
        self._worker = asyncio.create_task(self._run(), name="metropilot-bus")

    async def stop(self) -> None:
        if self._queue is not None:
            await self.drain()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._loop = self._queue = self._worker = None

    async def drain(self) -> None:
        """Wait until every event published so far has been handled."""
        if self._queue is not None:
            # Events published from other threads are enqueued by loop callbacks: let those run first.
            await asyncio.sleep(0)
            await self._queue.join()

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            try:
                await self._deliver(event)
            finally:
                self._queue.task_done()

    async def _deliver(self, event: Event) -> None:
        with self._lock:
            handlers = [s.handler for s in self._subscriptions if subject_matches(s.pattern, event.subject)]
        for handler in handlers:
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
                self.delivered += 1
            except Exception:
                self.handler_errors += 1
                log.exception("bus handler failed", subject=event.subject, event_id=event.id)
