"""The command gate: nothing it returns leaves the limits or outruns the velocity limits."""

from hypothesis import given, settings, strategies as st
from lam_ros.control.gate import CommandGate, GateConfig
from lam_ros.control.limits import JointLimits
import numpy as np
import pytest

LIMITS = JointLimits(('a', 'b', 'finger'), np.array([-2.0, -1.0, 0.0]),
                     np.array([2.0, 1.5, 0.04]), np.array([2.0, 1.0, 0.2]))
RATE_HZ = 100.0

wild = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                 st.floats(-1e300, 1e300), st.floats(-3.0, 3.0))
targets = st.one_of(st.none(), st.lists(wild, min_size=0, max_size=4),
                    st.lists(wild, min_size=3, max_size=3))
states = st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=2,
                  max_size=4)


def make_gate(**config) -> CommandGate:
    return CommandGate(LIMITS, RATE_HZ, GateConfig(**config))


def test_nothing_before_a_state_then_anchor_on_it():
    gate = make_gate()
    assert gate.step(0.0, [0.0, 0.0, 0.02]) is None
    assert gate.update_state(0.0, [0.5, -0.2, 0.01])
    np.testing.assert_allclose(gate.step(0.0, None), [0.5, -0.2, 0.01])
    assert gate.reason == 'no target'


def test_far_target_is_approached_at_the_velocity_limit():
    gate = make_gate()
    gate.update_state(0.0, [0.0, 0.0, 0.0])
    cmd = gate.step(0.0, [10.0, -10.0, 1.0])
    np.testing.assert_allclose(cmd, [0.02, -0.01, 0.002])
    assert gate.reason == ''


def test_stale_state_holds_within_the_timeout():
    gate = make_gate(state_timeout_s=0.02)
    gate.update_state(0.0, [0.0, 0.0, 0.0])
    first = gate.step(0.0, [1.0, 1.0, 0.04])
    held = gate.step(0.03, [1.0, 1.0, 0.04])
    np.testing.assert_array_equal(first, held)
    assert 'old' in gate.reason


@pytest.mark.parametrize('state', [[0.0, 0.0], [np.nan, 0.0, 0.0], [9.0, 0.0, 0.0]])
def test_malformed_state_is_refused(state):
    gate = make_gate()
    assert not gate.update_state(0.0, state)
    assert gate.step(0.0, [0.0, 0.0, 0.0]) is None


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match='max_velocity_scale'):
        GateConfig(max_velocity_scale=0.0)
    with pytest.raises(ValueError, match='control_rate_hz'):
        CommandGate(LIMITS, 0.0)
    no_vel = JointLimits(('a',), np.array([-1.0]), np.array([1.0]), np.array([np.inf]))
    with pytest.raises(ValueError, match='velocity limit'):
        CommandGate(no_vel, RATE_HZ)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(targets, states, st.floats(0.0, 0.05)), min_size=1, max_size=30),
       st.floats(0.1, 1.0), st.floats(0.001, 1.0))
def test_no_command_ever_leaves_the_limits(ticks, scale, max_step):
    gate = make_gate(max_velocity_scale=scale, max_step=max_step, state_timeout_s=0.03)
    per_tick = np.minimum(scale * LIMITS.velocity / RATE_HZ, max_step) + 1e-12
    now, last = 0.0, None
    for target, state, dt in ticks:
        now += dt
        gate.update_state(now, state[:3] if len(state) >= 3 else state)
        cmd = gate.step(now, target)
        if cmd is None:
            assert last is None
            continue
        assert np.all(np.isfinite(cmd))
        assert np.all(cmd >= LIMITS.lower) and np.all(cmd <= LIMITS.upper)
        if last is not None:
            assert np.all(np.abs(cmd - last) <= per_tick)
        last = cmd
