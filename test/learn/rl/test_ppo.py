"""Short PPO runs from a tiny BC checkpoint: finite losses, checkpoints, warm-up, resume."""

import math

from lam_ros.learn.bc import BCConfig, train_bc
from lam_ros.learn.rl import RLConfig, train_rl
from lam_ros.learn.rl.run_state import read_rl_metrics
from lam_ros.policy import load_checkpoint, PolicyConfig
from lam_ros.sim import JOINT_NAMES, make_env
import numpy as np
import pytest
import torch

STATE = {'joint_pos': (8,), 'joint_vel': (8,), 'gripper_width': (1,), 'object_pose': (7,)}
TINY = {'d_model': 32, 'n_heads': 2, 'n_layers': 1, 'history_len': 2, 'chunk_size': 5,
        'dropout': 0.0}
LOSSES = ('policy_loss', 'value_loss', 'kl_bc', 'bc_loss', 'entropy', 'approx_kl')


def short_lift():
    """Build lift with 16-step episodes, so that episodes end inside a short run."""
    return make_env('lift', max_episode_steps=16)


def tiny_rl(**overrides):
    """Return an RLConfig at test sizes: 2 envs in this process, 2 updates of 2 x 16 steps."""
    base = {'total_env_steps': 64, 'num_envs': 2, 'vector': 'sync', 'rollout_steps': 16,
            'query_every': 4,
            'epochs': 2, 'minibatch_size': 16, 'eval_interval': 32, 'eval_episodes': 2,
            'critic_warmup_updates': 1, 'num_threads': 1, 'progress': False,
            'anneal_env_steps': 64}
    return RLConfig(**dict(base, **overrides))


@pytest.fixture(scope='module')
def bc_checkpoint(lift_dataset, tmp_path_factory):
    """Train a tiny gaussian-head BC policy for a few steps on 4 lift demos."""
    out = tmp_path_factory.mktemp('bc')
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec=STATE, head='gaussian', **TINY)
    result = train_bc(lift_dataset, config, BCConfig(steps=20, batch_size=16, eval_interval=20,
                                                     warmup_steps=2, progress=False),
                      str(out), task='lift')
    return result.best_checkpoint


def test_smoke_run_has_finite_losses_and_loadable_checkpoints(bc_checkpoint, lift_dataset,
                                                              tmp_path):
    out = tmp_path / 'rl'
    rows = []
    result = train_rl(bc_checkpoint, str(out), tiny_rl(), env=short_lift, demos=lift_dataset,
                      on_log=rows.append)
    assert result.env_steps == 64 and not result.interrupted
    updates = [r for r in read_rl_metrics(result.metrics_csv) if r['value_loss'] is not None]
    assert len(updates) == 2
    # The first update is the critic's warm-up: no actor terms; the second has them all.
    assert math.isfinite(updates[0]['value_loss']) and updates[0]['policy_loss'] is None
    for key in LOSSES:
        assert math.isfinite(updates[1][key]), key
    assert updates[1]['bc_loss'] != 0.0  # the demo term is on
    assert updates[0]['actor_lr'] == 0.0 and updates[1]['actor_lr'] > 0
    evals = [r for r in read_rl_metrics(result.metrics_csv) if r['eval_success_rate'] is not None]
    assert [r['env_steps'] for r in evals] == [0, 32, 64]
    for path in (result.best_checkpoint, result.last_checkpoint):
        model, meta = load_checkpoint(path)
        assert model.config.head == 'gaussian' and meta['task'] == 'lift'
        assert meta['rl']['query_every'] == 4
    _, last_meta = load_checkpoint(result.last_checkpoint)
    assert last_meta['rl']['env_steps'] == 64
    assert (out / 'curves.png').stat().st_size > 0 and (out / 'tensorboard').is_dir()
    assert rows and rows[0]['env_steps'] == 0


def test_critic_warmup_leaves_the_policy_untouched(bc_checkpoint, tmp_path):
    cfg = tiny_rl(critic_warmup_updates=5, init_log_std=None)
    result = train_rl(bc_checkpoint, str(tmp_path / 'rl'), cfg, env=short_lift)
    before, _ = load_checkpoint(bc_checkpoint)
    after, _ = load_checkpoint(result.last_checkpoint)
    for name, value in before.state_dict().items():
        assert torch.equal(value, after.state_dict()[name]), name


def test_policy_learning_rates_fall_to_their_final_fraction(bc_checkpoint, tmp_path):
    cfg = tiny_rl(lr_final_fraction=0.1)
    assert cfg.lr_scale(0) == 1.0 and cfg.lr_scale(32) == pytest.approx(0.55)
    assert cfg.lr_scale(10**9) == pytest.approx(0.1)
    result = train_rl(bc_checkpoint, str(tmp_path / 'rl'), cfg, env=short_lift)
    updates = [r for r in read_rl_metrics(result.metrics_csv) if r['value_loss'] is not None]
    # Update 1 (after 32 env steps) is the critic's warm-up; update 2 comes after all 64.
    assert [r['actor_lr'] for r in updates] == [0.0, pytest.approx(cfg.lr * 0.1)]
    with pytest.raises(ValueError, match='lr_final_fraction'):
        tiny_rl(lr_final_fraction=1.5)


def test_stop_request_saves_last_and_rerun_resumes(bc_checkpoint, tmp_path):
    out = str(tmp_path / 'rl')
    first = train_rl(bc_checkpoint, out, tiny_rl(), env=short_lift, should_stop=lambda: True)
    assert first.interrupted and first.env_steps == 32
    _, meta = load_checkpoint(first.last_checkpoint)
    assert meta['rl']['env_steps'] == 32
    second = train_rl(bc_checkpoint, out, tiny_rl(), env=short_lift)
    assert second.resumed_from == 32 and second.env_steps == 64 and not second.interrupted
    steps = [r['env_steps'] for r in read_rl_metrics(second.metrics_csv)
             if r['value_loss'] is not None]
    assert steps == [32, 64]


def test_keyboard_interrupt_saves_a_loadable_last(bc_checkpoint, tmp_path):
    def interrupt(row):
        if row.get('value_loss') is not None:
            raise KeyboardInterrupt
    result = train_rl(bc_checkpoint, str(tmp_path / 'rl'), tiny_rl(), env=short_lift,
                      on_log=interrupt)
    assert result.interrupted
    model, meta = load_checkpoint(result.last_checkpoint)
    assert meta['rl']['env_steps'] == 32
    assert np.isfinite(model.log_std.detach().numpy()).all()


def test_regression_checkpoint_is_fine_tuned_through_a_gaussian_head(lift_dataset, tmp_path):
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec=STATE, head='regression', **TINY)
    bc = train_bc(lift_dataset, config, BCConfig(steps=4, batch_size=8, eval_interval=4,
                                                 warmup_steps=1, progress=False),
                  str(tmp_path / 'bc'), task='lift')
    result = train_rl(bc.best_checkpoint, str(tmp_path / 'rl'),
                      tiny_rl(total_env_steps=32, init_log_std=-2.0), env=short_lift)
    model, _ = load_checkpoint(result.best_checkpoint)
    assert model.config.head == 'gaussian'
    assert torch.allclose(model.log_std, torch.full_like(model.log_std, -2.0))


def test_self_imitation_clones_kept_successes_with_the_demos(bc_checkpoint, lift_dataset,
                                                             tmp_path):
    cfg = tiny_rl(imitation_capacity=4, imitation_steps=3, imitation_batch_size=8,
                  init_log_std=-1.0)
    before, _ = load_checkpoint(bc_checkpoint)
    result = train_rl(bc_checkpoint, str(tmp_path / 'rl'), cfg, env=short_lift,
                      demos=lift_dataset)
    updates = [r for r in read_rl_metrics(result.metrics_csv) if r['value_loss'] is not None]
    assert updates[0]['imitation_loss'] is None  # the critic's warm-up: the actor stays
    assert math.isfinite(updates[1]['imitation_loss'])
    assert updates[1]['imitation_episodes'] is not None
    after, _ = load_checkpoint(result.last_checkpoint)
    # log_std moves by PPO only (lr 2e-5): cloning never pulls it to the data's spread.
    assert float((after.log_std.detach() + 1.0).abs().max()) < 1e-2
    assert not torch.equal(before.action_head.weight, after.action_head.weight)


def test_failed_scenes_are_replayed_with_an_episode_offset(bc_checkpoint, lift_dataset,
                                                           tmp_path):
    # 16-step lift episodes always fail: every start after the first ones replays.
    cfg = tiny_rl(replay_fraction=1.0, replay_tries=1, episode_noise_std=0.3,
                  imitation_capacity=4, imitation_steps=1, imitation_batch_size=8)
    result = train_rl(bc_checkpoint, str(tmp_path / 'rl'), cfg, env=short_lift,
                      demos=lift_dataset)
    updates = [r for r in read_rl_metrics(result.metrics_csv) if r['value_loss'] is not None]
    # Each update: 2 fresh scenes fail at its last step and are replayed at once (their
    # last try); the evaluation after each update cuts the replays off.
    assert [r['replay_episodes'] for r in updates] == [2, 4]
    assert all(r['replay_successes'] == 0 for r in updates)
    assert all(math.isfinite(r['policy_loss']) for r in updates[1:])


def test_rollout_episodes_can_be_cut_shorter_than_the_env_limit(bc_checkpoint, tmp_path):
    result = train_rl(bc_checkpoint, str(tmp_path / 'rl'),
                      tiny_rl(total_env_steps=32, rollout_episode_steps=8), env=short_lift)
    update = [r for r in read_rl_metrics(result.metrics_csv) if r['value_loss'] is not None]
    # 2 envs x 16 steps in 8-step episodes (the env's own limit is 16).
    assert update[0]['train_episodes'] == 4 and update[0]['train_success_rate'] == 0.0
