"""Finality scaling: GRANDPA's lag and its stall threshold versus the number of validators.

For n = 3, 4, 7, 10, 50 and 100 validators on the global network (8 regions, ``scenario=baseline``, no
load, no API layer) it measures, per seed,

- the median and 95th-percentile authored → finalized lag of canonical blocks on a healthy network;
- for k offline validators during an outage window (k = 0, ⌊n/4⌋, the most GRANDPA tolerates
  f = ⌊(n−1)/3⌋, and f + 1), the *stall share*: the share of the outage's 30 s intervals (from 60 s after
  it starts, once the rounds in flight are over) in which no block was newly finalized.

Theory: finality stalls iff the online validators fall below the supermajority n − ⌊(n−1)/3⌋ (stall
share 1, else 0); the research expects a 12–18 s lag at 6 s slots. See README.md.

``run(size, seeds, overrides=())``: ``overrides`` are Hydra overrides appended to the base composition
(e.g. ``["finality.before_best=4"]``) — the way to check that a wrong model fails. The per-run settings
(validators, outage, duration, seed) are applied on top of the composed config, so overrides of those
keys have no effect.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ainur_sim import compose
from ainur_sim import run as run_model
from ainur_sim.config import Config
from ainur_sim.kpi import finality_lags
from ainur_sim.reproduce import Expectation, MetricResult
from ainur_sim.sim import to_config

N_VALUES = (3, 4, 7, 10, 50, 100)
BASE = ("scenario=baseline", "load.tps=0", "api.enabled=false")  # healthy global network, empty blocks
OUTAGE_START_S = 120.0
SETTLE_S = 60.0      # rounds in flight when the outage starts are not counted
BIN_S = 30.0         # stall share: share of these intervals without a newly finalized block
TAIL_S = 30.0        # run continues this long after the outage ends
RESEARCH_BAND_S = (12.0, 18.0)  # research/substrate.md: finality lag at 6 s slots


@dataclass(frozen=True)
class Size:
    """Run lengths per seed."""

    healthy_s: float   # length of the healthy run (lag; also the k = 0 case)
    outage_s: float    # length of the outage window


SIZES: dict[str, Size] = {
    "quick": Size(healthy_s=600.0, outage_s=300.0),
    "full": Size(healthy_s=3_600.0, outage_s=1_200.0),
}


# ---------------------------------------------------------------------------------------------------
# Theory


def grandpa_threshold(n: int) -> int:
    """GRANDPA supermajority: n − ⌊(n−1)/3⌋ votes (finality-grandpa ``VoterSet::threshold``)."""
    return n - (n - 1) // 3


def offline_cases(n: int) -> list[int]:
    """Offline counts per n: none, a quarter, the most tolerated f = ⌊(n−1)/3⌋ (< n/3), and f + 1 (≥ n/3)."""
    f = (n - 1) // 3
    return sorted({0, n // 4, f, f + 1})


def stall_theory(n: int, k: int) -> float:
    """1 if finality stalls with k of n offline (online < threshold), else 0."""
    return float(n - k < grandpa_threshold(n))


def lag_name(stat: str, n: int) -> str:
    return f"lag_{stat}_s_n{n}"


def stall_name(n: int, k: int) -> str:
    return f"stall_share_n{n}_k{k}"


def metric_names() -> list[str]:
    """Every metric in the order of expected.json: lags per n, then stall shares per (n, k)."""
    names = [lag_name(s, n) for n in N_VALUES for s in ("median", "p95")]
    return names + [stall_name(n, k) for n in N_VALUES for k in offline_cases(n)]


# ---------------------------------------------------------------------------------------------------
# Model runs


def with_values(cfg: Config, values: dict[str, Any]) -> Config:
    """A copy of a typed config with dotted keys set (``{"chain.n_validators": 7}``); ``run`` validates it."""
    for key, value in values.items():
        head, _, rest = key.partition(".")
        cfg = dataclasses.replace(cfg, **{head: with_values(getattr(cfg, head), {rest: value}) if rest else value})
    return cfg


def base_config(overrides: Sequence[str]) -> Config:
    """The composed base (Hydra, once per experiment run), typed; per-run settings are applied to copies."""
    return to_config(compose([*BASE, *overrides]))


def stall_share(blocks: pd.DataFrame, t0: float, t1: float) -> float:
    """Share of the ``BIN_S`` intervals of [t0, t1) in which no block was newly finalized."""
    fin = blocks.loc[blocks["t_finalized"].notna(), "t_finalized"].to_numpy()
    edges = np.arange(t0, t1 + 1e-9, BIN_S)
    return float(np.mean(np.histogram(fin, edges)[0] == 0))


def measure(seed: int, size: Size, base: Config) -> dict[str, float]:
    """All metrics of one seed: one healthy run and one outage run per k > 0, for every n."""
    window = (OUTAGE_START_S + SETTLE_S, OUTAGE_START_S + size.outage_s)
    out: dict[str, float] = {}
    for n in N_VALUES:
        res = run_model(with_values(base, {"seed": seed, "duration_s": size.healthy_s, "chain.n_validators": n,
                                           "faults.offline_validators": 0, "faults.outage_duration_s": 0.0}))
        lags = finality_lags(res.blocks)
        out[lag_name("median", n)] = float(np.median(lags))
        out[lag_name("p95", n)] = float(np.percentile(lags, 95))
        for k in offline_cases(n):
            if k:
                res = run_model(with_values(base, {
                    "seed": seed, "duration_s": OUTAGE_START_S + size.outage_s + TAIL_S, "chain.n_validators": n,
                    "faults.offline_validators": k, "faults.outage_start_s": OUTAGE_START_S,
                    "faults.outage_duration_s": size.outage_s}))
            out[stall_name(n, k)] = stall_share(res.blocks, *window)  # k = 0: the healthy run's window
    return out


# ---------------------------------------------------------------------------------------------------
# The experiment interface


def per_seed(size: str, seeds: Sequence[int], overrides: Sequence[str] = ()) -> dict[str, list[float]]:
    """Every metric's value for every seed (lists in seed order)."""
    base = base_config(overrides)
    values: dict[str, list[float]] = defaultdict(list)
    for seed in seeds:
        for name, value in measure(seed, SIZES[size], base).items():
            values[name].append(value)
    return dict(values)


def run(size: str, seeds: list[int], overrides: Sequence[str] = ()) -> dict[str, MetricResult]:
    """Mean and 95 % CI over ``seeds`` of every metric, with the GRANDPA threshold as theory."""
    band = f"research {RESEARCH_BAND_S[0]:g}–{RESEARCH_BAND_S[1]:g} s"
    out = {}
    for name, vals in per_seed(size, seeds, overrides).items():
        if name.startswith("stall_share"):
            n, k = (int(x) for x in name.removeprefix("stall_share_n").split("_k"))
            out[name] = MetricResult.from_values(vals, stall_theory(n, k),
                                                 f"needs {grandpa_threshold(n)} of {n}, {n - k} online")
        else:
            out[name] = MetricResult.from_values(vals, None, band)
    return out


# ---------------------------------------------------------------------------------------------------
# Figure


def figure(results: dict[str, MetricResult], expected: dict[str, Expectation], path: Path) -> None:
    """Left: median and p95 lag versus n (95 % CIs) beside the research band. Right: stall share versus the
    offline fraction k/n per n, with GRANDPA's prediction (open markers) and the 1/3 line; the markers of
    each n are shifted vertically by a few hundredths to keep them apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_l, ax_s) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax_l.axhspan(*RESEARCH_BAND_S, color="C2", alpha=0.12, label="research band 12–18 s (lower edge)")
    shown = [results[lag_name(s, n)].mean for s in ("median", "p95") for n in N_VALUES if lag_name(s, n) in results]
    for j, stat in enumerate(("median", "p95")):
        ns = [n for n in N_VALUES if lag_name(stat, n) in results]
        r = [results[lag_name(stat, n)] for n in ns]
        ax_l.errorbar(ns, [x.mean for x in r], yerr=[x.ci if np.isfinite(x.ci) else 0 for x in r],
                      fmt="o-", color=f"C{j}", capsize=3, label=f"{stat} lag")
    if shown:  # zoom on the measurements: the band's lower edge at 12 s stays in view
        ax_l.set_ylim(min(RESEARCH_BAND_S[0], min(shown)) - 0.1, max(shown) + 0.25)
    ax_l.set_xscale("log")
    ax_l.set_xticks(N_VALUES, [str(n) for n in N_VALUES])
    ax_l.set_xlabel("validators n")
    ax_l.set_ylabel("authored → finalized lag (s)")
    ax_l.set_title("healthy global network, 6 s slots")
    ax_l.legend(fontsize=8)
    ax_l.grid(alpha=0.3)

    for j, n in enumerate(N_VALUES):
        ks = [k for k in offline_cases(n) if stall_name(n, k) in results]
        x = np.array([k / n for k in ks])
        dy = (j - 2.5) * 0.02  # small vertical offsets keep the markers of different n apart
        r = [results[stall_name(n, k)] for k in ks]
        ax_s.errorbar(x, [v.mean + dy for v in r], yerr=[v.ci if np.isfinite(v.ci) else 0 for v in r], fmt="o",
                      color=f"C{j}", capsize=3, label=f"n = {n}")
        ax_s.plot(x, [stall_theory(n, k) + dy for k in ks], "o", mfc="none", ms=11, color=f"C{j}")
    ax_s.axvline(1 / 3, color="0.5", ls="--", lw=1)
    ax_s.text(1 / 3 + 0.005, 0.5, "1/3", color="0.4", fontsize=8)
    ax_s.set_xlabel("offline fraction k/n during the outage")
    ax_s.set_ylabel("stall share (30 s intervals without finality)")
    ax_s.set_title("measured (filled) vs threshold n − ⌊(n−1)/3⌋ (open)")
    ax_s.set_ylim(-0.12, 1.12)
    ax_s.legend(fontsize=7, ncol=2, loc="center left")
    ax_s.grid(alpha=0.3)
    nseeds = max(r.n for r in results.values())
    fig.suptitle(f"Finality scaling (mean, 95 % CI over {nseeds} seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
