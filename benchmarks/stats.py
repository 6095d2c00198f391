"""Small statistics helpers: percentiles, medians and ratios.

The machine the suite runs on is small and noisy, so the suite never reports a
single measurement: each scenario runs several rounds with the server kinds
interleaved, and the report quotes the median across rounds and the median of
the per-round ratios (``wsroute / raw`` measured in the same round, so slow
drift of the machine cancels out instead of biasing one kind).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) by nearest rank.

    Nearest rank, rather than interpolation, always returns a latency that was
    really observed, which is what p99 means to a reader.

    Example:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
        2.0
    """
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    """Return the median of finite values, NaN when there are none."""
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else float("nan")


def ratio(value: float, reference: float) -> float:
    """Return ``value / reference``, NaN when the reference is not positive."""
    if math.isnan(reference) or reference <= 0:
        return float("nan")
    return value / reference


def median_ratio(values: Sequence[float], references: Sequence[float]) -> float:
    """Return the median of per-round ratios ``values[i] / references[i]``."""
    return median(ratio(v, r) for v, r in zip(values, references, strict=False))
