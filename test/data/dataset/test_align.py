"""Resampling primitives: slerp along the shorter arc, interpolation at integer-ns grid times."""

from lam_ros.data.bags.reader import Stream
from lam_ros.data.dataset.align import BuildOptions, interpolate_pose, slerp
import numpy as np
import pytest


def zrot(angle):
    """Quaternion (w-first) of a rotation about z."""
    return np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])


def test_slerp_follows_a_constant_rotation_rate():
    alpha = np.linspace(0.0, 1.0, 11)
    q = slerp(np.tile(zrot(0.2), (11, 1)), np.tile(zrot(1.4), (11, 1)), alpha)
    np.testing.assert_allclose(q, np.stack([zrot(0.2 + 1.2 * a) for a in alpha]), atol=1e-12)


def test_slerp_takes_the_shorter_arc_and_keeps_the_nearer_sign():
    # zrot(3.0) and -zrot(3.3) are 0.3 rad apart; naive blending would swing through ~6 rad.
    q0, q1 = zrot(3.0), -zrot(3.3)
    q = slerp(np.stack([q0] * 3), np.stack([q1] * 3), np.array([0.0, 0.25, 1.0]))
    np.testing.assert_allclose(q[0], q0, atol=1e-12)
    np.testing.assert_allclose(q[2], q1, atol=1e-12)  # the raw sample, sign included
    np.testing.assert_allclose(np.abs(q[1] @ zrot(3.075)), 1.0, atol=1e-12)


def test_interpolate_pose_on_integer_ns_grid():
    times = np.array([0, 100_000_000, 200_000_000], dtype=np.int64) + 10**18
    values = np.stack([np.r_[[0.0, 0, 0], zrot(0.0)], np.r_[[1.0, 0, 0], zrot(0.5)],
                       np.r_[[3.0, 0, 0], zrot(1.0)]])
    grid = np.array([0, 50_000_000, 100_000_000, 150_000_000], dtype=np.int64) + 10**18
    out = interpolate_pose(Stream(times, values), grid)
    np.testing.assert_allclose(out[:, 0], [0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(out[:, 3:], np.stack([zrot(a) for a in (0, .25, .5, .75)]),
                               atol=1e-12)


@pytest.mark.parametrize('field,value', [('rate_hz', 0.0), ('max_gap_s', -1.0),
                                         ('std_floor', float('nan')),
                                         ('min_duration_s', -0.1)])
def test_build_options_reject_nonsense(field, value):
    with pytest.raises(ValueError, match=field):
        BuildOptions(**{field: value})
