"""The ROS-free pipeline: bags -> BC -> RL -> evaluation -> export, stop, resume, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

from lam_ros.cli import main
from lam_ros.learn.pipeline import run_pipeline
from lam_ros.learn.pipeline_config import load_pipeline_config, PipelineConfig
from lam_ros.policy import load_checkpoint
import pytest

TINY = {'d_model': 32, 'n_heads': 2, 'n_layers': 1, 'chunk_size': 5, 'dropout': 0.0,
        'num_threads': 1, 'device': 'cpu', 'bc_steps': 20, 'bc_eval_interval': 10,
        'eval_episodes': 1, 'rl_env_steps': 0}
RL = {'rl_env_steps': 32, 'rl_num_envs': 2, 'rl_rollout_steps': 8, 'rl_eval_interval': 32,
      'rl_eval_episodes': 1}


def test_the_whole_pipeline_exports_an_evaluated_checkpoint_and_resumes(lift_demos, tmp_path):
    config = PipelineConfig(dataset=str(lift_demos), output_dir=str(tmp_path), **{**TINY, **RL})
    seen = []
    result = run_pipeline(config, on_progress=seen.append)
    assert result.status == 'done' and set(result.evaluations) == {'bc', 'rl'}
    assert result.chosen in ('bc', 'rl') and result.best_checkpoint == str(tmp_path / 'policy')
    model, meta = load_checkpoint(result.best_checkpoint)
    assert meta['task'] == 'lift' and meta['pipeline']['stage'] == result.chosen
    assert model.config.head == 'gaussian'
    stages = [p.stage for p in seen]
    for stage in ('dataset', 'bc', 'rl', 'evaluate', 'export', 'done'):
        assert stage in stages
    assert stages.index('bc') < stages.index('rl') < stages.index('evaluate') < \
        stages.index('done')
    assert any(p.stage == 'bc' and p.loss is not None for p in seen)
    assert seen[-1].success_rate == result.evaluations[result.chosen]['success_rate']
    summary = json.loads((tmp_path / 'pipeline.json').read_text())
    assert summary['status'] == 'done' and summary['stages']['rl']['env_steps'] == 32
    # Again: nothing left to train, unchanged checkpoints are not evaluated again.
    again = []
    second = run_pipeline(config, on_progress=again.append)
    assert second.status == 'done' and second.evaluations == result.evaluations
    assert 'evaluate' not in [p.stage for p in again]


def test_a_stop_request_saves_a_loadable_last_checkpoint(lift_demos, tmp_path):
    config = PipelineConfig(dataset=str(lift_demos), output_dir=str(tmp_path),
                            **dict(TINY, bc_steps=10_000, bc_eval_interval=10_000))
    seen = []
    result = run_pipeline(config, on_progress=seen.append,
                          should_stop=lambda: any(p.step >= 50 for p in seen))
    assert result.status == 'cancelled' and result.best_checkpoint == ''
    _, meta = load_checkpoint(result.last_checkpoint)
    assert meta['step'] == 51 and seen[-1].stage == 'cancelled'
    assert not (tmp_path / 'policy').exists()


def test_params_file_layout_and_overrides(tmp_path):
    path = tmp_path / 'train.yaml'
    path.write_text('/**:\n  ros__parameters:\n    seed: 3\ntrainer_node:\n  ros__parameters:\n'
                    '    dataset: demos\n    bc_steps: 7\n    status_rate_hz: 1.0\n')
    config = load_pipeline_config(str(path), {'bc_steps': 9})
    assert (config.dataset, config.seed, config.bc_steps) == ('demos', 3, 9)
    shipped = load_pipeline_config('config/train.yaml')
    assert shipped.head == 'gaussian'
    # The camera options reach the policy and BC configurations.
    camera = load_pipeline_config(str(path), {'image_encoder': 'cnn', 'image_shift': 0})
    assert camera.policy_sizes()['image_encoder'] == 'cnn' and camera.bc_config().image_shift == 0
    assert shipped.policy_sizes()['image_encoder'] == 'resnet'


@pytest.mark.parametrize('text, message', [
    ('trainer_node: [1, 2]\n', 'has no "ros__parameters:"'),
    ('trainer_node:\n  ros__parameters:\n    eval_episodes: 0\n', 'eval_episodes must be >= 1'),
    ('trainer_node:\n  ros__parameters:\n    head: gaussian\n    rl_env_steps: -1\n',
     'rl_env_steps must be >= 0'),
    ('trainer_node:\n  ros__parameters:\n    d_model: 30\n    n_heads: 4\n',
     'multiple of n_heads'),
    ('trainer_node:\n  ros__parameters:\n    device: gpu\n', 'device'),
    ('trainer_node:\n  ros__parameters:\n    image_encoder: vit\n', 'image_encoder must be one'),
    ('trainer_node:\n  ros__parameters:\n    image_shift: -1\n', 'image_shift'),
    (': : :\n', 'cannot read params file'),
])
def test_bad_params_are_named(tmp_path, text, message):
    path = tmp_path / 'train.yaml'
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace('(', r'\(')):
        load_pipeline_config(str(path))


def test_cli_bad_input_is_one_line_and_writes_nothing(lift_demos, tmp_path, capsys):
    out = tmp_path / 'run'
    code = main(['pipeline', '--config', 'config/train.yaml', '--dataset', str(lift_demos),
                 '--output', str(out), '--set', 'bc_stepz=3'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown parameter(s) ['bc_stepz']" in err[0]
    code = main(['pipeline', '--config', 'config/train.yaml', '--dataset',
                 str(tmp_path / 'missing'), '--output', str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and 'does not exist' in err[0]
    code = main(['pipeline', '--config', 'config/train.yaml', '--dataset', str(lift_demos),
                 '--output', str(out), '--set', 'observations=[scene_rgb]'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "observations asks for ['scene_rgb']" in err[0]
    assert not (out / 'bc').exists()


def test_cli_first_sigint_saves_the_last_checkpoint_and_exits_130(lift_demos, tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get('PYTHONPATH', ''),
               PYTHONUNBUFFERED='1')
    log = open(tmp_path / 'log.txt', 'w+')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'lam_ros.cli', 'pipeline', '--config', 'config/train.yaml',
         '--dataset', str(lift_demos), '--output', str(tmp_path / 'run'), '--set',
         'bc_steps=1000000', '--set', 'bc_eval_interval=1000000', '--set', 'd_model=32',
         '--set', 'num_threads=1', '--set', 'device=cpu'],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90.0
        while 'bc step' not in (tmp_path / 'log.txt').read_text():
            assert proc.poll() is None and time.monotonic() < deadline, \
                (tmp_path / 'log.txt').read_text()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (tmp_path / 'log.txt').read_text()
    assert code == 130 and 'run the same command again to resume' in output, output
    _, meta = load_checkpoint(tmp_path / 'run' / 'bc' / 'last')
    assert 50 <= meta['step'] < 1_000_000
