"""Cloud regions and their measured round-trip times.

Average inter-region RTTs in milliseconds (AWS, 2017 measurement; see research/substrate.md §7, source:
acomputerscientistlearnsaws.blogspot.com/2017/04/aws-regions.html). The table there gives both directions
for these eight regions; we symmetrise by averaging the two. Intra-region RTT is a config value
(0.25–3.4 ms measured between availability zones).
"""

from __future__ import annotations

import numpy as np

REGIONS: tuple[str, ...] = (
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-northeast-1",
    "ap-southeast-1",
    "sa-east-1",
)

# Row = from, column = to, in the order of REGIONS; ms. sa-east-1's row is the transpose of its column.
_RTT_DIRECTED_MS = np.array(
    [
        [0.0, 72.7, 87.0, 80.6, 88.7, 145.3, 216.7, 119.5],
        [71.6, 0.0, 19.5, 153.2, 166.6, 102.5, 174.0, 192.7],
        [88.7, 19.2, 0.0, 137.0, 159.5, 89.1, 161.4, 182.7],
        [80.5, 153.2, 137.0, 0.0, 19.6, 212.4, 239.0, 191.3],
        [88.6, 166.6, 159.5, 19.6, 0.0, 236.5, 325.9, 194.9],
        [145.3, 102.5, 89.2, 212.4, 236.6, 0.0, 73.8, 256.8],
        [216.7, 173.9, 161.4, 238.1, 325.9, 73.8, 0.0, 328.1],
        [119.5, 192.7, 182.7, 191.3, 194.9, 256.8, 328.1, 0.0],
    ]
)

#: Symmetric inter-region RTT matrix, ms (diagonal 0: intra-region RTT comes from config).
RTT_MS: np.ndarray = (_RTT_DIRECTED_MS + _RTT_DIRECTED_MS.T) / 2.0
RTT_MS.setflags(write=False)


def region_index(name: str) -> int:
    """Index of a region in ``REGIONS``; ``ValueError`` naming the allowed regions otherwise."""
    try:
        return REGIONS.index(name)
    except ValueError:
        raise ValueError(f"unknown region {name!r}; allowed: {', '.join(REGIONS)}") from None
