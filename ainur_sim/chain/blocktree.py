"""The block tree: every authored block (orphans included) as columns, plus fork-choice keys.

Block 0 is genesis. Fork choice (BABE): the chain with more primary blocks wins, then the longer one;
an exact tie keeps the block imported first (research/substrate.md §1.4). ``babe_weight`` is the number of
primary blocks on the path from genesis; for Aura every block has weight 0, so fork choice is longest chain.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit

from ainur_sim.record import ColumnStore

BLOCK_SCHEMA: dict[str, str] = {
    "number": "int64",
    "block_id": "int64",
    "parent_id": "int64",
    "slot": "int64",
    "author": "int64",
    "primary": "bool",
    "t_authored": "float64",
    "t_finalized": "float64",
    "canonical": "bool",
    "n_tx": "int64",
    "weight_s": "float64",
    "length_bytes": "int64",
    "fee_multiplier": "float64",
    "babe_weight": "int64",
    "normal_weight_s": "float64",
    "fees": "int64",
    "tips": "int64",
}


@njit(cache=True)
def _ancestor_at(ids: np.ndarray, height: int, parent: np.ndarray, number: np.ndarray) -> np.ndarray:
    """For each block in ``ids``, its ancestor (or itself) at ``height``; -1 where the block is lower."""
    out = np.empty(ids.shape[0], np.int64)
    for i in range(ids.shape[0]):
        x = ids[i]
        if number[x] < height:
            out[i] = -1
            continue
        while number[x] > height:
            x = parent[x]
        out[i] = x
    return out


@njit(cache=True)
def _not_descending(ids: np.ndarray, block: int, parent: np.ndarray, number: np.ndarray) -> np.ndarray:
    """Positions ``i`` where ``ids[i]`` is neither ``block`` nor a descendant of it."""
    height = number[block]
    out = np.empty(ids.shape[0], np.int64)
    k = 0
    for i in range(ids.shape[0]):
        x = ids[i]
        while number[x] > height:
            x = parent[x]
        if x != block:
            out[k] = i
            k += 1
    return out[:k]


@njit(cache=True)
def _unfinalized_chain(block: int, parent: np.ndarray, t_finalized: np.ndarray) -> np.ndarray:
    """``block`` and its ancestors up to (without) the first finalized one or genesis, newest first."""
    n = 0
    b = block
    while b > 0 and np.isnan(t_finalized[b]):
        n += 1
        b = parent[b]
    out = np.empty(n, np.int64)
    b = block
    for i in range(n):
        out[i] = b
        b = parent[b]
    return out


class BlockTree:
    """Append-only store of blocks with O(1) parent/number/weight lookups."""

    def __init__(self, capacity: int = 4096) -> None:
        self.store = ColumnStore(BLOCK_SCHEMA, capacity, fill={"t_finalized": np.nan, "fee_multiplier": 1.0})
        self.store.append(number=0, block_id=0, parent_id=-1, slot=-1, author=-1, primary=False,
                          t_authored=0.0, t_finalized=0.0, babe_weight=0)

    def __len__(self) -> int:
        return len(self.store)

    def add(self, parent: int, slot: int, author: int, primary: bool, t_authored: float,
            n_tx: int, weight_s: float, length_bytes: int, fee_multiplier: float = 1.0,
            normal_weight_s: float = 0.0, fees: int = 0, tips: int = 0) -> int:
        """Append a block on ``parent``; returns its id (= row index)."""
        cols = self.store.cols
        bid = self.store.n
        self.store.append(
            number=cols["number"][parent] + 1, block_id=bid, parent_id=parent, slot=slot, author=author,
            primary=primary, t_authored=t_authored, n_tx=n_tx, weight_s=weight_s,
            length_bytes=length_bytes, fee_multiplier=fee_multiplier,
            babe_weight=cols["babe_weight"][parent] + int(primary), normal_weight_s=normal_weight_s,
            fees=fees, tips=tips,
        )
        return bid

    def choice_key(self, ids: np.ndarray | int) -> np.ndarray:
        """Fork-choice key: larger is better (primary count first, then height)."""
        c = self.store.cols
        return c["babe_weight"][ids] * (1 << 32) + c["number"][ids]

    def ancestor_at(self, ids: np.ndarray, height: int) -> np.ndarray:
        """For each block in ``ids``, its ancestor (or itself) at ``height``; -1 where the block is lower."""
        cols = self.store.cols
        ids = np.asarray(ids, dtype=np.int64)
        return _ancestor_at(ids.ravel(), int(height), cols["parent_id"], cols["number"]).reshape(ids.shape)

    def descends_from(self, ids: np.ndarray, block: int) -> np.ndarray:
        """Mask: which of ``ids`` are ``block`` or its descendants."""
        return self.ancestor_at(ids, int(self.store.cols["number"][block])) == block

    def not_descending(self, ids: np.ndarray, block: int) -> np.ndarray:
        """Positions in the 1-D ``ids`` of blocks that are not ``block`` or its descendants
        (``np.flatnonzero(~descends_from(ids, block))`` in one pass)."""
        cols = self.store.cols
        return _not_descending(np.asarray(ids, dtype=np.int64), int(block), cols["parent_id"], cols["number"])

    def unfinalized_chain(self, block: int) -> np.ndarray:
        """``block`` and its not yet finalized ancestors (genesis excluded), newest first (int64 ids): the
        blocks whose transactions a child of ``block`` must not include again."""
        cols = self.store.cols
        return _unfinalized_chain(int(block), cols["parent_id"], cols["t_finalized"])

    def best_descendant(self, block: int) -> int:
        """The best block (fork choice; ties: earliest authored) among ``block`` and its descendants."""
        cols = self.store.cols
        n = len(self)
        cand = np.flatnonzero(cols["number"][:n] >= cols["number"][block])
        cand = cand[self.descends_from(cand, block)]
        key = self.choice_key(cand)
        best = cand[key == key.max()]
        return int(best[np.argmin(cols["t_authored"][best])])

    def mark_finalized(self, block: int, t: float) -> np.ndarray:
        """Finalize ``block`` and its not yet finalized ancestors at time ``t``; returns their ids (oldest first)."""
        t_finalized = self.store.cols["t_finalized"]
        parent = self.store.cols["parent_id"]
        newly = []
        b = int(block)
        while b >= 0 and math.isnan(t_finalized[b]):
            newly.append(b)
            b = int(parent[b])
        ids = np.array(newly[::-1], dtype=np.int64)
        t_finalized[ids] = t
        return ids

    def ancestry(self, head: int) -> np.ndarray:
        """Ids from genesis to ``head`` inclusive."""
        parent = self.store.cols["parent_id"]
        out = []
        b = head
        while b >= 0:
            out.append(b)
            b = parent[b]
        return np.array(out[::-1], dtype=np.int64)

    def mark_canonical(self, head: int) -> None:
        """Set ``canonical`` true exactly on the chain ending in ``head``."""
        canon = self.store["canonical"]
        canon[:] = False
        canon[self.ancestry(head)] = True

    def best_block(self) -> int:
        """The best block over the whole tree (ties: earliest authored, then lowest id)."""
        key = self.choice_key(np.arange(len(self)))
        best = np.flatnonzero(key == key.max())
        t = self.store["t_authored"][best]
        return int(best[np.argmin(t)])

    def to_frame(self) -> pd.DataFrame:
        """All authored blocks (genesis excluded), columns as in the run-dir contract plus ``babe_weight``."""
        return self.store.to_frame().iloc[1:].reset_index(drop=True)


def finality_is_safe(blocks: pd.DataFrame) -> bool:
    """True when the finalized blocks form one chain: one per height, each the parent of the next."""
    fin = blocks.loc[blocks["t_finalized"].notna()].sort_values("number")
    if fin.empty:
        return True
    numbers = fin["number"].to_numpy()
    if len(np.unique(numbers)) != len(numbers) or (np.diff(numbers) != 1).any():
        return False
    return bool((fin["parent_id"].to_numpy()[1:] == fin["block_id"].to_numpy()[:-1]).all())


def fork_stats(blocks: pd.DataFrame) -> dict[str, float | int | None]:
    """Fork measurements from a blocks table.

    - ``orphan_share``: share of authored blocks not on the canonical chain;
    - ``same_slot_forks``: siblings authored in the same slot (leader collisions: several primaries, or a
      primary and the secondary author) — these exist whatever the latency;
    - ``propagation_forks``: blocks whose parent already had a child from an earlier slot, i.e. the author
      had not yet seen that child when it built — forks caused by propagation delay.
    """
    if blocks.empty:
        return {"orphan_share": None, "same_slot_forks": 0, "propagation_forks": 0}
    b = blocks[["block_id", "parent_id", "slot", "canonical"]]
    first_child_slot = b.groupby("parent_id")["slot"].transform("min")
    same_slot = b.duplicated(["parent_id", "slot"], keep="first")
    propagation = b["slot"] > first_child_slot
    return {
        "orphan_share": float((~b["canonical"]).mean()),
        "same_slot_forks": int(same_slot.sum()),
        "propagation_forks": int(propagation.sum()),
    }
