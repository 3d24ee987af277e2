"""PolicyConfig: defaults, JSON round trip and clear errors on bad values."""

import json

from lam_ros.description import load_robot
from lam_ros.description.robot import robot_yaml_path
from lam_ros.policy.config import camera_name, image_channels, image_key, image_kind, PolicyConfig
import pytest
import yaml

from .helpers import IMAGE, JOINTS, STATE


def test_defaults_follow_the_contract():
    config = PolicyConfig(joint_names=list(JOINTS),
                          obs_spec={'joint_pos': [8], 'scene_rgb': [84, 84, 3]})
    assert config.action_dim == 8
    assert (config.history_len, config.chunk_size) == (2, 20)
    assert (config.d_model, config.n_heads, config.n_layers) == (64, 4, 2)
    assert config.obs_spec == {'joint_pos': (8,), 'scene_rgb': (84, 84, 3)}
    assert config.lowdim_keys == ('joint_pos',) and config.image_keys == ('scene_rgb',)


def test_json_round_trip():
    config = PolicyConfig(joint_names=JOINTS, obs_spec=IMAGE, head='gaussian',
                          regression_loss='mse', control_rate_hz=15.0, extra={'task': 'lift'})
    data = json.loads(json.dumps(config.to_dict()))
    assert PolicyConfig.from_dict(data) == config


@pytest.mark.parametrize('change, message', [
    ({'joint_names': []}, 'joint_names'),
    ({'joint_names': 'panda_joint1'}, 'joint_names'),
    ({'joint_names': ['a', 'a']}, 'duplicates'),
    ({'obs_spec': {}}, 'obs_spec is empty'),
    ({'obs_spec': {'joint_pos': (8, 2)}}, '1-D'),
    ({'obs_spec': {'joint_pos': (0,)}}, 'positive ints'),
    ({'obs_spec': {'scene_rgb': (84, 84, 1)}}, "'scene_rgb'"),
    ({'obs_spec': {'scene_depth': (84, 84, 3)}}, "'scene_depth'"),
    ({'obs_spec': {'Joint.pos': (8,)}}, 'identifier'),
    ({'obs_spec': {'action': (8,)}}, 'identifier'),
    ({'history_len': 0}, 'history_len'),
    ({'chunk_size': 2.5}, 'chunk_size'),
    ({'d_model': 130}, 'divisible'),
    ({'decoder_d_model': -1}, 'decoder_d_model'),
    ({'decoder_d_model': True}, 'decoder_d_model'),
    ({'decoder_d_model': 66}, 'decoder width'),
    ({'vector_tokens': 'pixel'}, 'vector_tokens'),
    ({'decoder_memory_tokens': 0}, 'decoder_memory_tokens'),
    ({'dropout': 1.0}, 'dropout'),
    ({'head': 'diffusion'}, 'head'),
    ({'regression_loss': 'huber'}, 'regression_loss'),
    ({'control_rate_hz': -20.0}, 'control_rate_hz'),
    ({'robot': ''}, 'robot'),
    ({'control_rate_hz': float('nan')}, 'control_rate_hz'),
    ({'log_std_min': 1.0, 'log_std_max': 0.0}, 'log_std_min'),
    ({'init_log_std': 5.0}, 'init_log_std'),
])
def test_bad_values_raise_value_error_naming_the_field(change, message):
    kwargs = {'joint_names': JOINTS, 'obs_spec': STATE}
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        PolicyConfig(**kwargs)


def test_a_config_from_before_the_token_fields_keeps_its_architecture():
    data = PolicyConfig(joint_names=JOINTS, obs_spec=STATE, d_model=256).to_dict()
    for name in ('vector_tokens', 'decoder_memory_tokens', 'decoder_d_model'):
        del data[name]
    old = PolicyConfig.from_dict(data)
    assert (old.vector_tokens, old.decoder_memory_tokens, old.decoder_width) == ('key', 1, 256)
    new = PolicyConfig(joint_names=JOINTS, obs_spec=STATE, d_model=256)
    assert (new.vector_tokens, new.decoder_memory_tokens, new.decoder_width) == ('key', 1, 128)


def test_decoder_width_defaults_to_d_model_capped():
    def width(**kw):
        return PolicyConfig(joint_names=JOINTS, obs_spec=STATE, **kw).decoder_width

    assert width() == 64 and width(d_model=512, n_heads=8) == 128
    assert width(d_model=512, n_heads=8, decoder_d_model=512) == 512


def test_from_dict_rejects_unknown_and_missing_fields():
    data = PolicyConfig(joint_names=JOINTS, obs_spec=STATE).to_dict()
    with pytest.raises(ValueError, match='unknown policy config fields'):
        PolicyConfig.from_dict({**data, 'n_experts': 4})
    del data['obs_spec']
    with pytest.raises(ValueError, match='missing required fields'):
        PolicyConfig.from_dict(data)


def test_rate_and_robot_default_to_the_robot_description(tmp_path):
    config = PolicyConfig(joint_names=JOINTS, obs_spec=STATE)
    assert config.robot == 'panda'
    assert config.control_rate_hz == load_robot('panda').control_rate_hz
    with open(robot_yaml_path('panda')) as f:
        data = yaml.safe_load(f)
    data.update(name='fast_panda', control_rate_hz=50.0)
    path = tmp_path / 'fast_panda.yaml'
    path.write_text(yaml.safe_dump(data))
    fast = PolicyConfig(joint_names=JOINTS, obs_spec=STATE, robot=str(path))
    assert fast.control_rate_hz == 50.0
    assert PolicyConfig.from_dict(fast.to_dict()) == fast


@pytest.mark.parametrize('key, kind, channels, camera', [
    ('scene_rgb', 'rgb', 3, 'scene'), ('wrist_depth', 'depth', 1, 'wrist'),
    ('left_wrist_rgb', 'rgb', 3, 'left_wrist'), ('joint_pos', None, None, None),
    ('rgb', None, None, None), ('depth', None, None, None), ('Scene_rgb', None, None, None),
    ('_rgb', None, None, None), ('scene_rgbd', None, None, None)])
def test_image_keys_are_camera_then_kind(key, kind, channels, camera):
    assert image_kind(key) == kind
    assert image_channels(key) == channels
    assert camera_name(key) == camera
    if camera is not None:
        assert image_key(camera, kind) == key


def test_image_key_rejects_bad_names():
    for camera, kind in (('Scene', 'rgb'), ('scene', 'ir'), ('', 'rgb'), ('2cam', 'depth')):
        with pytest.raises(ValueError, match='lower-case identifier'):
            image_key(camera, kind)


def test_cameras_and_image_keys_of_a_config():
    config = PolicyConfig(joint_names=JOINTS, obs_spec={
        **STATE, 'wrist_rgb': (16, 16, 3), 'scene_rgb': (24, 32, 3), 'scene_depth': (24, 32, 1)})
    assert config.image_keys == ('scene_depth', 'scene_rgb', 'wrist_rgb')
    assert config.cameras == ('scene', 'wrist')
    assert config.lowdim_keys == ('joint_pos', 'joint_vel')


@pytest.mark.parametrize('old', ['rgb', 'depth'])
def test_old_single_camera_keys_give_one_clear_error(old):
    shape = (84, 84, 3) if old == 'rgb' else (84, 84, 1)
    with pytest.raises(ValueError, match=r"old single-camera image keys.*'scene_rgb'"):
        PolicyConfig(joint_names=JOINTS, obs_spec={**STATE, old: shape})
