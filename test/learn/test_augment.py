"""Random-shift augmentation: integer shifts of whole samples, uint8 in, uint8 out."""

from lam_ros.learn.augment import augment_images, random_shift
import pytest
import torch


def _images(batch=6, steps=2, height=10, width=12, channels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, steps, height, width, channels), generator=g,
                         dtype=torch.uint8)


def _find_shift(original, moved, max_shift):
    """Return the (dy, dx) that maps original onto moved in the interior, or None."""
    h, w = original.shape[1:3]
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            rows = slice(max(0, -dy), min(h, h - dy))
            cols = slice(max(0, -dx), min(w, w - dx))
            src = original[:, max(0, dy):max(0, dy) + rows.stop - rows.start,
                           max(0, dx):max(0, dx) + cols.stop - cols.start]
            if torch.equal(moved[:, rows, cols], src):
                return dy, dx
    return None


def test_each_sample_moves_as_a_whole_by_at_most_max_shift():
    images = _images()
    moved = random_shift(images, 3, torch.Generator().manual_seed(1))
    assert moved.shape == images.shape and moved.dtype == torch.uint8
    shifts = []
    for b in range(images.shape[0]):
        # All history steps of a sample share one shift (a still camera).
        shift = _find_shift(images[b], moved[b], 3)
        assert shift is not None
        shifts.append(shift)
    assert len(set(shifts)) > 1  # samples get their own shifts
    assert not torch.equal(moved, images)


def test_edges_repeat_and_content_is_never_invented():
    images = _images(batch=8)
    moved = random_shift(images, 4, torch.Generator().manual_seed(2))
    for b in range(8):
        values = set(map(tuple, images[b].reshape(-1, 3).tolist()))
        assert set(map(tuple, moved[b].reshape(-1, 3).tolist())) <= values


def test_zero_shift_is_the_identity_and_seeds_repeat():
    images = _images()
    assert random_shift(images, 0, torch.Generator()) is images
    a = random_shift(images, 2, torch.Generator().manual_seed(5))
    b = random_shift(images, 2, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_bad_shapes_and_shifts_are_errors():
    with pytest.raises(ValueError, match='batch, steps, height, width, channels'):
        random_shift(torch.zeros(2, 8, 8, 3, dtype=torch.uint8), 2, torch.Generator())
    with pytest.raises(ValueError, match='max_shift must be >= 0'):
        random_shift(_images(), -1, torch.Generator())


def test_augment_images_shifts_only_the_named_keys():
    obs = {'scene_rgb': _images(), 'joint_pos': torch.randn(6, 2, 8)}
    before = {k: v.clone() for k, v in obs.items()}
    augment_images(obs, ['scene_rgb'], 3, torch.Generator().manual_seed(0))
    assert torch.equal(obs['joint_pos'], before['joint_pos'])
    assert not torch.equal(obs['scene_rgb'], before['scene_rgb'])
