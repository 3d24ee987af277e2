"""Behaviour cloning: end to end from bags, resume after an interruption, run files, errors."""

import csv
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from lam_ros.cli import main
from lam_ros.learn import bc as bc_module, run_files
from lam_ros.learn.bc import BCConfig, check_compatible, split_episodes, train_bc
from lam_ros.learn.evaluate import wilson_interval
from lam_ros.policy import load_checkpoint, PolicyConfig
from lam_ros.sim import JOINT_NAMES
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

STATE = {'joint_pos': (8,), 'joint_vel': (8,), 'gripper_width': (1,), 'object_pose': (7,)}
TINY = {'d_model': 32, 'n_heads': 2, 'n_layers': 1, 'history_len': 2, 'chunk_size': 5,
        'dropout': 0.0}


def tiny_config(obs_spec=None, **overrides):
    """Return a fast policy config for the 20 Hz lift demos."""
    return PolicyConfig(joint_names=JOINT_NAMES, obs_spec=obs_spec or STATE,
                        **{'control_rate_hz': 20.0, **TINY, **overrides})


def quick(**overrides):
    """Return a short BC run's config, without a progress bar."""
    base = {'steps': 20, 'batch_size': 16, 'eval_interval': 10, 'log_interval': 5,
            'warmup_steps': 5, 'progress': False, 'num_threads': 1}
    return BCConfig(**{**base, **overrides})


def test_demos_to_trained_checkpoint_to_rollouts_through_the_cli(lift_demos, tmp_path):
    run = tmp_path / 'run'
    code = main(['train', '--dataset', str(lift_demos), '--out', str(run), '--steps', '40',
                 '--batch-size', '32', '--d-model', '32', '--layers', '1', '--heads', '2',
                 '--eval-interval', '20', '--threads', '1', '--no-progress'])
    assert code == 0
    assert (lift_demos / 'dataset_cache.safetensors').is_file()
    model, meta = load_checkpoint(run / 'best')
    assert meta['task'] == 'lift' and meta['step'] in (20, 40)
    assert meta['joint_names'] == list(JOINT_NAMES) and meta['control_rate_hz'] == 20.0
    assert sorted(model.config.obs_spec) == sorted(STATE)  # no ee_pose by default
    assert len(meta['dataset_fingerprint']) == 64
    rows = list(csv.DictReader(open(run / 'metrics.csv')))
    assert [int(r['step']) for r in rows] == [20, 40]  # log_interval 50: evaluation rows
    assert rows[-1]['val_loss'] and float(rows[-1]['loss']) < float(rows[0]['loss'])
    assert (run / 'curves.png').read_bytes()[:4] == b'\x89PNG'
    out = tmp_path / 'eval.json'
    gif = tmp_path / 'rollout.gif'
    code = main(['eval', '--checkpoint', str(run / 'last'), '--episodes', '2', '--json',
                 str(out), '--gif', str(gif), '--video-episodes', '1'])
    assert code == 0
    result = json.loads(out.read_text())
    assert result['task'] == 'lift' and result['episodes'] == 2
    assert [r['seed'] for r in result['records']] == [1_000_000, 1_000_001]
    # Whatever this 40-step policy achieves, the report is consistent with its records.
    successes = sum(r['success'] for r in result['records'])
    assert result['successes'] == successes and result['success_rate'] == successes / 2
    assert result['success_ci95'] == pytest.approx(list(wilson_interval(successes, 2)))
    assert all(r['steps'] >= 1 for r in result['records'])
    assert gif.read_bytes()[:6] == b'GIF89a'


TRAIN_FLAGS = ['--d-model', '32', '--layers', '1', '--heads', '2', '--history', '2',
               '--chunk', '5', '--dropout', '0', '--steps', '300', '--batch-size', '16',
               '--eval-interval', '10', '--warmup-steps', '5', '--threads', '1',
               '--no-progress']


def test_ctrl_c_stops_a_real_training_run_and_a_rerun_resumes_it(lift_demos, tmp_path, capsys):
    """
    SIGINT to ``lam-ros train`` mid-run; a rerun resumes it.

    The resumed run ends on the weights of a run never interrupted (same batches, same
    optimizer moments).
    """
    assert main(['train', '--dataset', str(lift_demos), '--out', str(tmp_path / 'a'),
                 *TRAIN_FLAGS]) == 0
    run = tmp_path / 'b'
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.Popen([sys.executable, '-m', 'lam_ros.cli', 'train', '--dataset',
                             str(lift_demos), '--out', str(run), *TRAIN_FLAGS], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def saved_step():
        state = run_files.load_training_state(str(run / 'last'))
        return state[1]['step'] if state else 0
    try:
        deadline = time.monotonic() + 120.0
        while saved_step() < 20 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, 'the run ended before it could be interrupted'
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and 'done:' not in output, output
    interrupted_at = saved_step()
    assert 20 <= interrupted_at < 300
    _, meta = load_checkpoint(run / 'last')
    assert meta['step'] == interrupted_at
    capsys.readouterr()
    assert main(['train', '--dataset', str(lift_demos), '--out', str(run), *TRAIN_FLAGS]) == 0
    assert f'done: 300 steps ({300 - interrupted_at} this session' in capsys.readouterr().out
    steps = [r['step'] for r in run_files.read_metrics(str(run / 'metrics.csv'))]
    assert steps == sorted(set(steps)) and steps[-1] == 300  # no step logged twice
    a, _ = load_checkpoint(tmp_path / 'a' / 'last')
    b, meta = load_checkpoint(run / 'last')
    assert meta['step'] == 300
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6, msg=name)
    # A finished run asked again has nothing left to do.
    assert main(['train', '--dataset', str(lift_demos), '--out', str(run), *TRAIN_FLAGS]) == 0
    assert 'done: 300 steps (0 this session' in capsys.readouterr().out


def test_resuming_with_another_model_is_refused(lift_dataset, tmp_path):
    train_bc(lift_dataset, tiny_config(), quick(steps=10), str(tmp_path))
    with pytest.raises(ValueError, match='another policy config'):
        train_bc(lift_dataset, tiny_config(chunk_size=4), quick(steps=20), str(tmp_path))


def test_gaussian_head_trains_and_keeps_best_by_validation_loss(lift_dataset, tmp_path):
    result = train_bc(lift_dataset, tiny_config(head='gaussian'), quick(steps=30),
                      str(tmp_path))
    rows = run_files.read_metrics(result.metrics_csv)
    val = [r['val_loss'] for r in rows if r['val_loss'] is not None]
    assert len(val) == 3 and result.best_val_loss == pytest.approx(min(val), rel=1e-4)
    _, meta = load_checkpoint(result.best_checkpoint)
    assert meta['val_loss'] == pytest.approx(min(val), rel=1e-4)
    assert result.val_episodes and not set(result.val_episodes) & set(result.train_episodes)


@pytest.mark.parametrize('spec, message', [
    ({**STATE, 'goal_pose': (7,)}, "'goal_pose' is not in the dataset"),
    ({'joint_pos': (7,)}, r"'joint_pos' is \(8,\) in the dataset, \(7,\) in the policy"),
])
def test_dataset_without_the_policy_observations_is_refused(
        lift_dataset, spec, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        train_bc(lift_dataset, tiny_config(spec), quick(), str(tmp_path))
    assert not (tmp_path / 'last').exists()


def test_other_mismatches_are_refused(lift_dataset):
    with pytest.raises(ValueError, match='commands joints'):
        check_compatible(lift_dataset, PolicyConfig(joint_names=('a', 'b'), obs_spec=STATE,
                                                    control_rate_hz=20.0))
    with pytest.raises(ValueError, match='sampled at 20.0 Hz'):
        check_compatible(lift_dataset, tiny_config(control_rate_hz=10.0))


def test_episodes_are_split_whole_and_reproducibly(lift_dataset):
    train, val = split_episodes(lift_dataset, 0.25, seed=3)
    assert len(val) == 1 and len(train) == 3
    assert [e.name for e in split_episodes(lift_dataset, 0.25, seed=3)[1]] == [val[0].name]
    assert split_episodes(lift_dataset, 0.0, seed=3)[1] == []


def test_learning_rate_warms_up_then_decays_by_cosine():
    cfg = BCConfig(steps=110, lr=1e-3, warmup_steps=10, min_lr_fraction=0.1)
    lrs = np.array([cfg.lr_at(s) for s in range(110)])
    np.testing.assert_allclose(lrs[:10], 1e-4 * np.arange(1, 11))
    assert lrs[-1] == pytest.approx(1e-4) and np.all(np.diff(lrs[10:]) <= 0)


@pytest.mark.parametrize('field, value', [
    ('steps', 0), ('batch_size', -1), ('lr', 0.0), ('val_fraction', 1.0),
    ('grad_clip', float('nan')), ('device', 'gpu0'), ('warmup_steps', -1)])
def test_bad_bc_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field if field != 'device' else 'device'):
        BCConfig(**{field: value})


def test_the_last_command_is_held_past_the_episode_end_unless_disabled(lift_dataset):
    windows = bc_module._windows(lift_dataset.episodes[:1], tiny_config())
    last = len(windows) - 1  # the final step: only its first chunk step lies in the episode
    batch = windows.batch([last])
    held = bc_module._to_torch(batch, torch.device('cpu'), hold_last_action=True)
    masked = bc_module._to_torch(batch, torch.device('cpu'), hold_last_action=False)
    assert held[3].all() and masked[3].tolist() == [[True, False, False, False, False]]
    final = torch.from_numpy(lift_dataset.episodes[0].action[-1])
    assert torch.equal(held[2][0], final.expand(5, 8))
