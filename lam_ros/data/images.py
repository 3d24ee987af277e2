"""
Camera frames as the policy sees them: one decoding and one resize, for datasets and inference.

The dataset builder and the inference node both turn ``sensor_msgs/Image`` pixels into
observation arrays here, so a policy runs on frames made exactly as its training frames were:
colour -> uint8 RGB (H, W, 3), resized bilinearly (with antialiasing when shrinking); depth ->
float32 metres (H, W, 1), pixels without a return (NaN/Inf) as 0, resized to the nearest
pixel so that no depth between two surfaces is invented.
"""

from typing import Optional, Sequence, Tuple

import numpy as np

RGB_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8')
"""Colour encodings accepted for ``<camera>_rgb``."""
DEPTH_ENCODINGS = ('32FC1', '16UC1')
"""Depth encodings accepted for ``<camera>_depth``: metres, or millimetres."""


def decode_frame(pixels: np.ndarray, encoding: str, kind: str) -> np.ndarray:
    """
    Return decoded Image pixels (H, W, C) as a ``kind`` ('rgb' or 'depth') frame.

    rgb: uint8 (H, W, 3); depth: float32 (H, W, 1) metres. An encoding that does not fit
    ``kind`` raises ValueError naming the accepted ones.
    """
    if kind == 'rgb':
        if encoding in ('rgb8', 'rgba8'):
            array = pixels[..., :3]
        elif encoding in ('bgr8', 'bgra8'):
            array = pixels[..., 2::-1]
        elif encoding == 'mono8':
            array = np.repeat(pixels[..., :1], 3, axis=2)
        else:
            raise ValueError(f'colour images must be {", ".join(RGB_ENCODINGS)}, got '
                             f'{encoding!r}')
        return np.ascontiguousarray(array, dtype=np.uint8)
    if kind == 'depth':
        if encoding == '32FC1':
            array = pixels[..., :1].astype(np.float32)
        elif encoding == '16UC1':
            array = pixels[..., :1].astype(np.float32) / 1000.0
        else:
            raise ValueError(f'depth images must be 32FC1 (m) or 16UC1 (mm), got {encoding!r}')
        return np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
    raise ValueError(f"image kind must be 'rgb' or 'depth', got {kind!r}")


def resize_frame(frame: np.ndarray, size: Optional[Sequence[int]]) -> np.ndarray:
    """
    Return ``frame`` (H, W, 3) uint8 or (H, W, 1) float32 resized to ``size`` = (H, W).

    None or the frame's own size returns it unchanged; the aspect ratio is not kept (the
    policy's input is a fixed grid).
    """
    if size is None:
        return frame
    height, width = _size(size)
    if frame.shape[:2] == (height, width):
        return frame
    from PIL import Image
    if frame.dtype == np.uint8 and frame.shape[2] == 3:
        resized = Image.fromarray(frame).resize((width, height), Image.BILINEAR)
        return np.asarray(resized, dtype=np.uint8)
    image = Image.fromarray(np.ascontiguousarray(frame[..., 0], dtype=np.float32))
    resized = image.resize((width, height), Image.NEAREST)
    return np.asarray(resized, dtype=np.float32).reshape(height, width, 1)


def resize_frames(frames: np.ndarray, size: Optional[Sequence[int]]) -> np.ndarray:
    """Return a stack of frames (T, H, W, C) resized to ``size`` = (H, W) (see resize_frame)."""
    if size is None or frames.shape[1:3] == _size(size):
        return frames
    return np.stack([resize_frame(f, size) for f in frames])


def _size(size: Sequence[int]) -> Tuple[int, int]:
    if len(size) != 2 or not all(int(v) == v and v >= 1 for v in size):
        raise ValueError(f'an image size is (height, width) in pixels, got {tuple(size)!r}')
    return int(size[0]), int(size[1])
