"""The batched runner commands exactly what PolicyRunner commands on the robot."""

from lam_ros.learn.rl import make_vector_env
from lam_ros.learn.rl.rollout import BatchRunner, evaluate_vector, to_torch
from lam_ros.policy import PolicyConfig, TransformerPolicy
from lam_ros.policy.runner import PolicyRunner
from lam_ros.sim import JOINT_NAMES, make_env
import numpy as np
import pytest
import torch

STATE = {'joint_pos': (8,), 'object_pose': (7,)}


def tiny_policy(seed=0):
    """Build an untrained tiny policy with fitted normalisation (outputs near home)."""
    torch.manual_seed(seed)
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec=STATE, d_model=16, n_heads=2,
                          n_layers=1, chunk_size=4, history_len=3, dropout=0.0,
                          head='gaussian')
    model = TransformerPolicy(config)
    home = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04], np.float32)
    stats = {k: {'mean': np.zeros(s[0], np.float32), 'std': np.ones(s[0], np.float32)}
             for k, s in STATE.items()}
    stats['action'] = {'mean': home, 'std': np.full(8, 0.05, np.float32)}
    model.normalizer.fit(stats)
    return model.eval()


def short_lift():
    """Build lift with 12-step episodes."""
    return make_env('lift', max_episode_steps=12)


@pytest.mark.parametrize('query_every', [1, 3])
def test_batch_runner_with_mean_chunks_equals_policy_runner(query_every):
    model = tiny_policy()
    rng = np.random.default_rng(0)
    steps = [{k: rng.normal(size=s).astype(np.float32) for k, s in STATE.items()}
             for _ in range(9)]
    reference = PolicyRunner(model, query_every=query_every, ensemble_decay=0.01)
    expected = [reference.step(obs) for obs in steps]
    batch = BatchRunner(model, 2, 0.01)
    got = []
    for t, obs in enumerate(steps):
        if t == 4:  # env 1 starts a new episode; env 0 must not notice
            batch.reset(1)
        both = {k: np.stack([v, v]) for k, v in obs.items()}
        inputs = to_torch(*batch.observe(both), torch.device('cpu'))
        due = batch.due(query_every)
        chunks = model.predict(*inputs).double().numpy()
        got.append(batch.commands(chunks, due, np.zeros((2, 8))))
    for t in range(9):
        np.testing.assert_allclose(got[t][0], expected[t], rtol=1e-5, atol=1e-6)
    fresh = PolicyRunner(model, query_every=query_every, ensemble_decay=0.01)
    restarted = [fresh.step(obs) for obs in steps[4:]]
    for t in range(4, 9):
        np.testing.assert_allclose(got[t][1], restarted[t - 4], rtol=1e-5, atol=1e-6)


def test_an_env_without_a_chunk_since_its_reset_holds_its_measured_position():
    model = tiny_policy()
    batch = BatchRunner(model, 2, 0.01)
    obs = {k: np.zeros((2,) + s, np.float32) for k, s in STATE.items()}
    inputs = to_torch(*batch.observe(obs), torch.device('cpu'))
    chunks = model.predict(*inputs).double().numpy()
    hold = np.arange(16, dtype=float).reshape(2, 8)
    out = batch.commands(chunks, np.array([True, False]), hold)
    np.testing.assert_allclose(out[0], chunks[0, 0], rtol=1e-6)
    np.testing.assert_array_equal(out[1], hold[1])


@pytest.mark.parametrize('num_envs,query_every', [(1, 1), (3, 1), (3, 2)])
def test_vector_evaluation_plays_the_same_seeded_episodes_with_any_number_of_envs(
        num_envs, query_every):
    model = tiny_policy()
    envs = make_vector_env(short_lift, num_envs, JOINT_NAMES, STATE, 20.0, vector='sync')
    try:
        result = evaluate_vector(model, envs, 4, 1_000_000, 0.01, query_every)
    finally:
        envs.close()
    assert result['episodes'] == 4 and result['mean_length'] == 12
    assert result['success_rate'] == 0.0
    # Same seeds, same deterministic policy: the same mean return whatever num_envs is.
    baseline = pytest.approx(_single_env_return(model, query_every), rel=1e-6)
    assert result['mean_return'] == baseline


def _single_env_return(model, query_every):
    from lam_ros.learn.rl.envs import GatedEnv
    total = 0.0
    for seed in range(1_000_000, 1_000_004):
        env = GatedEnv(short_lift(), JOINT_NAMES, STATE, control_rate_hz=20.0)
        runner = PolicyRunner(model, query_every=query_every, ensemble_decay=0.01)
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(runner.step(obs))
            total += reward
            done = terminated or truncated
        env.close()
    return total / 4
