"""ainur-sim: a discrete-event simulator and research testbed for the Ainur agent-marketplace protocol.

    from ainur_sim import compose, run
    cfg = compose(["scenario=baseline", "seed=3"])
    res = run(cfg)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _default_numba_cache() -> None:
    """Give Numba a writable cache dir unless the user chose one (site-packages may be read-only)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    for base in (Path.home() / ".cache", Path(tempfile.gettempdir())):
        target = base / "ainur_sim" / "numba"
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(target, os.W_OK):
            os.environ["NUMBA_CACHE_DIR"] = str(target)
            return


_default_numba_cache()

from ainur_sim.compose import compose  # noqa: E402
from ainur_sim.result import RunResult  # noqa: E402
from ainur_sim.sim import run  # noqa: E402

__all__ = ["RunResult", "compose", "run"]
__version__ = "0.1.0"
