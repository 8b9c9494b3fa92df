"""The noise band of `ccbench gate` on hand-computed numbers."""

from __future__ import annotations

import math

import pytest

from harness.stats import noise_band, standard_error_of_difference


def test_welch_standard_error_both_sides_repeated():
    # variances 1 and 4, three repeats each: sqrt(1/3 + 4/3)
    assert standard_error_of_difference([1, 2, 3], [2, 4, 6]) == pytest.approx(math.sqrt(5 / 3))


def test_one_repeated_side_stands_in_for_both():
    # sd 1 from the candidate, n 1 and 3: 1 * sqrt(1/1 + 1/3)
    assert standard_error_of_difference([5], [1, 2, 3]) == pytest.approx(math.sqrt(4 / 3))
    assert standard_error_of_difference([5], [6]) is None
    assert standard_error_of_difference([], [1, 2]) is None


def test_band_decides_within_noise():
    band = noise_band([0.95, 0.75, 0.85], [0.9, 0.7, 0.74], sigma=2)
    assert band.delta_mean == pytest.approx(-0.07)
    assert band.band == pytest.approx(2 * math.sqrt(0.01 / 3 + 0.0112 / 3))
    assert band.within
    assert not noise_band([0.85, 0.86, 0.84], [0.60, 0.61, 0.59], sigma=2).within


def test_identical_repeats_never_excuse_a_difference():
    band = noise_band([0.9, 0.9], [0.9, 0.9], sigma=2)
    assert band.band == 0 and not band.within
    assert noise_band([1, 2], [3, 4], sigma=0) is None
