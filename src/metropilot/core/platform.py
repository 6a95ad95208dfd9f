"""The running platform: settings, database, bus and clock, plus room services by type.

One ``Platform`` per process, built by the web app or a CLI command and handed to the rooms. Rooms
register their own long-lived services (e.g. the territory index) with ``provide`` and fetch them with
``need``, so core never imports a room.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from metropilot.core.bus import PENDING_EVENTS, InProcessBus
from metropilot.core.clock import Clock, SystemClock
from metropilot.core.db import Database
from metropilot.core.settings import Settings

T = TypeVar("T")


@dataclass
class Platform:
    settings: Settings
    db: Database
    bus: InProcessBus
    clock: Clock = field(default_factory=SystemClock)
    ready: bool = False
    _services: dict[type[Any], Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> Platform:
        clock = clock or SystemClock()
        return cls(
            settings=settings,
            db=Database(settings.effective_database_url),
            bus=InProcessBus(clock),
            clock=clock,
        )

    @cached_property
    def signing_key(self) -> str:
        return self.settings.signing_key()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction whose bus events (see ``core.bus.emit``) go out only once it commits."""
        with self.db.write() as session:
            yield session
        events: list[tuple[str, dict[str, Any]]] = session.info.pop(PENDING_EVENTS, [])
        for subject, data in events:
            self.bus.publish(subject, data)

    def provide(self, service: T, as_type: type[T] | None = None) -> T:
        self._services[as_type or type(service)] = service
        return service

    def need(self, service_type: type[T]) -> T:
        try:
            service: T = self._services[service_type]
        except KeyError:
            raise LookupError(f"{service_type.__name__} was not provided to the platform") from None
        return service

    def close(self) -> None:
        self.db.dispose()
