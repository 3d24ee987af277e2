"""Training under torchrun: 2 CPU ranks (gloo) end with identical, ordinary checkpoints."""

import json
import os
import subprocess
import sys

from lam_ros.learn import distributed
from lam_ros.learn.bc import BCConfig, train_bc
from lam_ros.policy import load_checkpoint, PolicyConfig
from lam_ros.sim import JOINT_NAMES
import pytest
from safetensors.torch import load_file
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATE = {'joint_pos': (8,), 'joint_vel': (8,), 'gripper_width': (1,), 'object_pose': (7,)}
TINY = {'d_model': 32, 'n_heads': 2, 'n_layers': 1, 'history_len': 2, 'chunk_size': 5,
        'dropout': 0.0, 'head': 'gaussian'}
BC = {'steps': 12, 'eval_interval': 6, 'log_interval': 3, 'warmup_steps': 2, 'progress': False,
      'num_threads': 1, 'device': 'cpu', 'val_fraction': 0.25}

# Each rank trains, then saves the weights it holds in memory as rank<N>.safetensors.
BC_WORKER = f"""
import json, sys
from safetensors.torch import save_file
from lam_ros.data.dataset.build import Dataset
from lam_ros.learn import distributed
from lam_ros.learn.bc import BCConfig, train_bc
from lam_ros.policy import PolicyConfig
from lam_ros.sim import JOINT_NAMES
cache, out = sys.argv[1:3]
ctx = distributed.setup('cpu')
config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec={STATE!r}, control_rate_hz=20.0,
                      **{TINY!r})
result = train_bc(Dataset.load(cache), config, BCConfig(batch_size=8, **{BC!r}),
                  out + '/run', task='lift')
save_file({{k: v.contiguous() for k, v in result.policy.state_dict().items()}},
          f'{{out}}/rank{{ctx.rank}}.safetensors')
with open(f'{{out}}/rank{{ctx.rank}}.json', 'w') as f:
    json.dump({{'rank': ctx.rank, 'world_size': ctx.world_size, 'backend': ctx.backend,
               'steps': result.steps, 'best_val_loss': result.best_val_loss}}, f)
"""

# The same for a tiny PPO run; the agent each rank builds is kept to read its weights.
RL_WORKER = """
import json, sys
from safetensors.torch import save_file
from lam_ros.learn import distributed
from lam_ros.learn.rl import ppo
from lam_ros.learn.rl.config import RLConfig
checkpoint, out = sys.argv[1:3]
ctx = distributed.setup('cpu')
agents = []
build = ppo.load_actor_critic
ppo.load_actor_critic = lambda *a, **k: agents.append(build(*a, **k)) or agents[-1]
config = RLConfig(total_env_steps=64, num_envs=2, vector='sync', rollout_steps=8, epochs=1,
                  minibatch_size=8, eval_interval=64, eval_episodes=1, critic_warmup_updates=1,
                  bc_coef=0.0, num_threads=1, progress=False, device='cpu')
result = ppo.train_rl(checkpoint, out + '/rl', config, task='lift')
agent = agents[0][0]
save_file({k: v.contiguous() for k, v in agent.state_dict().items()},
          f'{out}/rl_rank{ctx.rank}.safetensors')
with open(f'{out}/rl_rank{ctx.rank}.json', 'w') as f:
    json.dump({'world_size': ctx.world_size, 'env_steps': result.env_steps}, f)
"""


def torchrun(script: str, args: list, nproc: int = 2, timeout_s: float = 240.0
             ) -> subprocess.CompletedProcess:
    """Run a script under ``python -m torch.distributed.run --standalone``."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
               OMP_NUM_THREADS='1')
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone',
         f'--nproc_per_node={nproc}', script, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)


def test_bc_on_two_ranks_equals_one_process_with_the_global_batch(lift_dataset, tmp_path):
    cache = tmp_path / 'data.safetensors'
    lift_dataset.save(cache)
    script = tmp_path / 'bc_worker.py'
    script.write_text(BC_WORKER)
    done = torchrun(str(script), [str(cache), str(tmp_path)])
    assert done.returncode == 0, done.stdout + done.stderr
    infos = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in (0, 1)]
    assert [(i['rank'], i['world_size'], i['backend']) for i in infos] == [
        (0, 2, 'gloo'), (1, 2, 'gloo')]
    assert infos[0]['best_val_loss'] == infos[1]['best_val_loss'] is not None
    ranks = [load_file(str(tmp_path / f'rank{r}.safetensors')) for r in (0, 1)]
    # The ranks trained on different halves of every batch, yet hold the same weights.
    for name, value in ranks[0].items():
        assert torch.equal(value, ranks[1][name]), name
    # The result is an ordinary checkpoint, written once (by rank 0).
    model, meta = load_checkpoint(tmp_path / 'run' / 'last')
    assert meta['step'] == 12 and meta['task'] == 'lift'
    for name, value in model.state_dict().items():
        assert torch.equal(value, ranks[0][name]), name
    steps = [line.split(',')[0] for line in
             (tmp_path / 'run' / 'metrics.csv').read_text().splitlines()[1:]]
    assert steps == ['3', '6', '9', '12']
    # Averaged gradients of 2 x 8 windows are one process's gradient of the same 16 windows.
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec=STATE, control_rate_hz=20.0,
                          **TINY)
    single = train_bc(lift_dataset, config, BCConfig(batch_size=16, **BC),
                      str(tmp_path / 'single'))
    for name, value in single.policy.state_dict().items():
        torch.testing.assert_close(value, ranks[0][name], rtol=1e-4, atol=1e-5, msg=name)


def test_without_torchrun_the_context_is_one_process(monkeypatch):
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    ctx = distributed.setup('cpu')
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)
    assert distributed.mean_over_ranks({'loss': 2.0}, ctx) == {'loss': 2.0}
    assert distributed.any_rank(True, ctx) and not distributed.any_rank(False, ctx)
    module = torch.nn.Linear(2, 1)
    assert distributed.data_parallel(module, ctx) is module
    assert distributed.rank_seed(5, ctx) == 5


def test_a_malformed_torchrun_environment_is_named(monkeypatch):
    monkeypatch.setenv('WORLD_SIZE', 'two')
    with pytest.raises(ValueError, match='WORLD_SIZE'):
        distributed.setup('cpu')


def test_rl_on_two_ranks_ends_with_identical_weights_and_an_ordinary_checkpoint(
        lift_dataset, tmp_path):
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec=STATE, control_rate_hz=20.0,
                          **TINY)
    bc = train_bc(lift_dataset, config, BCConfig(batch_size=16, **BC), str(tmp_path / 'bc'),
                  task='lift')
    script = tmp_path / 'rl_worker.py'
    script.write_text(RL_WORKER)
    done = torchrun(str(script), [bc.best_checkpoint, str(tmp_path)])
    assert done.returncode == 0, done.stdout + done.stderr
    infos = [json.loads((tmp_path / f'rl_rank{r}.json').read_text()) for r in (0, 1)]
    assert infos == [{'world_size': 2, 'env_steps': 64}] * 2  # 2 updates of 2 x 2 x 8 steps
    ranks = [load_file(str(tmp_path / f'rl_rank{r}.safetensors')) for r in (0, 1)]
    for name, value in ranks[0].items():
        assert torch.equal(value, ranks[1][name]), name
    model, meta = load_checkpoint(tmp_path / 'rl' / 'last')
    assert meta['rl']['env_steps'] == 64
    start, _ = load_checkpoint(bc.best_checkpoint)
    moved = False
    for name, value in model.state_dict().items():
        assert torch.equal(value, ranks[0]['policy.' + name]), name
        moved |= not torch.equal(value, start.state_dict()[name])
    assert moved, 'the second update (after the critic warm-up) changed no policy weight'
