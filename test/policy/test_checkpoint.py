"""Checkpoints: bit-identical round trips, atomic replacement, and one clear error per fault."""

import json
import os
import resource
import signal

from lam_ros.policy.checkpoint import (
    CheckpointError, CONFIG_FILE, load_checkpoint, read_checkpoint_config, resolve_device,
    save_checkpoint, WEIGHTS_FILE)
from lam_ros.policy.model import TransformerPolicy
import pytest
import torch

from .helpers import (
    fitted_model, IMAGE, JOINTS, random_obs, small_config, STATE, synthetic_episode)

torch.set_num_threads(1)


def _trained(spec=STATE, head='gaussian') -> TransformerPolicy:
    torch.manual_seed(0)
    pos, actions = synthetic_episode()
    if 'scene_rgb' in spec:
        model = TransformerPolicy(small_config(spec, head=head))
    else:
        model = fitted_model(small_config(spec, head=head), pos, actions)
    with torch.no_grad():  # move every weight off its initial value
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize('spec', [STATE, IMAGE], ids=['state', 'image'])
def test_save_load_gives_bit_identical_outputs(tmp_path, spec):
    model = _trained(spec)
    meta = {'task': 'lift', 'epochs': 3, 'success_rate': 0.5}
    path = save_checkpoint(tmp_path / 'ckpt', model, meta)
    assert sorted(os.listdir(path)) == [CONFIG_FILE, WEIGHTS_FILE]
    loaded, loaded_meta = load_checkpoint(path, expected_joint_names=list(JOINTS),
                                          expected_obs_spec=spec)
    assert loaded_meta == meta and not loaded.training
    assert loaded.config == model.config
    assert loaded.normalizer.is_fitted == model.normalizer.is_fitted
    obs = random_obs(model.config, batch=3)
    assert torch.equal(loaded.predict(obs), model.predict(obs))
    assert torch.equal(loaded.distribution(obs).stddev, model.distribution(obs).stddev)


def test_config_json_is_readable(tmp_path):
    model = _trained()
    save_checkpoint(tmp_path / 'ckpt', model, {'task': 'lift'})
    doc = read_checkpoint_config(tmp_path / 'ckpt')
    assert doc['joint_names'] == list(JOINTS)
    assert doc['obs_spec'] == {'joint_pos': [8], 'joint_vel': [8]}
    assert doc['control_rate_hz'] == 20.0 and doc['metadata'] == {'task': 'lift'}
    assert doc['robot'] == 'panda'
    assert doc['normalization']['action']['mean'] == \
        model.normalizer.stats['action'].mean.tolist()


def test_checkpoint_gets_the_umask_permissions_of_any_other_output(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / 'ckpt', _trained(), {})
        save_checkpoint(path, _trained(), {})  # the replacement path too
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o755
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        assert os.stat(os.path.join(path, name)).st_mode & 0o777 == 0o644


def test_overwrite_replaces_the_whole_checkpoint_and_leaves_no_temporaries(tmp_path):
    first, second = _trained(STATE), _trained(STATE, head='regression')
    save_checkpoint(tmp_path / 'ckpt', first, {'run': 1})
    save_checkpoint(tmp_path / 'ckpt', second, {'run': 2})
    loaded, meta = load_checkpoint(tmp_path / 'ckpt')
    assert meta == {'run': 2} and loaded.config.head == 'regression'
    assert os.listdir(tmp_path) == ['ckpt']


def test_failed_save_leaves_the_old_checkpoint_intact(tmp_path):
    save_checkpoint(tmp_path / 'ckpt', _trained(), {'run': 1})
    with pytest.raises(ValueError, match='JSON-safe'):
        save_checkpoint(tmp_path / 'ckpt', _trained(), {'run': object()})
    # A real write failure: a file-size limit half the weights' size, as a full disk cuts
    # the file short (EFBIG here, ENOSPC there: both an OSError from the same write).
    size = os.path.getsize(tmp_path / 'ckpt' / WEIGHTS_FILE)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, hard))
        with pytest.raises(OSError, match='File too large'):
            save_checkpoint(tmp_path / 'ckpt', _trained(head='regression'), {'run': 2})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    model, meta = load_checkpoint(tmp_path / 'ckpt')
    assert meta == {'run': 1} and model.config.head == 'gaussian'
    assert os.listdir(tmp_path) == ['ckpt']


def test_truncated_or_corrupted_weights(tmp_path):
    path = save_checkpoint(tmp_path / 'ckpt', _trained(), {})
    weights = os.path.join(path, WEIGHTS_FILE)
    data = open(weights, 'rb').read()
    with open(weights, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated, corrupted'):
        load_checkpoint(path)
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    with open(weights, 'wb') as f:
        f.write(bytes(flipped))
    with pytest.raises(CheckpointError, match='checksum'):
        load_checkpoint(path)


def test_missing_files_and_bad_json(tmp_path):
    with pytest.raises(CheckpointError, match='no checkpoint directory'):
        load_checkpoint(tmp_path / 'nowhere')
    path = save_checkpoint(tmp_path / 'ckpt', _trained(), {})
    os.remove(os.path.join(path, WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match='cannot read model.safetensors'):
        load_checkpoint(path)
    with open(os.path.join(path, CONFIG_FILE), 'w') as f:
        f.write('{"format": "lam_ros.policy", ')
    with pytest.raises(CheckpointError, match='not valid JSON'):
        load_checkpoint(path)
    os.remove(os.path.join(path, CONFIG_FILE))
    with pytest.raises(CheckpointError, match='cannot read config.json'):
        load_checkpoint(path)


def test_other_joints_or_observations_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / 'ckpt', _trained(), {})
    ur5 = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint', 'wrist_1_joint',
           'wrist_2_joint', 'wrist_3_joint']
    with pytest.raises(CheckpointError, match='commands joints'):
        load_checkpoint(path, expected_joint_names=ur5)
    with pytest.raises(CheckpointError, match='commands joints'):
        load_checkpoint(path, expected_joint_names=list(reversed(JOINTS)))
    with pytest.raises(CheckpointError, match='the policy observes'):
        load_checkpoint(path, expected_obs_spec={'joint_pos': (8,), 'scene_rgb': (84, 84, 3)})


def test_config_that_does_not_fit_the_weights(tmp_path):
    path = save_checkpoint(tmp_path / 'ckpt', _trained(), {})
    config_path = os.path.join(path, CONFIG_FILE)
    doc = json.load(open(config_path))
    doc['policy_config']['obs_spec']['joint_vel'] = [9]  # weights were made for (8,)
    json.dump(doc, open(config_path, 'w'))
    with pytest.raises(CheckpointError, match='do not fit the policy config'):
        load_checkpoint(path)
    doc['policy_config']['head'] = 'diffusion'
    json.dump(doc, open(config_path, 'w'))
    with pytest.raises(CheckpointError, match='invalid policy config'):
        load_checkpoint(path)
    doc['format_version'] = 99
    json.dump(doc, open(config_path, 'w'))
    with pytest.raises(CheckpointError, match='format version'):
        load_checkpoint(path)


def test_devices(tmp_path):
    assert resolve_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    with pytest.raises(ValueError, match='device must be'):
        resolve_device('tpu0')
    path = save_checkpoint(tmp_path / 'ckpt', _trained(), {})
    with pytest.raises(CheckpointError, match='device must be'):
        load_checkpoint(path, device='gpu please')
    model = load_checkpoint(path, device='auto')[0]
    assert next(model.parameters()).device.type == resolve_device('auto').type
