"""Exported policies (ONNX, TorchScript, torch.export): parity, the backend API, bad input."""

import json
import os

from lam_ros.cli import main as lam_ros
from lam_ros.policy import CheckpointError, save_checkpoint
from lam_ros.policy.export import example_inputs, export_policy, FORMATS, load_backend
import numpy as np
import pytest
import torch

from .helpers import fitted_model, IMAGE, small_config, STATE, synthetic_episode

torch.set_num_threads(1)
BACKENDS = ['torch'] + list(FORMATS)


def _checkpoint(directory, spec, **overrides):
    torch.manual_seed(0)
    pos, actions = synthetic_episode(length=30)
    config = small_config(spec, history_len=3, chunk_size=5, **overrides)
    model = fitted_model(config, pos, actions).eval()
    with torch.no_grad():  # move the weights away from their init so that errors show
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return save_checkpoint(os.path.join(directory, 'ckpt'), model, {'task': 'lift'}), model


# One token per step and a narrower decoder with several memory tokens per encoded token.
STEP_TOKENS = {'vector_tokens': 'step', 'decoder_memory_tokens': 4, 'decoder_d_model': 16}


@pytest.fixture(scope='module', params=[(STATE, {}), (IMAGE, {}), (STATE, STEP_TOKENS)],
                ids=['state', 'image', 'state_step_tokens'])
def exported(request, tmp_path_factory):
    spec, overrides = request.param
    path, model = _checkpoint(str(tmp_path_factory.mktemp('export')), spec, **overrides)
    return path, model, export_policy(path)


def _split(inputs):
    return {k: v for k, v in inputs.items() if k != 'obs_mask'}, inputs['obs_mask']


def test_every_format_matches_the_pytorch_model(exported):
    path, model, report = exported
    assert sorted(report['parity_max_abs_error']) == sorted(FORMATS)
    for name, error in report['parity_max_abs_error'].items():
        assert error < 1e-5, name
    with open(os.path.join(path, 'export', 'export.json')) as f:
        assert json.load(f)['parity_max_abs_error'] == report['parity_max_abs_error']
    # Other batch sizes than the traced one, padded history steps included.
    stats = model.normalizer.state_stats()
    for batch in (1, 3):
        obs, mask = _split(example_inputs(model.config, batch, seed=7, stats=stats))
        mask[0, :2] = False
        expected = model.predict({k: torch.from_numpy(v) for k, v in obs.items()},
                                 torch.from_numpy(mask)).numpy()
        assert np.abs(expected).max() > 0.1
        for name in BACKENDS:
            backend = load_backend(path, backend=name)
            assert backend.config == model.config and backend.metadata == {'task': 'lift'}
            chunk = backend.predict(obs, mask)
            assert chunk.shape == (batch, 5, 8) and chunk.dtype == np.float32
            np.testing.assert_allclose(chunk, expected, atol=1e-5, err_msg=name)


@pytest.mark.parametrize('name', BACKENDS)
def test_bad_observations_raise_one_clear_error(exported, name):
    path, model, _ = exported
    backend = load_backend(path, backend=name)
    obs, mask = _split(example_inputs(model.config, 2))
    with pytest.raises(ValueError, match=r"lacks \['joint_vel'\]"):
        backend.predict({k: v for k, v in obs.items() if k != 'joint_vel'}, mask)
    with pytest.raises(ValueError, match=r"obs\['joint_pos'\] has shape \(2, 3, 7\)"):
        backend.predict({**obs, 'joint_pos': obs['joint_pos'][..., :7]}, mask)
    with pytest.raises(ValueError, match=r"obs\['joint_pos'\] has shape \(3, 8\)"):
        backend.predict({**obs, 'joint_pos': obs['joint_pos'][0]}, mask)
    bad = obs['joint_vel'].copy()
    bad[1, -1, 0] = np.nan
    with pytest.raises(ValueError, match='NaN/Inf'):
        backend.predict({**obs, 'joint_vel': bad}, mask)
    with pytest.raises(ValueError, match='obs_mask must be a bool array'):
        backend.predict(obs, mask.astype(np.float32))
    with pytest.raises(ValueError, match='current'):
        backend.predict(obs, np.zeros_like(mask))
    if 'scene_rgb' in obs:
        with pytest.raises(ValueError, match='uint8'):
            backend.predict({**obs, 'scene_rgb': obs['scene_rgb'].astype(np.float32)}, mask)
    # No mask means every history step is valid; extra keys are ignored.
    assert backend.predict({**obs, 'ee_pose': np.zeros((2, 3, 7))}).shape == (2, 5, 8)


def test_missing_or_damaged_files_raise_checkpoint_errors(tmp_path):
    path, _ = _checkpoint(str(tmp_path), STATE)
    with pytest.raises(CheckpointError, match='run lam-ros export'):
        load_backend(path, backend='onnx')
    with pytest.raises(CheckpointError, match='no checkpoint directory'):
        load_backend(str(tmp_path / 'nowhere'), backend='torch')
    with pytest.raises(ValueError, match='backend must be one of'):
        load_backend(path, backend='tensorrt')
    with pytest.raises(ValueError, match='fp16 needs a CUDA device'):
        load_backend(path, backend='torch', fp16=True)
    with pytest.raises(ValueError, match='apply to the torch backend'):
        load_backend(path, backend='onnx', compiled=True)
    with pytest.raises(ValueError, match='formats must be'):
        export_policy(path, formats=['tflite'])
    export_policy(path, formats=['onnx'], seeds=1)
    with pytest.raises(CheckpointError, match='no torchscript export'):
        load_backend(path, backend='torchscript')
    onnx_file = os.path.join(path, 'export', 'policy.onnx')
    with open(onnx_file, 'r+b') as f:
        f.truncate(os.path.getsize(onnx_file) // 2)
    with pytest.raises(CheckpointError, match='checksum'):
        load_backend(os.path.join(path, 'export'), backend='onnx')


def test_cli_exports_and_reports_parity(tmp_path, capsys):
    path, _ = _checkpoint(str(tmp_path), STATE)
    out = str(tmp_path / 'deploy')
    assert lam_ros(['export', '--checkpoint', path, '--out', out, '--formats', 'onnx']) == 0
    printed = capsys.readouterr().out
    assert 'policy.onnx' in printed and 'max abs error vs PyTorch' in printed
    assert load_backend(out, backend='onnx').predict(
        _split(example_inputs(load_backend(out, 'onnx').config, 1))[0]).shape == (1, 5, 8)
    assert lam_ros(['export', '--checkpoint', str(tmp_path / 'missing')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error:') and 'missing' in err[0]
    # A tolerance nothing can meet makes the export fail loudly.
    assert lam_ros(['export', '--checkpoint', path, '--out', out, '--formats', 'onnx',
                    '--tolerance', '-1']) == 1
    assert 'do not deploy' in capsys.readouterr().err
