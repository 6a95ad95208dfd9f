"""The in-process event bus: subject patterns, ordering, threads, failures."""

from __future__ import annotations

import asyncio
import threading

import pytest

from metropilot.core.bus import Event, InProcessBus, subject_matches


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("assets.asset.created", "assets.asset.created", True),
        ("assets.asset.created", "assets.asset.updated", False),
        ("assets.*.created", "assets.asset.created", True),
        ("assets.*", "assets.asset.created", False),
        ("assets.>", "assets.asset.created", True),
        ("assets.>", "assets", False),
        (">", "anything.at.all", True),
        ("a.b", "a.b.c", False),
        ("a.b.c", "a.b", False),
    ],
)
def test_subject_patterns(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected


def test_events_published_before_start_are_delivered_in_order_after_start() -> None:
    bus = InProcessBus()
    seen: list[int] = []
    bus.subscribe("t.>", lambda event: seen.append(event.data["n"]))
    for n in range(5):
        bus.publish("t.x", {"n": n})

    async def scenario() -> None:
        await bus.start()
        bus.publish("t.y", {"n": 5})
        await bus.drain()
        await bus.stop()

    asyncio.run(scenario())
    assert seen == [0, 1, 2, 3, 4, 5]


def test_publish_from_threads_reaches_async_handlers_and_a_failing_handler_does_not_stop_others() -> None:
    bus = InProcessBus()
    received: list[str] = []

    async def good(event: Event) -> None:
        received.append(event.subject)

    def bad(event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe("x.*", bad)
    bus.subscribe("x.*", good)

    async def scenario() -> None:
        await bus.start()
        threads = [threading.Thread(target=bus.publish, args=(f"x.{i}", {})) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        await bus.drain()
        await bus.stop()

    asyncio.run(scenario())
    assert sorted(received) == sorted(f"x.{i}" for i in range(20))
    assert bus.handler_errors == 20


def test_unsubscribe_stops_delivery() -> None:
    bus = InProcessBus()
    seen: list[str] = []
    unsubscribe = bus.subscribe("a", lambda event: seen.append(event.subject))

    async def scenario() -> None:
        await bus.start()
        bus.publish("a", {})
        await bus.drain()
        unsubscribe()
        bus.publish("a", {})
        await bus.drain()
        await bus.stop()

    asyncio.run(scenario())
    assert seen == ["a"]


def test_backlog_before_start_is_bounded_and_counts_drops() -> None:
    bus = InProcessBus(max_pending=3)
    for n in range(5):
        bus.publish("a", {"n": n})
    assert bus.dropped == 2
