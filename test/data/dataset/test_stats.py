"""Tests for the one ``compute_stats``: exact pooling over parts, floors, images, bad input."""

from lam_ros.data.dataset.stats import compute_stats
from lam_ros.policy import compute_stats as policy_compute_stats
import numpy as np
import pytest


def test_parts_pool_exactly_like_one_array():
    rng = np.random.default_rng(0)
    parts = [{'joint_pos': rng.normal(i, 1.0 + i, (n, 8))} for i, n in enumerate((5, 40, 1))]
    pooled = np.concatenate([p['joint_pos'] for p in parts])
    split = compute_stats(parts)['joint_pos']
    whole = compute_stats({'joint_pos': pooled})['joint_pos']
    for name, expected in (('mean', pooled.mean(0)), ('std', pooled.std(0)),
                           ('min', pooled.min(0)), ('max', pooled.max(0))):
        np.testing.assert_allclose(split[name], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(whole[name], expected, rtol=1e-5, atol=1e-6)
        assert split[name].dtype == np.float32 and split[name].shape == (8,)
    assert policy_compute_stats is compute_stats  # one function for datasets and policies


def test_floor_images_and_scalars():
    stats = compute_stats({'goal_pose': np.ones((4, 7)), 'scene_rgb': np.full((2, 3, 3, 3), 7.0),
                           'time': np.arange(4.0)}, std_floor=0.01)
    np.testing.assert_array_equal(stats['goal_pose']['std'], np.full(7, 0.01, np.float32))
    assert stats['scene_rgb']['mean'].shape == (3,) and stats['scene_rgb']['mean'][0] == 7.0
    assert stats['time']['mean'].shape == () and stats['time']['mean'] == 1.5


@pytest.mark.parametrize('array, message', [
    (np.zeros((0, 3)), 'N > 0'), (np.array([[np.nan]]), 'NaN or Inf')])
def test_bad_arrays_are_rejected(array, message):
    with pytest.raises(ValueError, match=message):
        compute_stats({'x': array})
