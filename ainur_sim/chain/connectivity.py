"""Network partitions and latency degradation: who can hear whom, and how slowly, at a given time.

Two kinds of time window (seconds of simulated time, half-open ``[start_s, end_s)``):

* ``Partition``: every validator has a group label; during the window validators in different groups
  exchange no messages. Several partitions may overlap in time; two validators are then connected only
  if they share a group in every active partition (``connected``).
* ``Degradation``: message latency is multiplied by ``factor`` on every link that touches an affected
  validator, as sender *or* receiver (a slow node is slow both ways); ``validators=None`` affects all links.
  Factors of overlapping windows multiply.

Block delivery (``adjust_arrivals``) is decided by the conditions **at the send time**: a block sent while
the author is cut off from ``j`` reaches ``j`` at ``max(arrival, end + base_latency[j])`` where ``end`` is
the latest end among the active partitions that separate them; a partition that starts while the block
is in flight does not stop it, and one that heals earlier than the block would have arrived changes
nothing. Relaying through a third validator in another group is not modelled (path latencies are static).
GRANDPA votes use ``connected`` / ``vote_delay_matrix`` at the vote time: a vote counts only within the
voter's component.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ainur_sim.chain.regions import REGIONS, region_index


@dataclass(frozen=True)
class Partition:
    """Validators in different ``group`` labels cannot exchange messages during ``[start_s, end_s)``."""

    start_s: float
    end_s: float
    group: np.ndarray  # one integer label per validator

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


@dataclass(frozen=True)
class Degradation:
    """Latency on links touching ``validators`` (all links when ``None``) is multiplied by ``factor``."""

    start_s: float
    end_s: float
    factor: float
    validators: np.ndarray | None = None

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


@dataclass
class Connectivity:
    """Partitions and degradation windows over ``n`` validators."""

    n: int
    partitions: list[Partition] = field(default_factory=list)
    degradations: list[Degradation] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts, degs = list(self.partitions), list(self.degradations)
        self.partitions, self.degradations = [], []
        for p in parts:
            self.add_partition(p.start_s, p.end_s, p.group)
        for d in degs:
            self.add_degradation(d.start_s, d.end_s, d.factor, d.validators)

    # --- building --------------------------------------------------------------------------------------
    def add_partition(self, start_s: float, end_s: float, group: np.ndarray) -> Partition:
        """Split the network by ``group`` (one label per validator) during ``[start_s, end_s)``."""
        g = np.asarray(group, dtype=np.int64)
        if g.shape != (self.n,):
            raise ValueError(f"group must have one label per validator ({self.n}), got shape {g.shape}")
        if not end_s > start_s:
            raise ValueError(f"partition needs end_s > start_s, got [{start_s}, {end_s})")
        g = g.copy()
        g.setflags(write=False)
        p = Partition(float(start_s), float(end_s), g)
        self.partitions.append(p)
        return p

    def add_degradation(
        self, start_s: float, end_s: float, factor: float, validators: np.ndarray | None = None
    ) -> Degradation:
        """Multiply latency by ``factor`` (> 0) on links touching ``validators`` (None: all) in ``[start_s, end_s)``."""
        if not factor > 0:
            raise ValueError(f"degradation factor must be > 0, got {factor}")
        if not end_s > start_s:
            raise ValueError(f"degradation needs end_s > start_s, got [{start_s}, {end_s})")
        vs = None
        if validators is not None:
            vs = np.unique(np.asarray(validators, dtype=np.int64))
            if vs.size and (vs[0] < 0 or vs[-1] >= self.n):
                raise ValueError(f"validator index out of range 0..{self.n - 1}")
            vs.setflags(write=False)
        d = Degradation(float(start_s), float(end_s), float(factor), vs)
        self.degradations.append(d)
        return d

    # --- queries ---------------------------------------------------------------------------------------
    def _affected(self, d: Degradation) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        if d.validators is None:
            mask[:] = True
        else:
            mask[d.validators] = True
        return mask

    def latency_factor(self, t: float, senders: np.ndarray, receivers: np.ndarray) -> np.ndarray:
        """Latency multiplier per (sender, receiver) pair at ``t``: product of the active windows touching either."""
        s = np.asarray(senders, dtype=np.int64)
        r = np.asarray(receivers, dtype=np.int64)
        out = np.ones((s.shape[0], r.shape[0]))
        for d in self.degradations:
            if d.active(t):
                hit = self._affected(d)
                out[hit[s][:, None] | hit[r][None, :]] *= d.factor
        return out

    def separated(self, t: float, senders: np.ndarray, receivers: np.ndarray) -> np.ndarray:
        """Boolean (sender, receiver) matrix: True where some partition active at ``t`` splits the pair."""
        s = np.asarray(senders, dtype=np.int64)
        r = np.asarray(receivers, dtype=np.int64)
        out = np.zeros((s.shape[0], r.shape[0]), dtype=bool)
        for p in self.partitions:
            if p.active(t):
                out |= p.group[s][:, None] != p.group[r][None, :]
        return out

    def adjust_arrivals(
        self, author: int, t_sent: float, arrival: np.ndarray, base_latency: np.ndarray
    ) -> np.ndarray:
        """Arrival times (s) of a block sent by ``author`` at ``t_sent``, after degradation and partitions.

        ``arrival[j]`` is the undisturbed arrival at ``j`` and ``base_latency[j]`` the latency from the author
        to ``j`` used once a partition heals (e.g. ``network.path_latency_s[author]``). Windows active at
        ``t_sent`` decide: first the latency part ``arrival - t_sent`` is multiplied by the degradation
        factor of each link, then receivers cut off from the author get ``max(arrival, end + base_latency)``
        with ``end`` the latest end of the partitions separating them (``base_latency`` is not degraded).
        Returns a new array; ``inf`` (a missed delivery) stays ``inf``.
        """
        arr = np.asarray(arrival, dtype=float)
        everyone = np.arange(self.n)
        src = np.array([author])
        factor = self.latency_factor(t_sent, src, everyone)[0]
        out = np.where(factor != 1.0, t_sent + (arr - t_sent) * factor, arr)
        heal = np.full(self.n, -np.inf)
        for p in self.partitions:
            if p.active(t_sent):
                cut = p.group != p.group[author]
                heal[cut] = np.maximum(heal[cut], p.end_s)
        cut = np.isfinite(heal)
        if cut.any():
            out[cut] = np.maximum(out[cut], heal[cut] + np.asarray(base_latency, dtype=float)[cut])
        return out

    def connected(self, t: float) -> np.ndarray:
        """Component label per validator at ``t``: equal labels can exchange messages.

        Components are the intersections of the groups of all partitions active at ``t`` (all zeros when
        none is). Labels are numbered by first appearance, so validator 0 is always in component 0.
        """
        rows = [p.group for p in self.partitions if p.active(t)]
        if not rows:
            return np.zeros(self.n, dtype=np.int64)
        _, first, inverse = np.unique(np.stack(rows, axis=1), axis=0, return_index=True, return_inverse=True)
        rank = np.empty(first.shape[0], dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(first.shape[0])
        return rank[inverse.reshape(-1)]

    def vote_delay_matrix(self, t: float, senders: np.ndarray, receivers: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Delays (s) of messages sent at ``t``: ``base`` scaled by degradation, ``inf`` across a partition.

        ``base`` has shape ``(len(senders), len(receivers))``.
        """
        b = np.asarray(base, dtype=float)
        out = b * self.latency_factor(t, senders, receivers)
        out[self.separated(t, senders, receivers)] = np.inf
        return out

    # --- helpers to build partition groups ---------------------------------------------------------------
    @staticmethod
    def split_regions(network_region: np.ndarray, groups: Sequence[Sequence[str]]) -> np.ndarray:
        """Group label per validator from its region index (``Network.region``): the index of its region's group.

        E.g. ``[["us-east-1", "us-west-1", "us-west-2", "sa-east-1"], ["eu-west-1", ...]]`` splits the
        Americas from the rest. Every region used by a validator must be in exactly one group.
        """
        lookup = np.full(len(REGIONS), -1, dtype=np.int64)
        for k, names in enumerate(groups):
            for name in names:
                r = region_index(name)
                if lookup[r] >= 0:
                    raise ValueError(f"region {name!r} is in more than one group")
                lookup[r] = k
        region = np.asarray(network_region, dtype=np.int64)
        missing = [REGIONS[r] for r in np.unique(region) if lookup[r] < 0]
        if missing:
            raise ValueError(f"regions not in any group: {', '.join(missing)}")
        return lookup[region]

    @staticmethod
    def split_fraction(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
        """Group labels: a random ``round(fraction * n)`` validators in group 1 (the minority), the rest in 0."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")
        g = np.zeros(n, dtype=np.int64)
        g[rng.choice(n, int(round(fraction * n)), replace=False)] = 1
        return g
