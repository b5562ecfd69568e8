"""The task book: every task of the market and its bids, shared by the auction and escrow pallets.

One row per task (Python lists: tasks are few — thousands per day — and change state one at a time).
Lifecycle (status): ``open`` (bidding) → ``assigned`` (cleared, payment held in escrow) → ``delivered``
→ ``completed`` (released by the requester or after the challenge window), or ``disputed`` → ``disputed_won``
(ruled for the worker: paid) / ``disputed_lost`` (ruled for the requester: refunded, worker slashed);
``assigned`` past the deadline → ``failed`` (refunded, worker slashed); ``open`` with no winner →
``refunded``; ``open`` cleared after the requester's maximum wait → ``expired`` (refunded).
Amounts are integer base units; blocks are block numbers of the finalized chain; times are seconds.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import pandas as pd

OPEN, ASSIGNED, DELIVERED, DISPUTED = "open", "assigned", "delivered", "disputed"
TERMINAL = ("completed", "failed", "refunded", "expired", "disputed_won", "disputed_lost")
#: Statuses written to ``tasks.parquet``: a task still in progress at the end of a run is ``open``.
ACTIVE = (OPEN, ASSIGNED, DELIVERED, DISPUTED)


class TaskBook:
    """Tasks (one row each) and their bids."""

    def __init__(self) -> None:
        self.requester: list[int] = []
        self.capability: list[int] = []
        self.budget: list[int] = []
        self.threshold: list[float] = []
        self.max_wait_s: list[float] = []
        self.t_created: list[float] = []
        self.t_posted: list[float] = []
        self.close_block: list[int] = []
        self.status: list[str] = []
        self.winner: list[int] = []
        self.payment: list[int] = []
        self.t_cleared: list[float] = []
        self.deadline_block: list[int] = []
        self.quality: list[float] = []
        self.delivered_block: list[int] = []
        self.t_delivered: list[float] = []
        self.t_settled: list[float] = []
        self.n_bids: list[int] = []
        self.dispute_due_block: list[int] = []
        self.bids: list[dict[int, int]] = []  # worker account -> cost (base units)
        self.open_ids: list[int] = []  # tasks in bidding, in posting order
        self.post_record: list[int] = []
        self._by_status: dict[str, set[int]] = {}  # active statuses only: the per-block hooks' work lists
        #: per timed status: tasks that entered it since the last ``due`` (keyed when ``due`` next runs, once
        #: the caller has set the key column) and a heap of (key, task) over the tasks that entered it
        self._entered: dict[str, list[int]] = {ASSIGNED: [], DELIVERED: []}
        self._due_heap: dict[str, list[tuple[int, int]]] = {ASSIGNED: [], DELIVERED: []}

    def __len__(self) -> int:
        return len(self.requester)

    def add(self, requester: int, capability: int, budget: int, threshold: float, max_wait_s: float,
            t_created: float, t_posted: float, close_block: int, post_record: int = -1) -> int:
        """A new open task; returns its id (dense, from 0). ``post_record``: the call record of its first
        ``post_task`` submission."""
        k = len(self.requester)
        self.post_record.append(post_record)
        self.requester.append(requester)
        self.capability.append(capability)
        self.budget.append(budget)
        self.threshold.append(threshold)
        self.max_wait_s.append(max_wait_s)
        self.t_created.append(t_created)
        self.t_posted.append(t_posted)
        self.close_block.append(close_block)
        self.status.append(OPEN)
        self._by_status.setdefault(OPEN, set()).add(k)
        self.winner.append(-1)
        self.payment.append(0)
        self.t_cleared.append(math.nan)
        self.deadline_block.append(-1)
        self.quality.append(math.nan)
        self.delivered_block.append(-1)
        self.t_delivered.append(math.nan)
        self.t_settled.append(math.nan)
        self.n_bids.append(0)
        self.dispute_due_block.append(-1)
        self.bids.append({})
        self.open_ids.append(k)
        return k

    def exists(self, task: int) -> bool:
        return 0 <= task < len(self.requester)

    def set_status(self, task: int, status: str) -> None:
        """Move ``task`` to ``status`` (keeps the per-status index of active tasks)."""
        old = self.status[task]
        if old in self._by_status:
            self._by_status[old].discard(task)
        self.status[task] = status
        if status in ACTIVE:
            self._by_status.setdefault(status, set()).add(task)
            entered = self._entered.get(status)
            if entered is not None:
                entered.append(task)

    def in_status(self, status: str) -> list[int]:
        """Ids of the tasks currently in an active ``status``, ascending."""
        return sorted(self._by_status.get(status, ()))

    def due(self, status: str, key: list[int], limit: int) -> list[int]:
        """Ids of the tasks currently in ``status`` (``assigned`` or ``delivered``) whose ``key`` column (e.g.
        ``deadline_block``) is ≤ ``limit``, ascending — ``[k for k in in_status(status) if key[k] <= limit]``
        for a key that is set when a task enters the status and not changed while it stays there, without
        a pass over all of them: a heap by key, entries of tasks that left the status dropped as they come up.
        Each task is returned once: the caller moves it out of the status (the escrow settles it)."""
        heap = self._due_heap[status]
        entered = self._entered[status]
        if entered:
            for k in entered:
                heapq.heappush(heap, (key[k], k))
            entered.clear()
        if not heap or heap[0][0] > limit:
            return []
        now = self.status
        out = set()
        while heap and heap[0][0] <= limit:
            k = heapq.heappop(heap)[1]
            if now[k] == status:
                out.add(k)
        return sorted(out)

    def frame(self) -> pd.DataFrame:
        """``tasks.parquet``: the contract's columns plus capability, threshold, bids and lifecycle times."""
        status = ["open" if s in ACTIVE else s for s in self.status]
        return pd.DataFrame({
            "task_id": np.arange(len(self), dtype=np.int64),
            "requester": np.asarray(self.requester, dtype=np.int64),
            "t_created": np.asarray(self.t_created, dtype=np.float64),
            "t_cleared": np.asarray(self.t_cleared, dtype=np.float64),
            "winner": np.asarray(self.winner, dtype=np.int64),
            "payment": np.asarray(self.payment, dtype=np.int64),
            "budget": np.asarray(self.budget, dtype=np.int64),
            "status": pd.Series(status, dtype=object),
            "quality": np.asarray(self.quality, dtype=np.float64),
            "t_settled": np.asarray(self.t_settled, dtype=np.float64),
            "capability": np.asarray(self.capability, dtype=np.int64),
            "threshold": np.asarray(self.threshold, dtype=np.float64),
            "n_bids": np.asarray(self.n_bids, dtype=np.int64),
            "t_posted": np.asarray(self.t_posted, dtype=np.float64),
            "t_delivered": np.asarray(self.t_delivered, dtype=np.float64),
            "stage": pd.Series(list(self.status), dtype=object),
            "post_record": np.asarray(self.post_record, dtype=np.int64),
        })
