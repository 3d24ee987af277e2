"""``lam-ros train`` as a user runs it: Ctrl-C saves last/, a rerun resumes, a done run says so."""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from lam_ros.data.recording.demos import DemoConfig, record_demos
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ['--d-model', '16', '--heads', '2', '--layers', '1', '--history', '2', '--chunk', '4',
        '--batch-size', '8', '--threads', '1', '--no-progress']


@pytest.fixture(scope='module')
def demos(tmp_path_factory):
    """Two scripted lift episodes as recorder bags."""
    out = tmp_path_factory.mktemp('demos')
    record_demos(DemoConfig(task='lift', episodes=2, seed=0), out)
    return out


def _train(demos, run, steps, **popen):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get('PYTHONPATH', '')]), PYTHONUNBUFFERED='1')
    return subprocess.Popen(
        [sys.executable, '-m', 'lam_ros.cli', 'train', '--dataset', str(demos), '--out',
         str(run), '--steps', str(steps), '--eval-interval', '100000'] + TINY,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _step_of(checkpoint):
    return json.loads((checkpoint / 'config.json').read_text())['metadata']['step']


def test_ctrl_c_saves_last_and_a_rerun_resumes_from_that_step(demos, tmp_path):
    run = tmp_path / 'run'
    proc = _train(demos, run, 1_000_000)
    first = proc.stdout.readline()
    assert first.startswith('training on'), first + proc.stderr.read()
    time.sleep(2.0)  # some steps, far fewer than asked for
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert 'Traceback' not in err
    lines = [line for line in out.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith('interrupted at step '), out
    step = int(lines[0].split()[3].rstrip(';'))
    assert 0 < step < 1_000_000
    assert lines[0] == (f'interrupted at step {step}; saved {run / "last"}; rerun the same '
                        'command to resume')
    assert _step_of(run / 'last') == step

    again = _train(demos, run, step + 5)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert f'resuming from step {step} of {step + 5}' in out
    assert f'done: {step + 5} steps (5 this session' in out
    assert _step_of(run / 'last') == step + 5

    done = _train(demos, run, step + 5)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert f'already complete: {step + 5} of {step + 5} steps' in out
    assert 'resuming' not in out and f'--steps {2 * (step + 5)}' in out
