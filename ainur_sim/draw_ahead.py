"""Random draws made ahead in a forked process, on the machine's spare core.

Some streams are drawn in a pattern known in advance: the background load of each coming slot (its window
follows the slot clock), the vote jitter of each finality round (its shape is the voter set's). A child
process forked from the run draws such a stream ahead, from its own copy of the generator, in the same
order, into a ring of shared memory; the run takes each item from there while it does everything else.

Results are identical bit for bit. Each item carries the key the child assumed (the slot window, the
round's shape); the caller passes the key it actually needs. On the first mismatch, or when the child
fails or cannot fit an item, the child is stopped, the generator is set to the state after the last item
taken, and :meth:`DrawAhead.take` returns None: the caller draws itself, from exactly where the child
would have, for the rest of the run. :meth:`DrawAhead.close` leaves the generator in that same state.

Only for ``PCG64`` generators (the run's streams) and where ``os.fork`` exists.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import signal
import struct
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

#: a message's head: item index, status, then the generator's state after the item (state and inc as two
#: 64-bit halves each, has_uint32, uinteger); the key's floats and the arrays' lengths follow
_HEAD = "<qqQQQQqQ"
_OK, _FAILED = 0, 1
_MASK64 = (1 << 64) - 1
#: the ring's size when the caller names no depth: as many items as fit in this many bytes, 16 to 256 of them
RING_BYTES = 16 << 20
_MIN_DEPTH, _MAX_DEPTH = 16, 256

Draw = Callable[[np.random.Generator, int], tuple[tuple[float, ...], Sequence[np.ndarray]]]


def spare_core() -> bool:
    """Whether this process may use a second core for drawing ahead: Linux (where ``fork`` is the default
    way to start processes; macOS's system libraries are not safe to use in a forked child), two or more
    usable CPUs, and not itself a worker of a process pool (whose siblings already use the other cores)."""
    if not sys.platform.startswith("linux") or multiprocessing.parent_process() is not None:
        return False
    return len(os.sched_getaffinity(0)) >= 2  # (the CPUs this process may run on, not the machine's)


def fork_child(work: Callable[[int], None]) -> tuple[int, int]:
    """Fork a child that runs ``work(fd)``, ``fd`` the write end of a new pipe, then exits (status 1 if
    ``work`` raised; nothing escapes into the parent's code, no clean-up of the parent's runs). Returns
    (the child's pid, the read end of the pipe) in the parent."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            work(w)
        except BaseException:  # noqa: BLE001 - nothing may escape into the parent's code
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def stop_child(pid: int, fd: int) -> None:
    """Kill forked child ``pid`` (if it still runs), reap it, and close ``fd``, the pipe end read from it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(fd)


def _pack_state(rng: np.random.Generator) -> tuple[int, ...]:
    s = rng.bit_generator.state
    st, inc = s["state"]["state"], s["state"]["inc"]
    return st >> 64, st & _MASK64, inc >> 64, inc & _MASK64, int(s["has_uint32"]), int(s["uinteger"])


def _unpack_state(rng: np.random.Generator, v: Sequence[int]) -> None:
    rng.bit_generator.state = {"bit_generator": "PCG64",
                               "state": {"state": (v[0] << 64) | v[1], "inc": (v[2] << 64) | v[3]},
                               "has_uint32": int(v[4]), "uinteger": int(v[5])}


def _lines(nbytes: int) -> int:
    """``nbytes`` rounded up to whole 64-byte cache lines (every array in the ring starts on one)."""
    return -(-int(nbytes) // 64) * 64


def _read_exact(fd: int, k: int) -> bytes | None:
    """``k`` bytes from ``fd``, or None at end of file."""
    buf = b""
    while len(buf) < k:
        chunk = os.read(fd, k - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class DrawAhead:
    """Items ``draw(rng, 0), draw(rng, 1), …`` drawn by a forked child, taken in order by the run.

    ``draw(rng, k)`` returns (key of item ``k``: floats, its arrays), the arrays of dtypes ``dtypes`` in
    that order, ``item_bytes`` at most in all (a larger item ends the drawing ahead: the caller draws it).
    ``depth`` items are kept in the ring (default: as many as fit in :data:`RING_BYTES`, 16 to 256). The
    arrays :meth:`take` returns are views into the ring, valid until the next call.

    Each item's message (its key, array lengths and the generator state after it) comes through a pipe,
    one read a take. The parent tells how many items it is done with in a counter in the shared memory,
    without a system call; the child, once the ring is full, polls it every ``poll_s`` until half the
    ring is free, then draws that half at once. (Waking a child blocked on a pipe cost the parent
    ≈ 200 µs a time on this machine, and frequent wake-ups of a polling child preempt the parent too.)
    A deep ring matters where items are small and the run takes them fast: with 16 items, half a ring
    lasted less than one poll when slots took ≈ 60 µs, and the run waited for the child (≈ 1 s in a
    simulated week); the default depth keeps half a ring ahead for at least a poll at such speeds.
    """

    def __init__(self, rng: np.random.Generator, draw: Draw, dtypes: Sequence[type], n_key: int,
                 item_bytes: int, depth: int | None = None, poll_s: float = 2e-3) -> None:
        if type(rng.bit_generator) is not np.random.PCG64:
            raise TypeError("DrawAhead needs a PCG64 generator")
        self.rng = rng
        self.dtypes = [np.dtype(d) for d in dtypes]
        self.item_bytes = _lines(item_bytes)
        self.depth = int(depth) if depth is not None else \
            min(max(RING_BYTES // self.item_bytes, _MIN_DEPTH), _MAX_DEPTH)
        self.poll_s = float(poll_s)
        self._n_key = int(n_key)
        self._msg = struct.Struct(f"{_HEAD}{n_key}d{len(self.dtypes)}q")
        self._state = _pack_state(rng)  # the generator's state after the last item taken
        self._k = 0  # the next item to take
        self._mem = mmap.mmap(-1, 64 + self.depth * self.item_bytes)
        self._done = np.frombuffer(self._mem, dtype=np.int64, count=1)  # items the parent is done with
        self._ring = np.frombuffer(self._mem, dtype=np.uint8, offset=64)
        # the ring as each array's dtype (array starts are multiples of 64 bytes): slicing these is the
        # cheapest way to a view of an item's array
        self._typed = [self._ring.view(d) for d in self.dtypes]
        parent = os.getpid()
        # the child draws until the parent kills it or ends
        self.pid, self._r = fork_child(lambda w: self._work(draw, w, parent))
        self.fell_back_at: int | None = None
        """The item at which the caller started drawing itself (None: never)."""

    # --- child --------------------------------------------------------------------------------------------
    def _work(self, draw: Draw, w: int, parent: int) -> None:
        rng = self.rng
        k = 0
        while True:
            if k - int(self._done[0]) >= self.depth:  # the ring is full: wait until half of it is free
                while k - int(self._done[0]) > self.depth // 2:
                    if os.getppid() != parent:
                        return
                    time.sleep(self.poll_s)
            status, key, arrays = _OK, (), ()
            try:
                key, arrays = draw(rng, k)
                if sum(_lines(a.size * d.itemsize) for a, d in zip(arrays, self.dtypes, strict=True)) \
                        > self.item_bytes:
                    status = _FAILED
            except Exception:  # noqa: BLE001 - the caller meets the same error when it draws this item itself
                status = _FAILED
            if status == _FAILED:
                os.write(w, self._msg.pack(k, _FAILED, *[0] * (6 + self._n_key + len(self.dtypes))))
                return
            off = (k % self.depth) * self.item_bytes
            for a, d, ring in zip(arrays, self.dtypes, self._typed, strict=True):
                i = off // d.itemsize
                ring[i:i + a.size] = a.reshape(-1)  # (cast to the ring's dtype, as the parent reads it)
                off += _lines(a.size * d.itemsize)
            os.write(w, self._msg.pack(k, _OK, *_pack_state(rng), *key, *(a.size for a in arrays)))
            k += 1

    # --- parent -------------------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether items still come from the child."""
        return self.pid != 0

    def take(self, key: tuple[float, ...]) -> list[np.ndarray] | None:
        """The next item's arrays (1-d views) if the child drew it for ``key``; else None, with the generator
        set to where the caller must draw this item itself (and every later one)."""
        if not self.pid:
            return None
        self._done[0] = self._k  # (the items before this one are free again)
        msg = _read_exact(self._r, self._msg.size)
        if msg is None:
            return self._fall_back()
        values = self._msg.unpack(msg)
        k, status, state = values[0], values[1], values[2:8]
        if status != _OK or values[8:8 + self._n_key] != tuple(key):
            return self._fall_back()
        off = (k % self.depth) * self.item_bytes
        out = []
        for n, d, ring in zip(values[8 + self._n_key:], self.dtypes, self._typed, strict=True):
            i = off // d.itemsize
            out.append(ring[i:i + n])
            off += _lines(n * d.itemsize)
        self._state = state
        self._k = k + 1
        return out

    def _fall_back(self) -> None:
        self.fell_back_at = self._k
        self.close()
        return None

    def close(self) -> None:
        """Stop the child; the generator is left where the items taken so far leave it."""
        if self.pid:
            stop_child(self.pid, self._r)
            self.pid = 0
            _unpack_state(self.rng, self._state)

    def __del__(self) -> None:
        if getattr(self, "pid", 0):
            self.close()
