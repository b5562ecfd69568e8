"""KPI measurement and verdicts on hand-made tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ainur_sim.config import KpiTarget
from ainur_sim.kpi import KPI_NAMES, block_kpis, evaluate, judge, uptime


def _chain(t_auth, t_fin):
    n = len(t_auth)
    return pd.DataFrame({"number": np.arange(1, n + 1), "canonical": True, "t_authored": t_auth,
                         "t_finalized": t_fin})


def test_uptime_counts_block_gaps_and_finality_lag():
    # blocks every 6 s for 600 s, except none in [300, 400): a 106 s gap
    t = np.array([x for x in np.arange(6.0, 600.0, 6.0) if not 300 <= x < 400])
    fin = t + 13.0
    b = _chain(t, fin)
    up = uptime(b, 600.0, max_block_gap_s=18.0, max_finality_lag_s=None)
    # down from (last block before 300 = 294) + 18 = 312 to the next block at 402: 90 s of the 582 s graded
    assert up == pytest.approx(1 - 90 / 582, abs=2 / 582)
    # with a finality bound of 60 s: the newest finalized block (294, finalized 307) is > 60 s old from 354
    # until block 402 is finalized at 415 -> 61 s more down, overlapping the gap: down [312, 415) = 103 s
    up_f = uptime(b, 600.0, max_block_gap_s=18.0, max_finality_lag_s=60.0)
    assert up_f == pytest.approx(1 - 103 / 540, abs=2 / 540)


def test_judge_and_verdict_nulls():
    assert judge(5.9, KpiTarget(op="between", lo=5.5, hi=6.5)) is True
    assert judge(12.0, KpiTarget(op="<", value=12.0)) is False
    assert judge(None, KpiTarget(op="<", value=1.0)) is None
    assert judge(3.0, KpiTarget(op="none")) is None
    out = evaluate({"uptime": 0.9995}, {"tps_sustained": "no load"}, {"uptime": KpiTarget(op=">", value=0.999)})
    assert set(out) == set(KPI_NAMES)
    assert out["uptime"]["pass"] is True and out["tps_sustained"]["reason"] == "no load"
    assert out["api_p50_ms"]["value"] is None and out["api_p50_ms"]["pass"] is None


def test_block_time_kpis_from_canonical_chain_only():
    b = _chain(np.array([6.0, 12.0, 24.0, 30.0]), np.nan)
    orphan = pd.DataFrame({"number": [2], "canonical": [False], "t_authored": [13.0], "t_finalized": [np.nan]})
    values, _ = block_kpis(pd.concat([b, orphan]))
    assert values["block_time_mean_s"] == pytest.approx(8.0)
    assert values["block_time_p99_s"] == pytest.approx(np.percentile([6, 12, 6], 99))
