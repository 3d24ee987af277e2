"""``lam-ros rl`` and ``lam-ros eval`` with an env given as --env module:factory."""

import json
import os
import signal
import subprocess
import sys
import time

from lam_ros.cli import main as lam_ros
from lam_ros.learn.bc import BCConfig, train_bc
from lam_ros.policy import load_checkpoint, PolicyConfig
from lam_ros.sim import JOINT_NAMES, make_env
import pytest

STATE = {'joint_pos': (8,), 'gripper_width': (1,), 'object_pose': (7,)}
TINY = {'d_model': 16, 'n_heads': 2, 'n_layers': 1, 'history_len': 2, 'chunk_size': 4,
        'dropout': 0.0}
CALLS = {'n': 0}


def quick_lift():
    """Build the test's own contract env: lift with 12-step episodes (counted)."""
    CALLS['n'] += 1
    return make_env('lift', max_episode_steps=12)


@pytest.fixture(scope='module')
def bc_checkpoint(tmp_path_factory):
    """Train a tiny gaussian BC checkpoint on 2 scripted lift demos."""
    from lam_ros.data.dataset.build import build_dataset
    from lam_ros.data.recording.demos import DemoConfig, record_demos
    root = tmp_path_factory.mktemp('rl_cli')
    record_demos(DemoConfig(task='lift', episodes=2, seed=0, noise_std_m=0.01), root / 'demos')
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec=STATE, head='gaussian', **TINY)
    result = train_bc(build_dataset(root / 'demos'), config,
                      BCConfig(steps=6, batch_size=8, eval_interval=6, warmup_steps=1,
                               val_fraction=0.0, progress=False), str(root / 'bc'), task='lift')
    return result.best_checkpoint


def test_rl_runs_against_the_env_factory_given_on_the_command_line(bc_checkpoint, tmp_path):
    before = CALLS['n']
    out = tmp_path / 'rl'
    code = lam_ros(['rl', '--checkpoint', bc_checkpoint, '--out', str(out), '--env',
                    f'{__name__}:quick_lift', '--env-steps', '48', '--num-envs', '2',
                    '--vector', 'sync', '--rollout-steps', '12', '--minibatch-size', '12',
                    '--eval-interval', '24', '--eval-episodes', '2', '--critic-warmup', '1',
                    '--threads', '1', '--no-progress'])
    assert code == 0
    assert CALLS['n'] > before  # the factory built the envs
    _, meta = load_checkpoint(out / 'best')
    assert meta['env'] == f'{__name__}:quick_lift' and meta['rl']['env_steps'] in (0, 24, 48)
    _, last = load_checkpoint(out / 'last')
    assert last['rl']['env_steps'] == 48
    result = tmp_path / 'eval.json'
    code = lam_ros(['eval', '--checkpoint', str(out / 'best'), '--env',
                    f'{__name__}:quick_lift', '--episodes', '2', '--json', str(result)])
    assert code == 0
    report = json.loads(result.read_text())
    assert report['episodes'] == 2 and all(r['steps'] <= 12 for r in report['records'])


@pytest.mark.parametrize('spec,message', [
    ('nocolon', 'expected package.module:factory'),
    ('no_such_pkg_zz.envs:make', "cannot import 'no_such_pkg_zz.envs'"),
    (f'{__name__}:nothing_here', 'has no callable'),
])
def test_bad_env_is_one_error_line_and_nothing_is_overwritten(bc_checkpoint, tmp_path, capsys,
                                                              spec, message):
    out = tmp_path / 'rl'
    out.mkdir()
    (out / 'metrics.csv').write_text('precious\n')
    code = lam_ros(['rl', '--checkpoint', bc_checkpoint, '--out', str(out), '--env', spec,
                    '--no-progress'])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and err.startswith('error:') and message in err
    assert sorted(os.listdir(out)) == ['metrics.csv']
    assert (out / 'metrics.csv').read_text() == 'precious\n'
    code = lam_ros(['eval', '--checkpoint', bc_checkpoint, '--env', spec, '--episodes', '1'])
    err = capsys.readouterr().err.strip()
    assert code != 0 and message in err.splitlines()[-1]


def test_ctrl_c_saves_a_loadable_last_and_exits_130(bc_checkpoint, tmp_path):
    out = tmp_path / 'rl'
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.Popen(
        [sys.executable, '-m', 'lam_ros.cli', 'rl', '--checkpoint', bc_checkpoint, '--out',
         str(out), '--env-steps', '100000', '--num-envs', '2', '--rollout-steps', '8',
         '--minibatch-size', '8', '--eval-interval', '100000', '--eval-episodes', '1',
         '--threads', '1', '--no-progress'],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline and not _updates(out / 'metrics.csv'):
            time.sleep(0.5)
        assert _updates(out / 'metrics.csv'), 'no update within 120 s'
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, output
    assert 'interrupted' in output
    _, meta = load_checkpoint(out / 'last')
    assert meta['rl']['env_steps'] >= 16


def _default_sigint():
    # A shell's background jobs start with SIGINT ignored; a terminal's foreground does not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _updates(path):
    return path.is_file() and len(path.read_text().splitlines()) > 2
