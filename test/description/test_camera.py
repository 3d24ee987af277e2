"""Tests for the camera defaults and intrinsics."""

import math

from lam_ros.description import CameraConfig, pinhole_intrinsics
import numpy as np
import pytest


def test_intrinsics_project_the_field_of_view_onto_the_image_edge():
    k = pinhole_intrinsics(84, 64, 55.0)
    assert k[0, 0] == k[1, 1] and k[2, 2] == 1.0
    # A ray at half the vertical FOV lands on the top pixel centre's outer edge.
    y = k[1, 1] * math.tan(math.radians(27.5)) + k[1, 2]
    assert y == pytest.approx(63.5)
    np.testing.assert_allclose(k[:2, 2], [41.5, 31.5])
    np.testing.assert_array_equal(CameraConfig(width=84, height=64).intrinsics(), k)


def test_bad_camera_values_are_rejected():
    with pytest.raises(ValueError, match='fov_y_deg'):
        pinhole_intrinsics(84, 84, 180.0)
    with pytest.raises(ValueError, match='near_m'):
        CameraConfig(near_m=2.0, far_m=1.0)
