"""Trajectory following as a joint_trajectory_controller does it: linear, by joint name."""

from lam_ros.control.trajectory import points_by_name, TrajectoryFollower
import numpy as np
import pytest


def test_trajectory_follower_interpolates():
    follower = TrajectoryFollower()
    follower.start(1.0, [0.0, 0.0], [1.0, 3.0], np.array([[1.0, 2.0], [3.0, 2.0]]))
    np.testing.assert_allclose(follower.sample(1.5), [0.5, 1.0])
    np.testing.assert_allclose(follower.sample(3.0), [2.0, 2.0])
    np.testing.assert_allclose(follower.sample(9.0), [3.0, 2.0])
    assert not follower.active and follower.sample(10.0) is None
    with pytest.raises(ValueError, match='increasing'):
        follower.start(0.0, [0.0], [1.0, 1.0], np.zeros((2, 1)))


def test_points_by_name_keep_unnamed_joints_and_reject_unknown_ones():
    points = points_by_name(['a', 'b', 'c'], [1.0, 2.0, 3.0], ['c', 'a'], [[9.0, 8.0]])
    np.testing.assert_allclose(points, [[8.0, 2.0, 9.0]])
    with pytest.raises(ValueError, match=r"unknown or repeated joints \['x'\]"):
        points_by_name(['a'], [0.0], ['x'], [[0.0]])
    with pytest.raises(ValueError, match='repeated'):
        points_by_name(['a'], [0.0], ['a', 'a'], [[0.0, 0.0]])
    with pytest.raises(ValueError, match='point 0 has 2 positions for 1 joints'):
        points_by_name(['a'], [0.0], ['a'], [[0.0, 1.0]])
