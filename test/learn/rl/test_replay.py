"""SceneReplay: fresh seeds counted up, failed scenes replayed newest first, tries bounded."""

from lam_ros.learn.rl.replay import SceneReplay
import numpy as np
import pytest


def always(fraction=1.0, tries=2, capacity=8):
    """Return a SceneReplay that replays whenever a failure waits (fraction 1)."""
    return SceneReplay(100, fraction, tries, capacity, np.random.default_rng(0))


def test_fresh_seeds_count_up_and_successes_are_never_replayed():
    scenes = always()
    assert [scenes.start(i) for i in range(3)] == [100, 101, 102]
    assert not any(scenes.replayed(i) for i in range(3))
    for i in range(3):
        scenes.end(i, True)
    assert [scenes.start(i) for i in range(2)] == [103, 104]


def test_a_failed_scene_is_replayed_until_its_tries_run_out():
    scenes = always(tries=2)
    assert scenes.start(0) == 100
    scenes.end(0, False)
    played = []
    for _ in range(4):
        played.append(scenes.start(0))
        scenes.end(0, False)
    # Two more tries of scene 100, then fresh scenes (which fail and queue themselves).
    assert played[:3] == [100, 100, 101]
    assert scenes.replays == 3 and scenes.replay_successes == 0


def test_newest_failure_first_success_ends_the_replays_and_capacity_drops_the_oldest():
    scenes = always(tries=3, capacity=2)
    for i in range(3):
        scenes.start(i)  # 100, 101, 102
    for i in range(3):
        scenes.end(i, False)
    assert list(scenes.queue) == [(101, 3), (102, 3)]  # 100 dropped, the oldest
    assert scenes.start(5) == 102 and scenes.replayed(5)
    scenes.end(5, True)
    assert scenes.replay_successes == 1
    assert scenes.start(5) == 101
    scenes.end(5, None)  # cut off by an evaluation: not queued again
    assert not scenes.queue and scenes.start(5) == 103


def test_fraction_zero_never_queues_and_fraction_half_mixes():
    scenes = always(fraction=0.0)
    scenes.start(0)
    scenes.end(0, False)
    assert not scenes.queue and scenes.start(0) == 101
    mixed = always(fraction=0.5, tries=1000, capacity=1000)
    mixed.start(0)
    mixed.end(0, False)
    replayed = 0
    for _ in range(400):
        mixed.start(0)
        replayed += mixed.replayed(0)
        mixed.end(0, False)
    assert 150 < replayed < 250
    with pytest.raises(ValueError, match='fraction'):
        always(fraction=1.5)
