"""Filters checked against signals whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from analysis.filters import (
    HEIGHT_PER_NOSE_TO_HEEL,
    OneEuroFilter,
    angular_velocity,
    butterworth_lowpass,
    interpolate_gaps,
    metres_per_pixel,
    one_euro,
    speed,
    unwrap_degrees,
)
from analysis.landmarks import INDEX, LANDMARK_COUNT

RATE_HZ = 60.0


def _sine_and_noise(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 1 Hz sine, and the same with a 15 Hz component riding on it."""
    clean = np.sin(2 * np.pi * 1.0 * times)
    return clean, clean + 0.5 * np.sin(2 * np.pi * 15.0 * times + 0.3)


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean(a**2)))


def test_butterworth_recovers_sine_without_phase_lag() -> None:
    times = np.arange(600) / RATE_HZ
    clean, noisy = _sine_and_noise(times)
    filtered = butterworth_lowpass(noisy, times, cutoff_hz=4.0)
    inner = slice(30, -30)  # the ends keep some of their noise: filtfilt pins the end samples
    assert _rms(filtered[inner] - clean[inner]) < 0.01
    assert _rms(noisy[inner] - clean[inner]) > 0.3
    # Zero phase: the filtered peaks fall on the same frames as the true ones.
    true_peaks, _ = find_peaks(clean[inner])
    filtered_peaks, _ = find_peaks(filtered[inner], distance=RATE_HZ / 2)
    assert len(filtered_peaks) == len(true_peaks)
    assert np.max(np.abs(filtered_peaks - true_peaks)) <= 1


def test_butterworth_handles_variable_frame_rate() -> None:
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.6, 1.4, 600)) / RATE_HZ
    clean, noisy = _sine_and_noise(times)
    filtered = butterworth_lowpass(noisy, times, cutoff_hz=4.0)
    inner = slice(30, -30)
    assert _rms(filtered[inner] - clean[inner]) < 0.03
    assert _rms(noisy[inner] - clean[inner]) > 0.3


def test_butterworth_filters_every_trailing_element_and_keeps_nan_runs() -> None:
    times = np.arange(600) / RATE_HZ
    clean, noisy = _sine_and_noise(times)
    series = np.stack([noisy, 2 * noisy, noisy], axis=-1)[:, None, :]  # (frames, 1 person, 3)
    series[200:220, 0, 0] = np.nan  # a gap in one element only
    series[10:, 0, 2] = np.nan  # leaves a 10-frame run, too short to filter
    filtered = butterworth_lowpass(series, times, cutoff_hz=4.0)
    assert filtered.shape == series.shape
    assert np.array_equal(np.isnan(filtered), np.isnan(series))
    first = filtered[:, 0, 0]
    assert _rms(first[30:190] - clean[30:190]) < 0.03
    assert _rms(first[230:570] - clean[230:570]) < 0.03
    assert _rms(filtered[30:-30, 0, 1] - 2 * clean[30:-30]) < 0.02
    assert np.array_equal(filtered[:10, 0, 2], noisy[:10])


def test_butterworth_cutoff_limits() -> None:
    times = np.arange(100) / RATE_HZ
    _, noisy = _sine_and_noise(times)
    assert np.array_equal(butterworth_lowpass(noisy, times, cutoff_hz=30.0), noisy)
    with pytest.raises(ValueError, match="cutoff_hz"):
        butterworth_lowpass(noisy, times, cutoff_hz=0.0)


def test_interpolate_gaps_fills_short_gaps_exactly_and_leaves_long_ones() -> None:
    times = np.arange(40) / 30.0
    line = 3.0 * times + 1.0
    series = np.stack([line, -line], axis=-1)
    series[5:7] = np.nan  # 2 frames: neighbours 3 frames = 0.1 s apart
    series[20:30, 1] = np.nan  # 10 frames
    series[:3, 0] = np.nan  # leading
    series[-2:, 1] = np.nan  # trailing
    filled, mask = interpolate_gaps(series, times, max_gap_s=0.1)
    np.testing.assert_allclose(filled[5:7, 0], line[5:7])
    np.testing.assert_allclose(filled[5:7, 1], -line[5:7])
    assert np.isnan(filled[20:30, 1]).all()
    assert np.isnan(filled[:3, 0]).all()
    assert np.isnan(filled[-2:, 1]).all()
    expected_mask = np.zeros(series.shape, bool)
    expected_mask[5:7] = True
    assert np.array_equal(mask, expected_mask)
    valid = ~np.isnan(series)
    assert np.array_equal(filled[valid], series[valid])


def test_interpolate_gaps_uses_real_timestamps() -> None:
    times = np.array([0.0, 0.1, 0.4, 0.5])
    series = np.array([0.0, np.nan, np.nan, 5.0])[:, None, None]
    filled, _ = interpolate_gaps(series, times, max_gap_s=1.0)
    np.testing.assert_allclose(filled[:, 0, 0], [0.0, 1.0, 4.0, 5.0])
    still_missing, mask = interpolate_gaps(series, times, max_gap_s=0.4)
    assert np.isnan(still_missing[1:3]).all() and not mask.any()


def test_one_euro_lags_less_than_a_moving_average_on_a_step() -> None:
    times = np.arange(120) / RATE_HZ
    step = np.where(times >= 1.0, 100.0, 0.0)
    smoothed = one_euro(step, times, min_cutoff=1.0, beta=0.05)
    window = 9
    moving_average = np.convolve(np.r_[np.zeros(window - 1), step], np.ones(window) / window, mode="valid")
    after = slice(60, 66)  # the first tenth of a second after the step
    assert np.all(smoothed[after] > moving_average[after])
    assert np.all(smoothed[after] <= 100.0)
    assert smoothed[-1] == pytest.approx(100.0, abs=0.5)


def test_one_euro_reduces_jitter_on_a_still_point() -> None:
    rng = np.random.default_rng(1)
    times = np.arange(600) / RATE_HZ
    jittery = 50.0 + rng.normal(0.0, 1.0, (600, 2, 3))
    smoothed = one_euro(jittery, times, min_cutoff=1.0, beta=0.01)
    assert smoothed.shape == jittery.shape
    assert np.all(np.std(smoothed[60:], axis=0) < np.std(jittery[60:], axis=0) / 3)


def test_one_euro_is_not_poisoned_by_nan() -> None:
    euro = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    for i in range(30):
        euro(np.array([10.0, 20.0]), i / 30)
    out = euro(np.array([np.nan, 20.0]), 1.0)
    assert np.isnan(out[0]) and out[1] == pytest.approx(20.0)
    out = euro(np.array([50.0, 20.0]), 1.0 + 1 / 30)
    assert out[0] == 50.0  # the element restarts from the new sample, not from NaN or 10
    out = euro(np.array([50.0, 20.0]), 1.0 + 2 / 30)
    assert np.all(np.isfinite(out))
    with pytest.raises(ValueError, match="increase"):
        euro(np.array([50.0, 20.0]), 1.0)


def test_unwrap_degrees() -> None:
    np.testing.assert_allclose(unwrap_degrees(np.array([170.0, -170.0])), [170.0, 190.0])
    series = np.array([[np.nan, 10.0], [170.0, 20.0], [-170.0, np.nan], [np.nan, np.nan], [-160.0, 30.0]])
    expected = np.array([[np.nan, 10.0], [170.0, 20.0], [190.0, np.nan], [np.nan, np.nan], [200.0, 30.0]])
    np.testing.assert_allclose(unwrap_degrees(series), expected)


def test_speed_of_a_point_moving_steadily() -> None:
    times = np.arange(20) / 30.0
    positions = np.zeros((20, 1, 2))
    positions[:, 0, 0] = 3.0 * np.arange(20)  # 3 px per frame along x
    np.testing.assert_allclose(speed(positions, times), 90.0)
    diagonal = np.stack([3.0 * np.arange(20), 4.0 * np.arange(20)], axis=-1)
    np.testing.assert_allclose(speed(diagonal, times), 150.0)


def test_speed_with_variable_frame_rate_and_nan() -> None:
    times = np.array([0.0, 0.02, 0.05, 0.09, 0.1, 0.13])
    positions = np.stack([2.0 * times, np.zeros_like(times)], axis=-1)
    np.testing.assert_allclose(speed(positions, times), 2.0)
    positions[3] = np.nan
    result = speed(positions, times)
    assert np.isnan(result[2:5]).all()
    np.testing.assert_allclose(result[[0, 1, 5]], 2.0)


def test_angular_velocity_of_a_ramp_across_the_wrap() -> None:
    times = np.arange(30) / 30.0
    angles = (150.0 + 120.0 * times + 180.0) % 360.0 - 180.0  # 120 °/s, wrapping at 180°
    assert np.any(np.diff(angles) < -300)
    np.testing.assert_allclose(angular_velocity(angles[:, None], times), 120.0)


def _standing_skeleton(nose: tuple[float, float], heel_y: float) -> np.ndarray:
    pixels = np.full((LANDMARK_COUNT, 2), 300.0)
    pixels[INDEX["nose"]] = nose
    pixels[INDEX["left_heel"]] = (nose[0] + 20.0, heel_y)
    pixels[INDEX["right_heel"]] = (nose[0] - 20.0, heel_y)
    return pixels


def test_metres_per_pixel_from_height() -> None:
    frames = 5
    pixels = np.stack([
        np.stack([_standing_skeleton((200.0, 100.0), 500.0), _standing_skeleton((600.0, 50.0), 250.0)])
        for _ in range(frames)])  # person 0: 400 px nose to heel, person 1: 200 px
    visibility = np.ones((frames, 2, LANDMARK_COUNT))
    # A crouching frame and a hidden heel that must not count.
    pixels[0, 0, INDEX["nose"], 1] = 400.0
    pixels[1, 0, INDEX["left_heel"]] = (0.0, 0.0)
    visibility[1, 0, INDEX["left_heel"]] = 0.1
    scale = metres_per_pixel(pixels, visibility, height_m=1.8)
    np.testing.assert_allclose(scale, [1.8 / (400 * HEIGHT_PER_NOSE_TO_HEEL), 1.8 / (200 * HEIGHT_PER_NOSE_TO_HEEL)])

    visibility[:, 1, INDEX["nose"]] = 0.0
    scale = metres_per_pixel(pixels, visibility, height_m=1.8)
    assert np.isfinite(scale[0]) and np.isnan(scale[1])


def test_unwrap_leaves_a_left_right_swap_alone() -> None:
    # A pelvis line at about 175° that flips by about 180° for two frames when the model swaps sides.
    series = np.array([175.0, 178.0, -5.0, -2.0, 179.0, -178.0, -176.0])
    np.testing.assert_allclose(unwrap_degrees(series), [175, 178, -5, -2, 179, 182, 184])
