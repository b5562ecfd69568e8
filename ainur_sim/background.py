"""A pure computation run in a forked process on the spare core while the run goes on.

Some of a run's work does not depend on the simulation: the API layer is evaluated on the configured
offered-load curve with its own random stream (``chain/rpc.py``). :class:`Background` forks a child that
computes ``fn(*args)`` at once and sends the pickled result back through a pipe; the run collects it when
it needs it. Results are identical: the child works on copies of the same arguments (the generator in the
same state) that the run would have passed.

If the child fails for any reason (an exception, a result that cannot be pickled, a killed process), the
run computes ``fn(*args)`` itself when it collects: the arguments in the parent were never touched, so the
result, or the error, is the one the run would have had without the child.

Only where ``os.fork`` exists; the child lowers its priority, so that the children drawing ahead
(:mod:`ainur_sim.draw_ahead`), which the run waits for, come first on the spare core.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ainur_sim.draw_ahead import fork_child, stop_child

T = TypeVar("T")

#: niceness added in the child (0 … 19): below the children drawing ahead, which the run waits on
CHILD_NICE = 10


class Background(Generic[T]):
    """``fn(*args)`` computed by a forked child; :meth:`result` returns it (computed in process if the child
    failed)."""

    def __init__(self, fn: Callable[..., T], *args: Any) -> None:
        self.fn = fn
        self.args = args
        self.failed = False
        """Whether the child failed and :meth:`result` computed in process."""
        self.pid, self._r = fork_child(self._work)

    def _work(self, w: int) -> None:
        """The child: compute the result and send it pickled."""
        with contextlib.suppress(OSError):
            os.nice(CHILD_NICE)
        data = memoryview(pickle.dumps(self.fn(*self.args), protocol=pickle.HIGHEST_PROTOCOL))
        while data:
            data = data[os.write(w, data):]

    def _collect(self) -> tuple[T] | None:
        """(the child's result,), or None if it failed (it is waited for either way)."""
        chunks = []
        while chunk := os.read(self._r, 1 << 20):
            chunks.append(chunk)
        os.close(self._r)
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        if os.waitstatus_to_exitcode(status) != 0:
            return None
        try:
            return (pickle.loads(b"".join(chunks)),)
        except Exception:  # noqa: BLE001 - a truncated or unreadable result: compute it here
            return None

    def result(self) -> T:
        """The result of ``fn(*args)``: the child's, or computed now if the child failed."""
        if not self.pid:
            raise RuntimeError("the result was already collected or the child was stopped")
        got = self._collect()
        if got is None:
            self.failed = True
            return self.fn(*self.args)
        return got[0]

    def close(self) -> None:
        """Stop the child if it is still running (its result is not wanted)."""
        if self.pid:
            stop_child(self.pid, self._r)
            self.pid = 0

    def __del__(self) -> None:
        if getattr(self, "pid", 0):
            self.close()
