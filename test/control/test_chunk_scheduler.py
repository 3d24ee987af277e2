"""ChunkScheduler: time-indexed ensembling, interpolation between policy steps, rejection."""

from lam_ros.control.chunk_scheduler import ChunkScheduler
import numpy as np
import pytest


def ramp(start: float, k: int = 4, a: int = 2) -> np.ndarray:
    """Chunk whose step i commands start + i on every joint."""
    return np.repeat((start + np.arange(k, dtype=float))[:, None], a, axis=1)


def test_interpolates_between_policy_steps():
    s = ChunkScheduler(4, 2, policy_rate_hz=10.0)
    s.start(100.0)
    assert s.add_chunk(0, ramp(0.0))
    np.testing.assert_allclose(s.target(100.0), [0.0, 0.0])
    np.testing.assert_allclose(s.target(100.025), [0.25, 0.25])
    np.testing.assert_allclose(s.target(100.15), [1.5, 1.5])
    # The last step of the chunk has no successor: it is held.
    np.testing.assert_allclose(s.target(100.35), [3.0, 3.0])
    assert s.target(100.45) is None


def test_hold_mode_keeps_each_step_target():
    s = ChunkScheduler(4, 2, policy_rate_hz=10.0, interpolate=False)
    s.start(0.0)
    s.add_chunk(0, ramp(0.0))
    np.testing.assert_allclose(s.target(0.09), [0.0, 0.0])
    np.testing.assert_allclose(s.target(0.11), [1.0, 1.0])


def test_late_chunk_counts_for_the_steps_it_covers_and_blends():
    s = ChunkScheduler(4, 1, policy_rate_hz=10.0, decay=0.0, interpolate=False)
    s.start(0.0)
    s.add_chunk(0, ramp(0.0, a=1))
    np.testing.assert_allclose(s.target(0.21), [2.0])
    # Observed at step 1, arriving during step 2: covers steps 1..4, blended with the first.
    assert s.add_chunk(1, ramp(10.0, a=1))
    np.testing.assert_allclose(s.target(0.22), [(2.0 + 11.0) / 2])
    np.testing.assert_allclose(s.target(0.41), [13.0])


def test_rejects_bad_chunks_without_changing_anything():
    s = ChunkScheduler(4, 2, policy_rate_hz=10.0)
    s.start(0.0)
    s.add_chunk(0, ramp(1.0))
    before = s.target(0.05)
    bad = ramp(5.0)
    bad[1, 0] = np.nan
    assert not s.add_chunk(1, bad)
    assert 'NaN' in s.reason
    assert not s.add_chunk(1, np.zeros((3, 2)))
    assert 'shape' in s.reason
    assert not s.add_chunk(-1, ramp(0.0))
    assert s.chunks_rejected == 3 and s.chunks_added == 1
    np.testing.assert_allclose(s.target(0.05), before)


def test_start_forgets_chunks_and_moves_step_zero():
    s = ChunkScheduler(4, 2, policy_rate_hz=10.0)
    s.start(0.0)
    s.add_chunk(0, ramp(0.0))
    s.start(5.0)
    assert s.target(5.01) is None
    assert s.step_at(5.0) == 0 and s.step_at(5.25) == 2 and s.step_at(4.95) == -1
    assert s.step_time(3) == pytest.approx(5.3)


def test_target_before_start_is_none_and_bad_rate_raises():
    assert ChunkScheduler(2, 1, 5.0).target(0.0) is None
    with pytest.raises(ValueError, match='policy_rate_hz'):
        ChunkScheduler(2, 1, 0.0)
