"""Runtime events: what pallets announce when they execute, and who listens.

Pallets emit events while the runtime executes a finalized block (``emit("TaskCleared", task=…)``);
subscribers (agents, through their RPC client) are called at once, at the simulated time of the
finalization, and react by submitting new calls. Events are counted per kind; nothing is kept per event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any]], None]


class EventBus:
    """Publish/subscribe by event kind."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Handler]] = {}
        self.counts: Counter[str] = Counter()

    def subscribe(self, kind: str, handler: Handler) -> None:
        """Call ``handler(fields)`` for every event of ``kind``."""
        self._subs.setdefault(kind, []).append(handler)

    def emit(self, kind: str, **fields: Any) -> None:
        """Announce an event to its subscribers (in subscription order)."""
        self.counts[kind] += 1
        for handler in self._subs.get(kind, ()):
            handler(fields)
