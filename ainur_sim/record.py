"""Columnar recorders: preallocated numpy columns that grow by doubling and become DataFrames.

Recording a row is a few array stores, never a Python object per row; the frame is built once at the end.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


class ColumnStore:
    """A table with a fixed schema, stored as one numpy array per column.

    ``schema`` maps column name to numpy dtype; ``fill`` optionally gives each column's initial value
    for rows that are appended but not yet written (e.g. NaN for "not finalized yet").
    """

    def __init__(self, schema: Mapping[str, np.dtype | type | str], capacity: int = 1024,
                 fill: Mapping[str, object] | None = None) -> None:
        self.schema = {k: np.dtype(v) for k, v in schema.items()}
        self.fill = dict(fill or {})
        self.n = 0
        self._cap = max(int(capacity), 1)
        self.cols: dict[str, np.ndarray] = {k: self._new(k, self._cap) for k in self.schema}

    def _new(self, name: str, size: int) -> np.ndarray:
        dt = self.schema[name]
        if name in self.fill:
            return np.full(size, self.fill[name], dtype=dt)
        return np.zeros(size, dtype=dt)

    def _grow(self, need: int) -> None:
        cap = self._cap
        while cap < need:
            cap *= 2
        for k, old in self.cols.items():
            new = self._new(k, cap)
            new[: self.n] = old[: self.n]
            self.cols[k] = new
        self._cap = cap

    def append(self, **values: object) -> int:
        """Append one row; columns not given keep their fill value. Returns the row index."""
        i = self.n
        if i >= self._cap:
            self._grow(i + 1)
        cols = self.cols
        for k, v in values.items():
            cols[k][i] = v
        self.n = i + 1
        return i

    def append_values(self, *values: object) -> int:
        """``append`` with every column's value given positionally, in schema order (no keyword dict)."""
        i = self.n
        if i >= self._cap:
            self._grow(i + 1)
        for col, v in zip(self.cols.values(), values, strict=True):
            col[i] = v
        self.n = i + 1
        return i

    def extend(self, count: int, **values: object) -> slice:
        """Append ``count`` rows at once from arrays (or scalars broadcast); returns their slice."""
        start = self.n
        if start + count > self._cap:
            self._grow(start + count)
        sl = slice(start, start + count)
        for k, v in values.items():
            self.cols[k][sl] = v
        self.n = start + count
        return sl

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, name: str) -> np.ndarray:
        """A view of the filled part of column ``name`` (writes go through)."""
        return self.cols[name][: self.n]

    def to_frame(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The recorded rows as a DataFrame (copies), in schema order or the given order."""
        names = columns if columns is not None else list(self.schema)
        return pd.DataFrame({k: self.cols[k][: self.n].copy() for k in names})


def empty_frame(schema: Mapping[str, np.dtype | type | str]) -> pd.DataFrame:
    """A zero-row DataFrame with the given column dtypes (for contract files whose rows come later)."""
    return pd.DataFrame({k: np.array([], dtype=np.dtype(v)) for k, v in schema.items()})
