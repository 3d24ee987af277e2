"""TemporalEnsembler: ACT's weighted blend, sparse and late policy calls, holding, errors."""

from lam_ros.control.ensembling import TemporalEnsembler
import numpy as np
import pytest


def test_matches_a_hand_computed_blend():
    ens = TemporalEnsembler(chunk_size=3, action_dim=1, decay=0.5)
    ens.add_chunk([[0.0], [1.0], [2.0]])      # predicted at step 0 for steps 0, 1, 2
    assert ens.next_action() == pytest.approx([0.0])
    ens.add_chunk([[10.0], [11.0], [12.0]])   # predicted at step 1 for steps 1, 2, 3
    # Step 1: predictions 1.0 (oldest, weight 1) and 10.0 (weight e^-0.5).
    w = np.exp(-0.5)
    assert ens.next_action() == pytest.approx([(1.0 + w * 10.0) / (1 + w)])
    ens.add_chunk([[20.0], [21.0], [22.0]])   # predicted at step 2
    w2 = np.exp(-1.0)
    assert ens.next_action() == pytest.approx([(2.0 + w * 11.0 + w2 * 20.0) / (1 + w + w2)])
    # Step 3: the step-0 chunk has run out; two predictions remain.
    assert ens.num_predictions() == 2
    assert ens.next_action() == pytest.approx([(12.0 + w * 21.0) / (1 + w)])


def test_zero_decay_is_a_plain_mean_over_every_joint():
    ens = TemporalEnsembler(chunk_size=4, action_dim=2, decay=0.0)
    rng = np.random.default_rng(0)
    chunks = [rng.normal(size=(4, 2)) for _ in range(4)]
    for chunk in chunks:
        ens.add_chunk(chunk)
        if ens.step < 3:
            ens.next_action()
    expected = np.mean([chunks[i][3 - i] for i in range(4)], axis=0)
    np.testing.assert_allclose(ens.next_action(), expected)


def test_policy_called_every_n_steps_plays_the_chunk_between_calls():
    ens = TemporalEnsembler(chunk_size=4, action_dim=1)
    commands = []
    for call in range(3):
        start = call * 2
        ens.add_chunk(np.arange(start, start + 4, dtype=float)[:, None] + 100 * call)
        commands += [ens.next_action()[0], ens.next_action()[0]]
    w = np.exp(-0.01)
    assert commands[:2] == pytest.approx([0.0, 1.0])
    assert commands[2] == pytest.approx((2.0 + w * 102.0) / (1 + w))
    assert commands[3] == pytest.approx((3.0 + w * 103.0) / (1 + w))


def test_late_chunks_skip_past_steps_and_the_last_command_is_held():
    ens = TemporalEnsembler(chunk_size=3, action_dim=1, decay=0.01)
    ens.add_chunk([[0.0], [1.0], [2.0]])
    for expected in (0.0, 1.0, 2.0, 2.0, 2.0):    # ran out at step 3: hold
        assert ens.next_action() == pytest.approx([expected])
    assert ens.num_predictions() == 0
    # Observed at step 4, arrives at step 5: its first entry is already history.
    ens.add_chunk([[40.0], [50.0], [60.0]], step=4)
    assert ens.next_action() == pytest.approx([50.0])
    assert ens.step == 6


def test_reset_starts_a_new_episode():
    ens = TemporalEnsembler(chunk_size=2, action_dim=1)
    ens.add_chunk([[1.0], [2.0]])
    ens.next_action()
    ens.reset()
    assert ens.step == 0 and ens.num_predictions() == 0
    with pytest.raises(RuntimeError, match='add_chunk'):
        ens.next_action()


def test_returned_commands_are_copies():
    ens = TemporalEnsembler(chunk_size=2, action_dim=1)
    chunk = np.array([[1.0], [2.0]])
    ens.add_chunk(chunk)
    chunk[:] = 99.0
    first = ens.next_action()
    first[:] = -5.0
    ens.next_action()
    assert ens.next_action() == pytest.approx([2.0])


@pytest.mark.parametrize('kwargs, message', [
    ({'chunk_size': 0, 'action_dim': 8}, 'chunk_size'),
    ({'chunk_size': 4, 'action_dim': 2.0}, 'action_dim'),
    ({'chunk_size': 4, 'action_dim': 8, 'decay': -0.1}, 'decay'),
    ({'chunk_size': 4, 'action_dim': 8, 'decay': float('nan')}, 'decay'),
])
def test_bad_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TemporalEnsembler(**kwargs)


def test_bad_chunks_are_refused():
    ens = TemporalEnsembler(chunk_size=2, action_dim=2)
    with pytest.raises(ValueError, match=r'shape \(2, 2\)'):
        ens.add_chunk(np.zeros((3, 2)))
    with pytest.raises(ValueError, match='NaN'):
        ens.add_chunk([[0.0, np.nan], [0.0, 0.0]])
    with pytest.raises(ValueError, match='future'):
        ens.add_chunk(np.zeros((2, 2)), step=1)
    ens.add_chunk(np.zeros((2, 2)))
    ens.next_action()
    ens.add_chunk(np.zeros((2, 2)), step=1)
    with pytest.raises(ValueError, match='older'):
        ens.add_chunk(np.zeros((2, 2)), step=0)


def test_blend_reads_any_coming_step_and_advance_to_moves_on():
    ens = TemporalEnsembler(3, 1, decay=0.0)
    ens.add_chunk(np.array([[0.0], [1.0], [2.0]]))
    ens.advance_to(1)
    ens.add_chunk(np.array([[10.0], [11.0], [12.0]]), step=1)
    np.testing.assert_allclose(ens.blend(2), [(2.0 + 11.0) / 2])
    np.testing.assert_allclose(ens.blend(3), [12.0])
    assert ens.blend(4) is None and ens.step == 1
    with np.testing.assert_raises(ValueError):
        ens.blend(0)
    ens.advance_to(4)
    ens.advance_to(2)  # never back
    assert ens.step == 4 and ens.num_predictions() == 0
    np.testing.assert_allclose(ens.next_action(), [12.0])  # held
