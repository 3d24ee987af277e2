"""PolicyRunner: observation history and masks, query schedule, temporal ensembling, checks."""

from lam_ros.policy.model import TransformerPolicy
from lam_ros.policy.runner import camera_shape, PolicyRunner
import numpy as np
import pytest
import torch

from .helpers import IMAGE, small_config

torch.set_num_threads(1)
SPEC = {'joint_pos': (8,), 'joint_vel': (8,), 'object_pose': (7,)}


def make_model(history_len=3, chunk_size=4, obs_spec=None, seed=0):
    """Return a small random policy in eval mode (dropout off)."""
    torch.manual_seed(seed)
    return TransformerPolicy(small_config(obs_spec or SPEC, history_len=history_len,
                                          chunk_size=chunk_size)).eval()


def observations(n, spec=None, seed=0):
    """Return n observation dicts as an env would give them (plus a key the policy ignores)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        obs = {k: rng.normal(size=s).astype(np.float32) for k, s in (spec or SPEC).items()}
        obs['ee_pose'] = rng.normal(size=7).astype(np.float32)
        out.append(obs)
    return out


def direct_chunk(model, steps, mask):
    """Return the chunk the model predicts for an explicit history (oldest first) and mask."""
    obs = {k: torch.from_numpy(np.stack([s[k] for s in steps])[None])
           for k in model.config.obs_spec}
    return model.predict(obs, torch.tensor([mask]))[0].double().numpy()


def test_history_is_padded_and_masked_before_the_episode_start():
    model = make_model(history_len=3)
    runner = PolicyRunner(model, query_every=1, ensemble_decay=0.0)
    obs = observations(5)
    runner.step(obs[0])
    # Padding content must not matter: the model sees only masked steps there.
    expected = direct_chunk(model, [obs[3], obs[4], obs[0]], [False, False, True])
    np.testing.assert_allclose(runner.predict_chunk(), expected, rtol=1e-5, atol=1e-6)
    runner.step(obs[1])
    expected = direct_chunk(model, [obs[2], obs[0], obs[1]], [False, True, True])
    np.testing.assert_allclose(runner.predict_chunk(), expected, rtol=1e-5, atol=1e-6)
    for o in obs[2:]:
        runner.step(o)
    # Only the last history_len observations remain, oldest first.
    expected = direct_chunk(model, obs[2:5], [True, True, True])
    np.testing.assert_allclose(runner.predict_chunk(), expected, rtol=1e-5, atol=1e-6)


def test_first_command_is_the_first_action_of_the_first_chunk():
    model = make_model()
    runner = PolicyRunner(model)
    obs = observations(1)[0]
    action = runner.step(obs)
    assert action.shape == (8,) and action.dtype == np.float64
    np.testing.assert_allclose(action, direct_chunk(model, [obs] * 3, [False, False, True])[0],
                               rtol=1e-5, atol=1e-6)


def test_commands_blend_overlapping_chunks_with_ensembling_weights():
    decay = 0.5
    model = make_model(history_len=2, chunk_size=4)
    runner = PolicyRunner(model, query_every=1, ensemble_decay=decay)
    obs = observations(3, seed=1)
    runner.step(obs[0])
    second = runner.step(obs[1])
    third = runner.step(obs[2])
    c0 = direct_chunk(model, [obs[0], obs[0]], [False, True])
    c1 = direct_chunk(model, [obs[0], obs[1]], [True, True])
    c2 = direct_chunk(model, [obs[1], obs[2]], [True, True])
    w = np.exp(-decay * np.arange(3))
    np.testing.assert_allclose(second, (w[0] * c0[1] + w[1] * c1[0]) / w[:2].sum(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(third, (w[0] * c0[2] + w[1] * c1[1] + w[2] * c2[0]) / w.sum(),
                               rtol=1e-5, atol=1e-6)


def test_query_every_chunk_size_plays_each_chunk_open_loop():
    model = make_model(history_len=2, chunk_size=4)
    runner = PolicyRunner(model, query_every=4)
    obs = observations(6, seed=2)
    actions = [runner.step(o) for o in obs]
    assert runner.policy_calls == 2 and runner.step_count == 6
    c0 = direct_chunk(model, [obs[0], obs[0]], [False, True])
    c4 = direct_chunk(model, [obs[3], obs[4]], [True, True])
    np.testing.assert_allclose(np.stack(actions[:4]), c0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.stack(actions[4:]), c4[:2], rtol=1e-5, atol=1e-6)


def test_query_every_sets_how_often_the_policy_runs():
    runner = PolicyRunner(make_model(chunk_size=4), query_every=3)
    for o in observations(7):
        runner.step(o)
    assert runner.policy_calls == 3  # steps 0, 3 and 6


def test_reset_starts_a_new_episode():
    model = make_model()
    runner = PolicyRunner(model)
    obs = observations(4, seed=3)
    for o in obs[:3]:
        runner.step(o)
    runner.reset()
    assert runner.step_count == 0 and runner.policy_calls == 0
    np.testing.assert_allclose(runner.step(obs[3]), PolicyRunner(model).step(obs[3]))


def test_camera_policies_take_uint8_images():
    model = make_model(obs_spec=IMAGE, history_len=2)
    assert camera_shape(model) == (24, 32)
    assert camera_shape(make_model()) is None
    rng = np.random.default_rng(0)
    obs = {'joint_pos': np.zeros(8), 'joint_vel': np.zeros(8),
           'scene_rgb': rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
           'scene_depth': rng.uniform(0, 2, (24, 32, 1))}
    assert np.all(np.isfinite(PolicyRunner(model).step(obs)))
    with pytest.raises(ValueError, match="'scene_rgb' must be uint8"):
        PolicyRunner(model).step(dict(obs, scene_rgb=obs['scene_rgb'].astype(np.float32)))


@pytest.mark.parametrize('change, message', [
    (lambda o: o.pop('object_pose'), r"lacks \['object_pose'\]"),
    (lambda o: o.update(joint_pos=np.zeros(7)), r"'joint_pos' has shape \(7,\).*\(8,\)"),
    (lambda o: o.update(joint_vel=np.full(8, np.nan)), 'NaN or Inf'),
])
def test_bad_observations_are_rejected_with_the_reason(change, message):
    runner = PolicyRunner(make_model())
    obs = observations(1)[0]
    change(obs)
    with pytest.raises(ValueError, match=message):
        runner.step(obs)
    assert runner.step_count == 0  # a rejected observation does not advance the clock


def test_invalid_arguments():
    model = make_model(chunk_size=4)
    with pytest.raises(ValueError, match='query_every'):
        PolicyRunner(model, query_every=5)
    with pytest.raises(ValueError, match='query_every'):
        PolicyRunner(model, query_every=0)
    with pytest.raises(ValueError, match='decay'):
        PolicyRunner(model, ensemble_decay=-1.0)
    with pytest.raises(ValueError, match='TransformerPolicy'):
        PolicyRunner(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match='dict'):
        PolicyRunner(model).step([1.0, 2.0])
    with pytest.raises(RuntimeError, match='no observation'):
        PolicyRunner(model).predict_chunk()
