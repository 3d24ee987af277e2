"""Normalizer: fitted statistics, exact round trips, images, and bad statistics."""

from lam_ros.policy.normalization import compute_stats, MIN_STD, Normalizer
import numpy as np
import pytest
import torch

from .helpers import IMAGE, small_config

torch.set_num_threads(1)


def _fitted(rng: np.random.Generator):
    config = small_config(IMAGE)
    data = {'joint_pos': rng.normal(0.3, 0.7, (500, 8)),
            'joint_vel': rng.normal(-1.0, 2.0, (500, 8)),
            'action': rng.normal(0.1, 0.5, (500, 8))}
    data['action'][:, 7] = 0.04  # a constant dimension (gripper never moved)
    normalizer = Normalizer(config)
    normalizer.fit(compute_stats(data))
    return normalizer, data


def test_fit_standardises_and_round_trips():
    normalizer, data = _fitted(np.random.default_rng(0))
    assert normalizer.is_fitted
    for key in ('joint_pos', 'joint_vel', 'action'):
        x = torch.from_numpy(data[key]).float()
        z = normalizer.normalize(key, x)
        if key != 'action':
            assert torch.allclose(z.mean(0), torch.zeros(8), atol=1e-4)
            assert torch.allclose(z.std(0, unbiased=False), torch.ones(8), atol=1e-4)
        assert torch.allclose(normalizer.unnormalize(key, z), x, atol=1e-5, rtol=1e-6)


def test_constant_dimension_keeps_unit_std():
    normalizer, _ = _fitted(np.random.default_rng(1))
    std = normalizer.stats['action'].std
    assert std[7] == 1.0 and bool((std[:7] > MIN_STD).all())
    z = normalizer.normalize('action', torch.full((1, 8), 0.04))
    assert abs(float(z[0, 7])) < 1e-6


def test_images_are_scaled_then_standardised():
    normalizer, _ = _fitted(np.random.default_rng(2))
    rgb = torch.tensor([[[0, 255, 51]]], dtype=torch.uint8)  # (1, 1, 3)
    expected = (torch.tensor([0.0, 1.0, 0.2]) - torch.tensor([0.485, 0.456, 0.406])) / \
        torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(normalizer.normalize('scene_rgb', rgb)[0, 0], expected, atol=1e-6)
    depth = torch.tensor([[[-1.0], [1.0], [9.0]]])  # clipped to [0, 2] m, scaled to [0, 1]
    assert torch.allclose(normalizer.normalize('scene_depth', depth).flatten(),
                          (torch.tensor([0.0, 0.5, 1.0]) - 0.5) / 0.25)
    with pytest.raises(ValueError, match='uint8'):
        normalizer.normalize('scene_rgb', rgb.float())


def test_statistics_are_buffers_in_the_state_dict():
    normalizer, _ = _fitted(np.random.default_rng(3))
    state = normalizer.state_dict()
    assert 'stats.joint_pos.mean' in state and 'stats.action.std' in state
    copy = Normalizer(small_config(IMAGE))
    copy.load_state_dict(state)
    assert torch.equal(copy.stats['joint_vel'].mean, normalizer.stats['joint_vel'].mean)


def test_bad_statistics_raise_clear_errors():
    normalizer = Normalizer(small_config(IMAGE))
    good = compute_stats({k: np.zeros((3, 8)) for k in ('joint_pos', 'joint_vel', 'action')})
    with pytest.raises(ValueError, match=r"lack keys \['joint_vel'\]"):
        normalizer.fit({k: v for k, v in good.items() if k != 'joint_vel'})
    with pytest.raises(ValueError, match='shape'):
        normalizer.fit({**good, 'action': {'mean': np.zeros(7), 'std': np.ones(7)}})
    with pytest.raises(ValueError, match='not finite'):
        normalizer.fit({**good, 'action': {'mean': np.full(8, np.nan), 'std': np.ones(8)}})
    with pytest.raises(ValueError, match='NaN'):
        compute_stats({'joint_pos': np.array([[np.inf]])})
    assert not normalizer.is_fitted
