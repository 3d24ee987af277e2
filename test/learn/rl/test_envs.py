"""Env factories from 'module:factory', the task contract check, and the command gate."""

import gymnasium as gym
from lam_ros.learn.rl import env_factory, EnvSpecError, make_vector_env, task_factory
from lam_ros.learn.rl.envs import check_contract, GatedEnv
from lam_ros.sim import JOINT_NAMES, make_env
import numpy as np
import pytest

STATE = {'joint_pos': (8,), 'object_pose': (7,)}


def short_lift():
    """Build a contract env defined here: lift with 10-step episodes."""
    return make_env('lift', max_episode_steps=10)


def not_an_env():
    """Return something that is not an env."""
    return 42


@pytest.mark.parametrize('spec,match', [
    ('no_colon', 'expected package.module:factory'),
    ('a:b:c', 'expected package.module:factory'),
    (':factory', 'expected package.module:factory'),
    ('no_such_module_xyz:make', "cannot import 'no_such_module_xyz'"),
    (f'{__name__}:missing', 'has no callable'),
    (f'{__name__}:STATE', 'has no callable'),
])
def test_bad_env_spec_is_one_clear_error(spec, match):
    with pytest.raises(EnvSpecError, match=match) as info:
        env_factory(spec)
    assert '\n' not in str(info.value)


def test_env_spec_resolves_to_the_factory():
    assert env_factory(f'{__name__}:short_lift') is short_lift
    assert env_factory(short_lift) is short_lift
    with pytest.raises(EnvSpecError, match='unknown task'):
        task_factory('stack', 20.0)


def test_contract_names_missing_and_misshapen_observations():
    env = short_lift()
    try:
        with pytest.raises(EnvSpecError, match="'goal_pose' missing"):
            check_contract(env, JOINT_NAMES, dict(STATE, goal_pose=(7,)))
        with pytest.raises(EnvSpecError, match="'object_pose' has shape"):
            check_contract(env, JOINT_NAMES, {'joint_pos': (8,), 'object_pose': (3,)})
        with pytest.raises(EnvSpecError, match=r'must observe joint_pos \(7,\)'):
            check_contract(env, JOINT_NAMES[:7], {'joint_pos': (8,)})
    finally:
        env.close()


def test_vector_env_rejects_a_factory_that_returns_no_env():
    with pytest.raises(EnvSpecError, match='not a gymnasium.Env'):
        make_vector_env(not_an_env, 1, JOINT_NAMES, STATE, 20.0, vector='sync')


def test_every_action_passes_the_command_gate():
    env = GatedEnv(short_lift(), JOINT_NAMES, STATE, control_rate_hz=20.0)
    try:
        obs, _ = env.reset(seed=3)
        assert sorted(obs) == sorted(STATE)
        start = obs['joint_pos'].astype(np.float64)
        far = start + np.array([1.0] * 7 + [0.0])  # 1 rad in one tick: far over the limits
        env.step(far)
        sent = env.gate.last_command
        assert np.all(np.abs(sent - start) <= env.gate.max_step + 1e-9)
        assert np.all(np.abs(sent[:7] - start[:7]) > 0.05)  # it moved, as fast as allowed
        env.step(np.full(8, np.nan))  # a NaN target holds the last command
        assert np.array_equal(env.gate.last_command, sent)
    finally:
        env.close()


def test_async_workers_step_gated_envs_and_reset_on_episode_end():
    envs = make_vector_env(short_lift, 2, JOINT_NAMES, STATE, 20.0, vector='async')
    try:
        obs, _ = envs.reset(seed=[0, 1])
        assert obs['joint_pos'].shape == (2, 8) and sorted(obs) == sorted(STATE)
        ends = 0
        for _ in range(10):
            obs, _, terminated, truncated, info = envs.step(obs['joint_pos'].astype(float))
            ends += int(np.sum(terminated | truncated))
        assert ends == 2 and 'final_info' in info
    finally:
        envs.close()
    assert isinstance(short_lift(), gym.Env)
