"""The camera encoders: pooling, keypoints, tokens, and image policies that save and export."""

from lam_ros.policy.checkpoint import load_checkpoint, save_checkpoint
from lam_ros.policy.config import PolicyConfig
from lam_ros.policy.export import export_policy
from lam_ros.policy.model import TransformerPolicy
from lam_ros.policy.vision import (
    ImageEncoder, make_image_encoder, pool_matrix, ResNetKeypointEncoder, SpatialSoftmax)
import pytest
import torch
from torch.nn import functional as F

from .helpers import IMAGE, JOINTS, random_obs, small_config

torch.set_num_threads(1)


@pytest.mark.parametrize('height, width, grid', [(6, 8, 2), (5, 7, 3), (1, 1, 2), (11, 3, 4)])
def test_pool_matrices_equal_adaptive_average_pooling(height, width, grid):
    x = torch.randn(3, 4, height, width, generator=torch.Generator().manual_seed(0))
    pooled = pool_matrix(height, grid) @ x @ pool_matrix(width, grid).T
    assert torch.allclose(pooled, F.adaptive_avg_pool2d(x, grid), atol=1e-6)


def test_encoder_tokens_and_state_dict():
    config = small_config(IMAGE, image_grid=3)
    encoder = ImageEncoder(3, (24, 32), config)
    tokens = encoder(torch.randn(5, 3, 24, 32))
    assert tokens.shape == (5, 9, config.d_model) and encoder.num_tokens == 9
    # The pooling matrices follow from the config: checkpoints hold weights only.
    assert not any(k.startswith('pool') for k in encoder.state_dict())


def test_spatial_softmax_finds_the_peak_of_each_map():
    softmax = SpatialSoftmax(channels=2, height=5, width=9, keypoints=2)
    with torch.no_grad():  # keypoint maps = the input channels, sharp temperature
        softmax.maps.weight.copy_(torch.eye(2)[:, :, None, None])
        softmax.maps.bias.zero_()
        softmax.log_temperature.fill_(-4.0)
    x = torch.zeros(1, 2, 5, 9)
    x[0, 0, 0, 8] = 1.0  # top right
    x[0, 1, 2, 0] = 1.0  # middle left
    points = softmax(x)[0]
    assert torch.allclose(points[0], torch.tensor([1.0, -1.0]), atol=1e-3)
    assert torch.allclose(points[1], torch.tensor([-1.0, 0.0]), atol=1e-3)
    assert 'coords' not in softmax.state_dict()


def test_resnet_encoder_tokens_follow_the_config():
    config = small_config(IMAGE, image_encoder='resnet', image_channels=(8, 16, 16),
                          image_grid=2, image_keypoints=6)
    encoder = make_image_encoder(3, (24, 32), config)
    assert isinstance(encoder, ResNetKeypointEncoder) and encoder.num_tokens == 4
    tokens = encoder(torch.randn(3, 3, 24, 32))
    assert tokens.shape == (3, 4, config.d_model)
    assert not any('coords' in k for k in encoder.state_dict())
    # Each output depends on its own image only (GroupNorm, no batch statistics).
    alone = encoder(torch.randn(3, 3, 24, 32, generator=torch.Generator().manual_seed(1))[:1])
    pair = encoder(torch.cat([
        torch.randn(3, 3, 24, 32, generator=torch.Generator().manual_seed(1))[:1],
        torch.randn(1, 3, 24, 32)]))
    assert torch.allclose(alone[0], pair[0], atol=1e-5)


def test_resnet_keypoints_move_with_the_object():
    # An untrained trunk is translation-equivariant enough that a bright square moving right
    # moves most keypoints right: positions reach the tokens, not just texture.
    torch.manual_seed(0)
    config = small_config({'joint_pos': (8,), 'scene_rgb': (32, 32, 3)}, image_encoder='resnet',
                          image_channels=(8, 8), image_keypoints=8)
    encoder = make_image_encoder(3, (32, 32), config).eval()
    left, right = torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)
    left[..., 12:18, 4:10] = 3.0
    right[..., 12:18, 22:28] = 3.0
    with torch.no_grad():
        dx = (encoder.keypoints(encoder.trunk(right)) -
              encoder.keypoints(encoder.trunk(left)))[0, :, 0]
    assert (dx > 0).float().mean() >= 0.75, dx


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(ValueError, match='image_encoder must be one of'):
        small_config(IMAGE, image_encoder='vit')
    with pytest.raises(ValueError, match='image_keypoints must be a positive int'):
        small_config(IMAGE, image_encoder='resnet', image_keypoints=0)


def test_old_configs_without_encoder_fields_load_as_the_cnn():
    data = small_config(IMAGE).to_dict()
    del data['image_encoder'], data['image_keypoints']
    assert PolicyConfig.from_dict(data).image_encoder == 'cnn'


def _resnet_policy(**overrides) -> TransformerPolicy:
    torch.manual_seed(0)
    config = small_config({'joint_pos': (8,), 'scene_rgb': (16, 20, 3), 'wrist_rgb': (16, 20, 3),
                           'scene_depth': (16, 20, 1)},
                          image_encoder='resnet', image_channels=(4, 8), image_keypoints=4,
                          history_len=2, chunk_size=4, **overrides)
    model = TransformerPolicy(config)
    with torch.no_grad():  # move every weight off its initial value
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_each_camera_has_its_own_encoder_and_tokens():
    model = _resnet_policy()
    assert sorted(model.image_enc) == ['scene_depth', 'scene_rgb', 'wrist_rgb']
    assert model.image_enc['scene_rgb'].trunk[0].weight.shape[1] == 3
    assert model.image_enc['wrist_rgb'].trunk[0].weight.shape[1] == 3
    assert model.image_enc['scene_depth'].trunk[0].weight.shape[1] == 1
    assert model.tokens_per_step == 1 + 3 * 4
    obs = random_obs(model.config, batch=2)
    base = model.predict(obs)
    for key in ('scene_depth', 'wrist_rgb'):  # every camera reaches the output
        changed = dict(obs, **{key: random_obs(model.config, batch=2, seed=9)[key]})
        assert not torch.allclose(model.predict(changed), base), key


def test_resnet_policy_save_load_round_trip_is_bit_identical(tmp_path):
    model = _resnet_policy(head='gaussian')
    path = save_checkpoint(tmp_path / 'ckpt', model, {'task': 'lift'})
    loaded, meta = load_checkpoint(path, expected_joint_names=list(JOINTS),
                                   expected_obs_spec=dict(model.config.obs_spec))
    assert meta == {'task': 'lift'} and loaded.config == model.config
    assert loaded.config.image_encoder == 'resnet'
    obs = random_obs(model.config, batch=3, seed=4)
    mask = torch.tensor([[False, True], [True, True], [True, True]])
    assert torch.equal(loaded.predict(obs, mask), model.predict(obs, mask))
    assert torch.equal(loaded.distribution(obs).stddev, model.distribution(obs).stddev)


def test_resnet_policy_exports_with_parity(tmp_path):
    model = _resnet_policy()
    path = save_checkpoint(tmp_path / 'ckpt', model, {'task': 'lift'})
    report = export_policy(str(path), formats=('onnx', 'torchscript'), check_batch=2, seeds=2)
    for name, error in report['parity_max_abs_error'].items():
        assert error < 1e-4, name
