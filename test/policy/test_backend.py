"""Policy backends: the node's forward pass equals the evaluation path's, in-process or not."""

from functools import partial

from lam_ros.policy import PolicyConfig, save_checkpoint, TransformerPolicy
from lam_ros.policy.backend import load_backend, ObservationHistory, ProcessBackend, TorchBackend
from lam_ros.policy.checkpoint import CheckpointError
from lam_ros.policy.runner import PolicyRunner
import numpy as np
import pytest
import torch


CONFIG = PolicyConfig(joint_names=('a', 'b', 'c'), obs_spec={'joint_pos': (3,),
                                                             'object_pose': (7,)},
                      chunk_size=5, history_len=3, d_model=16, n_heads=2, n_layers=1)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('ckpt') / 'policy'
    save_checkpoint(path, TransformerPolicy(CONFIG))
    return str(path)


def observations(n):
    rng = np.random.default_rng(0)
    return [{'joint_pos': rng.normal(size=3), 'object_pose': rng.normal(size=7)}
            for _ in range(n)]


def test_torch_backend_matches_the_policy_runner(checkpoint):
    backend = load_backend(checkpoint, device='cpu')
    runner = PolicyRunner(backend.model)
    history = ObservationHistory(backend.config)
    for obs in observations(4):  # past history_len: padding, then a full window
        history.append(obs)
        runner._history.append(runner.check_observation(obs))
        np.testing.assert_allclose(backend.predict_chunk(*history.stacked()),
                                   runner.predict_chunk(), atol=1e-6)
    assert backend.name == 'torch on cpu'


def test_history_masks_missing_steps_and_checks_observations():
    history = ObservationHistory(CONFIG)
    with pytest.raises(RuntimeError):
        history.stacked()
    history.append(observations(1)[0])
    obs, mask = history.stacked()
    assert obs['joint_pos'].shape == (1, 3, 3) and mask.tolist() == [[False, False, True]]
    with pytest.raises(ValueError, match='lacks'):
        history.append({'joint_pos': np.zeros(3)})
    with pytest.raises(ValueError, match='NaN'):
        history.append({'joint_pos': np.full(3, np.nan), 'object_pose': np.zeros(7)})


def test_process_backend_gives_the_same_chunks(checkpoint):
    local = load_backend(checkpoint, device='cpu')
    remote = ProcessBackend(partial(load_backend, checkpoint, 'torch', 'cpu'))
    try:
        assert remote.config == local.config and 'own process' in remote.name
        history = ObservationHistory(local.config)
        history.append(observations(1)[0])
        np.testing.assert_allclose(remote.predict_chunk(*history.stacked()),
                                   local.predict_chunk(*history.stacked()), atol=1e-6)
        with pytest.raises(RuntimeError, match='policy process'):
            remote.predict_chunk({'joint_pos': np.zeros((1, 3, 3))}, np.ones((1, 3), bool))
    finally:
        remote.close()


def test_process_backend_reports_a_bad_checkpoint(tmp_path):
    with pytest.raises(ValueError, match='no checkpoint directory'):
        ProcessBackend(partial(load_backend, str(tmp_path / 'missing'), 'torch', 'cpu'))


def test_refusals(checkpoint, tmp_path):
    with pytest.raises(ValueError, match='backend'):
        load_backend(checkpoint, backend='tensorrt')
    with pytest.raises(ValueError, match='CUDA'):
        TorchBackend(TransformerPolicy(CONFIG), half=True)
    bad = tmp_path / 'corrupt'
    save_checkpoint(bad, TransformerPolicy(CONFIG))
    weights = bad / 'model.safetensors'
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match='checksum'):
        load_backend(str(bad), device='cpu')
