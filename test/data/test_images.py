"""Camera frames: one decoding and one resize for datasets and inference."""

from lam_ros.data.images import decode_frame, resize_frame, resize_frames
import numpy as np
import pytest


def test_colour_encodings_become_rgb_and_depth_becomes_metres():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(decode_frame(rgb, 'rgb8', 'rgb'), rgb)
    np.testing.assert_array_equal(decode_frame(rgb[..., ::-1], 'bgr8', 'rgb'), rgb)
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 9, np.uint8)], axis=2)
    np.testing.assert_array_equal(decode_frame(rgba, 'rgba8', 'rgb'), rgb)
    mono = decode_frame(rgb[..., :1], 'mono8', 'rgb')
    assert mono.shape == (2, 3, 3) and np.all(mono[..., 2] == rgb[..., 0])
    mm = np.array([[[1500], [0]]], dtype=np.uint16)
    np.testing.assert_allclose(decode_frame(mm, '16UC1', 'depth')[..., 0], [[1.5, 0.0]])
    metres = np.array([[[0.7], [np.nan], [np.inf]]], dtype=np.float32)
    out = decode_frame(metres, '32FC1', 'depth')
    assert out.dtype == np.float32 and out.shape == (1, 3, 1)
    np.testing.assert_allclose(out[..., 0], [[0.7, 0.0, 0.0]], rtol=1e-6)


@pytest.mark.parametrize('encoding, kind, words', [
    ('16UC1', 'rgb', 'colour images must be rgb8'), ('yuv422', 'rgb', 'yuv422'),
    ('rgb8', 'depth', 'depth images must be 32FC1'), ('rgb8', 'ir', "'rgb' or 'depth'")])
def test_an_encoding_that_does_not_fit_is_a_clear_error(encoding, kind, words):
    with pytest.raises(ValueError, match=words):
        decode_frame(np.zeros((2, 2, 1), np.uint16), encoding, kind)


def test_rgb_resizes_bilinearly_and_depth_to_the_nearest_pixel():
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, 32:] = 200
    small = resize_frame(rgb, (12, 16))
    assert small.shape == (12, 16, 3) and small.dtype == np.uint8
    assert small[0, 0, 0] == 0 and small[0, -1, 0] == 200 and 0 < small[0, 8, 0] < 200
    depth = np.full((48, 64, 1), 0.5, np.float32)
    depth[:, 32:] = 2.0
    out = resize_frame(depth, (12, 16))
    assert out.shape == (12, 16, 1) and out.dtype == np.float32
    assert set(np.unique(out).tolist()) == {0.5, 2.0}  # no depth between the two surfaces
    assert resize_frame(rgb, None) is rgb and resize_frame(rgb, (48, 64)) is rgb
    stack = resize_frames(np.stack([rgb, rgb]), (24, 32))
    assert stack.shape == (2, 24, 32, 3)
    with pytest.raises(ValueError, match='height, width'):
        resize_frame(rgb, (0, 16))
