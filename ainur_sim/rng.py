"""Named random streams derived from one root seed.

Every subsystem asks for its own stream by name (``streams.generator("consensus")``). A stream depends
only on the root seed and its name, never on the order in which streams are created, so adding a new
subsystem does not perturb the draws of existing ones, and serial and parallel runs agree bit for bit.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _name_key(name: str) -> int:
    """A stable 64-bit integer for a stream name (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


class Streams:
    """Factory of independent, reproducible ``numpy.random.Generator`` streams keyed by name."""

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)

    def seed_sequence(self, name: str) -> np.random.SeedSequence:
        """The ``SeedSequence`` behind stream ``name``: root entropy plus the name as spawn key."""
        return np.random.SeedSequence(entropy=self.seed, spawn_key=(_name_key(name),))

    def generator(self, name: str) -> np.random.Generator:
        """A fresh generator for stream ``name``; calling twice gives two identical generators."""
        return np.random.Generator(np.random.PCG64(self.seed_sequence(name)))
