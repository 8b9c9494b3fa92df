"""The noise rule of `ccbench gate`: is a difference between two runs larger than their repeat-to-repeat spread?

With `ccbench run --repeat K` each results file carries one value per repeat (`summary.per_repeat`). The
difference of the repeat means is compared with `sigma` standard errors of that difference (Welch:
sqrt(s_b²/n_b + s_c²/n_c)); inside that band it is called noise. Two standard errors is roughly a 95 % band.
When only one side was repeated, its spread stands in for both sides (equal-variance assumption).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

TIE_TOLERANCE = 1e-9  # relative: |Δ| and the band, computed along different paths, differ in the last bits


@dataclass(frozen=True)
class NoiseBand:
    """The repeat statistics behind a "within noise" verdict, kept for the report."""

    delta_mean: float  # candidate mean - baseline mean
    band: float  # sigma * standard error of that difference
    baseline_n: int
    candidate_n: int

    @property
    def within(self) -> bool:
        """Inside the band (an exact tie counts as inside, whatever the float rounding: 2/21 vs 2/21); a zero band
        (identical repeats) never excuses a difference."""
        return self.band > 0 and abs(self.delta_mean) <= self.band * (1 + TIE_TOLERANCE)


def standard_error_of_difference(baseline: Sequence[float], candidate: Sequence[float]) -> float | None:
    """Welch standard error of mean(candidate) - mean(baseline); None when neither side has two samples."""
    n_b, n_c = len(baseline), len(candidate)
    if n_b == 0 or n_c == 0:
        return None
    if n_b >= 2 and n_c >= 2:
        return math.sqrt(statistics.variance(baseline) / n_b + statistics.variance(candidate) / n_c)
    repeated = baseline if n_b >= 2 else candidate if n_c >= 2 else None
    if repeated is None:
        return None
    return statistics.stdev(repeated) * math.sqrt(1 / n_b + 1 / n_c)


def noise_band(baseline: Sequence[float], candidate: Sequence[float], sigma: float) -> NoiseBand | None:
    """The noise band for two sets of per-repeat values, or None when there is no spread to measure."""
    if sigma <= 0:
        return None
    error = standard_error_of_difference(baseline, candidate)
    if error is None:
        return None
    return NoiseBand(
        delta_mean=statistics.fmean(candidate) - statistics.fmean(baseline),
        band=sigma * error,
        baseline_n=len(baseline),
        candidate_n=len(candidate),
    )
