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
from lam_ros.learn import run_files
from lam_ros.learn.bc import BCConfig, train_bc
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
    assert 'already complete: 300 of 300 steps' in capsys.readouterr().out


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


def test_a_dataset_of_one_arm_refuses_to_train_a_policy_for_another(
        lift_demos, lift_dataset, tmp_path, capsys):
    with pytest.raises(ValueError, match="recorded on robot 'panda' and cannot train a policy "
                                         "for robot 'xarm6'"):
        train_bc(lift_dataset, tiny_config(robot='xarm6'), quick(), str(tmp_path / 'run'))
    assert not (tmp_path / 'run' / 'last').exists()
    code = main(['train', '--dataset', str(lift_demos), '--robot', 'xarm6', '--out',
                 str(tmp_path / 'cli'), '--steps', '2', '--no-progress'])
    assert code == 2
    assert "recorded on robot 'panda' and cannot train a policy for robot 'xarm6'" in \
        capsys.readouterr().err


def _binary_panda(tmp_path):
    import yaml
    from lam_ros.description import load_robot
    data = load_robot('panda').to_dict()
    data['name'] = 'panda_binary'
    data['gripper'] = dict(data['gripper'], kind='binary')
    data['home_pose'][7] = 1.0
    data['urdf'] = load_robot('panda').urdf_path()
    path = tmp_path / 'panda_binary.yaml'
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize('robot, kind', [('xarm6', 'drive'), ('binary', 'binary')])
def test_gripper_kinds_round_trip_through_recording_dataset_and_policy(tmp_path, robot, kind):
    """
    Record demos on the arm, build the dataset, train, run the policy.

    The gripper entry keeps its meaning (a drive-joint angle; open 1 / closed 0) from the bag
    to the policy's output.
    """
    from lam_ros.data.bags.reader import read_dataset_yaml
    from lam_ros.data.dataset.build import build_dataset
    from lam_ros.data.recording.demos import DemoConfig, record_demos
    from lam_ros.description import load_robot
    from lam_ros.policy.runner import PolicyRunner
    from lam_ros.sim import make_env
    robot = _binary_panda(tmp_path) if robot == 'binary' else robot
    desc = load_robot(robot)
    out = tmp_path / 'demos'
    summary = record_demos(DemoConfig(task='lift', episodes=2, seed=0, robot=robot), out)
    assert summary['successes'] == 2
    meta = read_dataset_yaml(out)
    assert meta['robot'] == desc.name and meta['joint_names'] == list(desc.joint_names)
    assert meta['gripper']['kind'] == kind
    dataset = build_dataset(out)
    grip = np.concatenate([ep.action[:, desc.gripper_index] for ep in dataset.episodes])
    if kind == 'binary':
        assert set(np.unique(grip)) == {0.0, 1.0}
    else:
        assert grip.min() == pytest.approx(desc.gripper.open)
        assert grip.max() == pytest.approx(desc.gripper.closed)
    n = desc.action_dim
    spec = {'joint_pos': (n,), 'joint_vel': (n,), 'gripper_width': (1,), 'object_pose': (7,)}
    config = PolicyConfig(joint_names=desc.joint_names, obs_spec=spec, robot=robot,
                          **{'control_rate_hz': 20.0, **TINY})
    result = train_bc(dataset, config, quick(steps=10, eval_interval=10), str(tmp_path / 'run'))
    model, _ = load_checkpoint(result.last_checkpoint)
    runner = PolicyRunner(model)
    env = make_env('lift', robot=robot)
    try:
        obs, _ = env.reset(seed=5)
        for _ in range(5):
            action = runner.step(obs)
            assert action.shape == (n,)
            if kind == 'binary':
                assert action[desc.gripper_index] in (0.0, 1.0)
            obs, *_ = env.step(np.clip(action, env.action_space.low, env.action_space.high))
    finally:
        env.close()


class _HoldHome:
    """Operator of an arm without a gripper: holds the home pose (no grasp to script)."""

    def __init__(self, robot):
        self.home = np.array(robot.home_pose)

    def act(self, obs):
        """Return the home pose."""
        return self.home


def test_an_arm_without_a_gripper_round_trips_through_recording_dataset_and_policy(tmp_path):
    import yaml
    from lam_ros.data.dataset.build import build_dataset
    from lam_ros.data.recording.demos import _run_episode, demo_topics, DemoConfig
    from lam_ros.data.recording.recorder import DatasetRecorder
    from lam_ros.description import load_robot
    from lam_ros.policy.runner import PolicyRunner
    from lam_ros.sim import make_env
    panda = load_robot('panda')
    data = panda.to_dict()
    data.update(name='panda_bare', joint_names=list(panda.arm_joint_names),
                gripper={'kind': 'none'}, home_pose=list(panda.home_pose[:7]),
                urdf=panda.urdf_path())
    path = tmp_path / 'bare.yaml'
    path.write_text(yaml.safe_dump(data))
    robot = load_robot(str(path))
    cfg = DemoConfig(task='lift', episodes=1, robot=str(path))
    env = make_env('lift', robot=str(path), max_episode_steps=30)
    try:
        assert env.action_space.shape == (7,) and env.joint_state()[0] == robot.joint_names
        with DatasetRecorder(tmp_path / 'ds', robot.name, robot.joint_names,
                             demo_topics('lift', False, str(path)),
                             {'control_rate_hz': 20.0, 'state_rate_hz': 100.0}, 'lift',
                             action_topic=robot.topics.command,
                             gripper=robot.gripper.to_dict()) as rec:
            for seed in range(2):
                env.reset(seed=seed)
                rec.start_episode()
                _run_episode(env, _HoldHome(robot), cfg, rec)
                rec.stop_episode(False)
    finally:
        env.close()
    dataset = build_dataset(tmp_path / 'ds', include_failures=True)  # held still: no success
    assert dataset.joint_names == list(robot.joint_names)
    assert len(dataset.episodes) == 2, dataset.exclusions
    assert dataset.episodes[0].action.shape[1] == 7
    assert 'gripper_width' not in dataset.episodes[0].obs  # no gripper joints to sum
    spec = {'joint_pos': (7,), 'object_pose': (7,)}
    config = PolicyConfig(joint_names=robot.joint_names, obs_spec=spec, robot=str(path),
                          **{'control_rate_hz': 20.0, **TINY})
    result = train_bc(dataset, config, quick(steps=5, eval_interval=5, val_fraction=0.0),
                      str(tmp_path / 'run'))
    model, _ = load_checkpoint(result.last_checkpoint)
    obs = {'joint_pos': np.array(robot.home_pose, dtype=np.float32),
           'object_pose': np.array([0.5, 0, 0.025, 1, 0, 0, 0], dtype=np.float32)}
    assert PolicyRunner(model).step(obs).shape == (7,)
