"""SuccessArchive keeps successful episodes only, step for step, and windows them with demos."""

from lam_ros.learn.rl.imitation import SuccessArchive
import numpy as np


def obs_at(t, n=2):
    """Observations of n envs at step t: joint_pos holds t, 10 t (env 0, env 1)."""
    return {'joint_pos': np.array([[t, t], [10 * t, 10 * t]], dtype=np.float64)[:n],
            'other': np.zeros((n, 5))}


def test_only_successes_are_kept_with_their_steps_and_commands():
    demo = ({'joint_pos': np.ones((3, 2), np.float32)}, np.ones((3, 2), np.float32))
    archive = SuccessArchive(2, ['joint_pos'], capacity=2, history_len=2, chunk_size=3,
                             demos=[demo])
    for t in range(4):
        active = np.array([True, t >= 1])  # env 1 holds until its first chunk
        archive.record(obs_at(t), obs_at(t)['joint_pos'] + 0.5, active)
    archive.end(0, False)
    archive.end(1, True)
    assert len(archive.kept) == 1 and archive.added == 1
    obs, actions = archive.kept[0]
    assert set(obs) == {'joint_pos'}
    np.testing.assert_array_equal(obs['joint_pos'][:, 0], [10, 20, 30])
    np.testing.assert_array_equal(actions[:, 0], [10.5, 20.5, 30.5])
    windows = archive.windows()
    assert len(windows) == 3 + 3  # the demo's steps and the kept episode's
    batch = windows.batch([3 + 2])  # the last step of the kept episode
    np.testing.assert_array_equal(batch['obs']['joint_pos'][0, :, 0], [20, 30])
    np.testing.assert_array_equal(batch['action_mask'][0], [True, False, False])
    # A failed episode leaves nothing behind: env 0 starts empty.
    archive.record(obs_at(7), obs_at(7)['joint_pos'], np.array([True, False]))
    archive.end(0, True)
    np.testing.assert_array_equal(archive.kept[1][0]['joint_pos'][:, 0], [7])


def test_capacity_drops_the_oldest_and_no_data_means_no_windows():
    archive = SuccessArchive(1, ['joint_pos'], capacity=2, history_len=1, chunk_size=1)
    assert archive.windows() is None
    for t in range(3):
        archive.record(obs_at(t, 1), obs_at(t, 1)['joint_pos'], np.array([True]))
        archive.end(0, True)
    assert [float(e[0]['joint_pos'][0, 0]) for e in archive.kept] == [1.0, 2.0]
    assert len(archive.windows()) == 2


def test_successes_on_replayed_failures_are_not_pushed_out_by_easy_ones():
    archive = SuccessArchive(1, ['joint_pos'], capacity=2, history_len=1, chunk_size=1)
    archive.record(obs_at(0, 1), obs_at(0, 1)['joint_pos'], np.array([True]))
    archive.end(0, True, hard=True)
    for t in range(1, 6):
        archive.record(obs_at(t, 1), obs_at(t, 1)['joint_pos'], np.array([True]))
        archive.end(0, True)
    assert [float(e[0]['joint_pos'][0, 0]) for e in archive.hard] == [0.0]
    assert [float(e[0]['joint_pos'][0, 0]) for e in archive.kept] == [4.0, 5.0]
    assert len(archive.windows()) == 3
