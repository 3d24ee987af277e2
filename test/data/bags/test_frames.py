"""Transforms between frames, the static tree, and the base-frame check."""

from lam_ros.data.bags.frames import (
    apply, as_transform, BaseFrame, chain, compose, FrameError, invert)
import numpy as np
import pytest
from transforms3d import affines, euler, quaternions


def random_pose(rng):
    """Return a random pose [x, y, z, qw, qx, qy, qz]."""
    return np.r_[rng.normal(size=3), euler.euler2quat(*rng.uniform(-np.pi, np.pi, 3))]


def matrix(pose):
    """4x4 matrix of a pose."""
    return affines.compose(pose[:3], quaternions.quat2mat(pose[3:]), np.ones(3))


def test_compose_invert_apply_agree_with_matrices():
    rng = np.random.default_rng(1)
    a, b = random_pose(rng), random_pose(rng)
    np.testing.assert_allclose(matrix(compose(a, b)), matrix(a) @ matrix(b), atol=1e-12)
    np.testing.assert_allclose(matrix(invert(a)), np.linalg.inv(matrix(a)), atol=1e-12)
    poses = np.stack([random_pose(rng) for _ in range(4)])
    for out, pose in zip(apply(a, poses), poses):
        np.testing.assert_allclose(matrix(out), matrix(a) @ matrix(pose), atol=1e-12)


def test_chain_walks_the_tree_both_ways_and_stops_where_it_ends():
    rng = np.random.default_rng(2)
    world_base, world_table, table_cam = (random_pose(rng) for _ in range(3))
    edges = [('world', 'base', world_base), ('world', 'table', world_table),
             ('table', 'cam', table_cam)]
    expected = np.linalg.inv(matrix(world_base)) @ matrix(world_table) @ matrix(table_cam)
    np.testing.assert_allclose(matrix(chain('base', 'cam', edges)), expected, atol=1e-12)
    assert chain('base', 'elsewhere', edges) is None


def test_base_frame_prefers_the_declared_transform_and_refuses_unknown_frames():
    declared = [1.0, 2.0, 3.0, 1.0, 0.0, 0.0, 0.0]
    base = BaseFrame('/base_link', {'world': declared},
                     [('world', 'base_link', as_transform(declared, 'x'))])
    np.testing.assert_allclose(base.transform_of('/world', '/obj'), declared)
    assert base.transform_of('base_link', '/obj') is None
    with pytest.raises(FrameError, match=r"/obj poses are in 'map'.*/tf_static has no path"):
        base.transform_of('map', '/obj')
    with pytest.raises(FrameError, match='an empty frame_id'):
        BaseFrame('base_link').transform_of('', '/obj')


def test_bad_transforms_are_refused_with_the_expected_form():
    with pytest.raises(ValueError, match=r'7 finite floats \[x, y, z, qw, qx, qy, qz\]'):
        as_transform([0, 0, 0], 'frame_transforms')
    with pytest.raises(ValueError, match='norm 0.0000'):
        as_transform([0, 0, 0, 0, 0, 0, 0], 'frame_transforms')
