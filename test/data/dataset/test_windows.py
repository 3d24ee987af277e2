"""Training windows: observation histories and action chunks with masks at episode edges."""

from lam_ros.data.dataset.windows import Windows
import numpy as np
import pytest


def _episodes():
    """Two episodes whose values encode (episode, step): 100 * e + t."""
    obs, actions = [], []
    for e, length in enumerate((5, 3)):
        t = np.arange(length, dtype=np.float32) + 100 * e
        obs.append({'joint_pos': np.stack([t, -t], axis=1),
                    'scene_rgb': np.broadcast_to(t.astype(np.uint8)[:, None, None, None],
                                                 (length, 2, 2, 3)).copy()})
        actions.append(np.stack([t + 0.5] * 8, axis=1))
    return obs, actions


def test_every_step_is_a_window():
    w = Windows(*_episodes(), history_len=3, chunk_size=4)
    assert len(w) == 8
    np.testing.assert_array_equal(w.indices, [[0, 0], [0, 1], [0, 2], [0, 3], [0, 4],
                                              [1, 0], [1, 1], [1, 2]])


def test_history_before_the_start_repeats_the_first_obs_and_is_masked():
    w = Windows(*_episodes(), history_len=3, chunk_size=4)
    s = w.sample(5)  # episode 1, step 0
    np.testing.assert_array_equal(s['obs_mask'], [False, False, True])
    np.testing.assert_array_equal(s['obs']['joint_pos'][:, 0], [100, 100, 100])
    assert s['obs']['scene_rgb'].shape == (3, 2, 2, 3) and s['obs']['scene_rgb'].dtype == np.uint8
    s = w.sample(1)  # episode 0, step 1
    np.testing.assert_array_equal(s['obs_mask'], [False, True, True])
    np.testing.assert_array_equal(s['obs']['joint_pos'][:, 0], [0, 0, 1])


def test_chunk_after_the_end_repeats_the_last_action_and_is_masked():
    w = Windows(*_episodes(), history_len=2, chunk_size=4)
    s = w.sample(3)  # episode 0, step 3 of 5
    np.testing.assert_array_equal(s['action_mask'], [True, True, False, False])
    np.testing.assert_array_equal(s['action'][:, 0], [3.5, 4.5, 4.5, 4.5])
    s = w[7]  # last step of episode 1: never reaches into another episode
    np.testing.assert_array_equal(s['action_mask'], [True, False, False, False])
    np.testing.assert_array_equal(s['action'][:, 0], [102.5] * 4)
    np.testing.assert_array_equal(s['obs']['joint_pos'][:, 0], [101, 102])
    s = w.sample(1)  # steps 0..1 observed, actions 1..4: everything real
    assert s['obs_mask'].all() and s['action_mask'].all()
    np.testing.assert_array_equal(s['action'][:, 0], [1.5, 2.5, 3.5, 4.5])


def test_batch_equals_single_samples():
    w = Windows(*_episodes(), history_len=2, chunk_size=3)
    b = w.batch([0, 4, 6])
    assert b['obs']['joint_pos'].shape == (3, 2, 2) and b['action'].shape == (3, 3, 8)
    for row, i in enumerate([0, 4, 6]):
        s = w.sample(i)
        np.testing.assert_array_equal(b['obs']['joint_pos'][row], s['obs']['joint_pos'])
        np.testing.assert_array_equal(b['action_mask'][row], s['action_mask'])


def test_bad_arguments_are_rejected():
    obs, actions = _episodes()
    with pytest.raises(ValueError, match='history_len'):
        Windows(obs, actions, history_len=0, chunk_size=2)
    with pytest.raises(ValueError, match='chunk_size'):
        Windows(obs, actions, history_len=1, chunk_size=1.5)
    w = Windows(obs, actions, 1, 1)
    with pytest.raises(IndexError):
        w.sample(8)
    with pytest.raises(IndexError):
        w.batch([0, 9])
