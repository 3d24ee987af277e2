"""InferenceController: the node's core path from joint states and policy chunks to commands."""

from hypothesis import event, given, HealthCheck, settings, strategies as st
from hypothesis.extra import numpy as hnp
from lam_ros.control.inference import InferenceConfig, InferenceController, prepare_image
from lam_ros.control.limits import load_urdf_limits
from lam_ros.description import load_robot
from lam_ros.policy import PolicyConfig
from lam_ros.sim.robot import ALL_JOINT_NAMES, HOME_JOINT_POS, JOINT_NAMES, panda_urdf_path
import numpy as np
import pytest

LIMITS = load_urdf_limits(panda_urdf_path())
PANDA = load_robot('panda')
K, RATE = 4, 100.0
POLICY = PolicyConfig(joint_names=JOINT_NAMES, obs_spec={'joint_pos': (8,), 'joint_vel': (8,),
                                                         'gripper_width': (1,)},
                      chunk_size=K, history_len=2, control_rate_hz=20.0)
HOME9 = np.r_[HOME_JOINT_POS, HOME_JOINT_POS[7]]


class ScriptedBackend:
    """A policy whose next outputs are given by the test (the input being fuzzed)."""

    def __init__(self, config=POLICY):
        self.config = config
        self.outputs = []
        self.seen = []

    def predict_chunk(self, obs, mask):
        self.seen.append((obs, mask))
        if self.outputs:
            return self.outputs.pop(0)
        return np.tile(HOME_JOINT_POS, (self.config.chunk_size, 1))


class Clock:
    def __init__(self):
        self.t = 10.0

    def __call__(self):
        return self.t


def make(**overrides):
    clock = Clock()
    backend = ScriptedBackend()
    cfg = InferenceConfig(checkpoint='unused', control_rate_hz=RATE, **overrides).resolved(PANDA)
    return InferenceController(backend, LIMITS, cfg, clock=clock), backend, clock


def test_joint_states_are_matched_by_name_and_the_gripper_width_summed():
    ctl, backend, clock = make()
    order = list(reversed(ALL_JOINT_NAMES)) + ['some_other_joint']
    pos = dict(zip(ALL_JOINT_NAMES, HOME9 + 0.01))
    pos['some_other_joint'] = 99.0
    assert ctl.on_joint_state(clock.t, order, [pos[n] for n in order]) == ''
    obs, why = ctl.observation(clock.t)
    assert why == ''
    np.testing.assert_allclose(obs['joint_pos'], HOME_JOINT_POS + 0.01)
    np.testing.assert_allclose(obs['gripper_width'], [2 * (HOME_JOINT_POS[7] + 0.01)])
    np.testing.assert_allclose(obs['joint_vel'], np.zeros(8))  # no velocities: at rest


def test_wrong_joint_names_give_a_clear_error_and_no_command():
    ctl, _, clock = make()
    ctl.enable(clock.t)
    error = ctl.on_joint_state(clock.t, ['joint_a', 'joint_b'], [0.0, 0.0])
    assert 'lacks' in error and 'panda_joint1' in error and 'joint_a' in error
    assert ctl.tick(clock.t) is None
    assert 'repeats' in ctl.on_joint_state(clock.t, ['a', 'a'], [0.0, 0.0])
    assert 'positions' in ctl.on_joint_state(clock.t, list(ALL_JOINT_NAMES), [0.0])


def test_disabled_publishes_nothing_and_enable_starts_at_the_measured_position():
    ctl, backend, clock = make()
    ctl.on_joint_state(clock.t, ALL_JOINT_NAMES, HOME9)
    assert ctl.tick(clock.t) is None
    ctl.enable(clock.t)
    np.testing.assert_allclose(ctl.tick(clock.t), HOME_JOINT_POS)
    np.testing.assert_allclose(ctl.disable(), HOME_JOINT_POS)
    assert ctl.tick(clock.t + 0.01) is None


def test_policy_chunks_drive_the_commands_through_the_gate():
    ctl, backend, clock = make()
    ctl.on_joint_state(clock.t, ALL_JOINT_NAMES, HOME9)
    ctl.enable(clock.t)
    goal = HOME_JOINT_POS - 0.002  # within one tick's velocity limit of home
    backend.outputs.append(np.tile(goal, (K, 1)))
    assert ctl.policy_step(0) is True
    obs, mask = backend.seen[-1]
    assert obs['joint_pos'].shape == (1, 2, 8) and mask.tolist() == [[False, True]]
    np.testing.assert_allclose(ctl.tick(clock.t + 0.001), goal)
    assert ctl.stats(clock.t)['policy_calls'] == 1


def test_stale_state_holds_within_two_control_periods():
    ctl, backend, clock = make(state_timeout_s=0.05)
    ctl.on_joint_state(clock.t, ALL_JOINT_NAMES, HOME9)
    ctl.enable(clock.t)
    far = HOME_JOINT_POS.copy()
    far[0] += 1.0  # far enough that the gate keeps stepping towards it for many ticks
    backend.outputs.append(np.tile(far, (K, 1)))
    ctl.policy_step(0)
    t0, commands = clock.t, []
    for i in range(20):
        commands.append((t0 + i / RATE, ctl.tick(t0 + i / RATE)))
    moving = [t for (t, a), (_, b) in zip(commands, commands[1:]) if not np.allclose(a, b)]
    assert moving, 'the arm should have been moving before the state went stale'
    # The state (at t0) is stale from t0 + 0.05 s on; from then on every command repeats.
    last_move = max(moving)
    assert last_move <= t0 + 0.05 + 2 / RATE
    assert 'old' in ctl.gate.reason
    clock.t = t0 + 0.2
    assert ctl.policy_step(1) is None  # and the policy does not run on stale state


def test_policy_failures_and_bad_chunks_are_counted_not_published():
    ctl, backend, clock = make()
    ctl.on_joint_state(clock.t, ALL_JOINT_NAMES, HOME9)
    ctl.enable(clock.t)
    backend.outputs.append(np.full((K, 8), np.nan))
    assert ctl.policy_step(0) is False
    assert ctl.stats(clock.t)['chunks_rejected'] == 1
    np.testing.assert_allclose(ctl.tick(clock.t), HOME_JOINT_POS)


def test_observations_beyond_joint_states_need_a_topic_and_arrive_checked():
    policy = PolicyConfig(joint_names=JOINT_NAMES, obs_spec={'joint_pos': (8,),
                                                             'object_pose': (7,)})
    cfg = InferenceConfig(checkpoint='x', control_rate_hz=RATE).resolved(PANDA)
    ctl = InferenceController(ScriptedBackend(policy), LIMITS, cfg, clock=Clock())
    ctl.on_joint_state(10.0, ALL_JOINT_NAMES, HOME9)
    assert ctl.observation(10.0)[1] == "no fresh ['object_pose']"
    assert 'shape' in ctl.on_observation(10.0, 'object_pose', np.zeros(3))
    assert 'NaN' in ctl.on_observation(10.0, 'object_pose', np.full(7, np.nan))
    assert ctl.on_observation(10.0, 'object_pose', np.r_[0.5, 0, 0.02, 1, 0, 0, 0]) == ''
    assert ctl.observation(10.05)[1] == ''
    ctl.on_joint_state(11.5, ALL_JOINT_NAMES, HOME9)
    assert ctl.observation(11.5)[1] == "no fresh ['object_pose']"
    with pytest.raises(ValueError, match='observation_topics'):
        InferenceController(ScriptedBackend(policy), LIMITS, InferenceConfig(checkpoint='x'))


def test_topics_and_gripper_come_from_the_robot_description_unless_set():
    cfg = InferenceConfig(command_interface='trajectory',
                          observation_topics=['object_pose:/cube/pose']).resolved(PANDA)
    assert cfg.command_topic == PANDA.topics.trajectory_command
    assert cfg.joint_state_topic == PANDA.topics.joint_state
    assert cfg.topic_of()['object_pose'] == '/cube/pose'
    assert cfg.topic_of()['goal_pose'] == PANDA.topics.goal_pose
    assert cfg.gripper_joints == list(PANDA.gripper.width_joints)
    mine = InferenceConfig(command_topic='/arm/cmd', gripper_joints=['a']).resolved(PANDA)
    assert mine.command_topic == '/arm/cmd' and mine.gripper_joints == ['a']


def test_config_validation():
    with pytest.raises(ValueError, match='command_interface'):
        InferenceConfig(command_interface='effort')
    with pytest.raises(ValueError, match='key:topic'):
        InferenceConfig(observation_topics=['object_pose'])
    with pytest.raises(ValueError, match='control_rate_hz'):
        InferenceConfig(control_rate_hz=0.0)


def test_prepare_image_converts_encodings_and_resizes_as_at_training():
    from lam_ros.data.images import resize_frame
    bgr = np.zeros((4, 6, 3), dtype=np.uint8)
    bgr[..., 0] = 255  # blue in bgr8
    rgb = prepare_image(bgr, 'bgr8', 'scene_rgb', (4, 6, 3))
    assert rgb.dtype == np.uint8 and rgb[0, 0].tolist() == [0, 0, 255]
    assert prepare_image(bgr, 'bgr8', 'wrist_rgb', (8, 12, 3)).shape == (8, 12, 3)
    depth = np.full((4, 6, 1), 1500, dtype=np.uint16)
    out = prepare_image(depth, '16UC1', 'scene_depth', (2, 3, 1))
    assert out.shape == (2, 3, 1) and np.allclose(out, 1.5)
    # The very resize the dataset builder applies (lam_ros.data.images).
    frame = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(prepare_image(frame, 'rgb8', 'scene_rgb', (12, 16, 3)),
                                  resize_frame(frame, (12, 16)))
    with pytest.raises(ValueError, match='rgb8'):
        prepare_image(bgr, 'yuv422', 'scene_rgb', (4, 6, 3))
    with pytest.raises(ValueError, match='not an image observation'):
        prepare_image(bgr, 'rgb8', 'rgb', (4, 6, 3))


def test_camera_frames_of_each_camera_come_from_its_own_topic_and_refusals_show():
    policy = PolicyConfig(joint_names=JOINT_NAMES, obs_spec={
        'joint_pos': (8,), 'scene_rgb': (8, 8, 3), 'wrist_rgb': (8, 8, 3),
        'wrist_depth': (8, 8, 1)})
    cfg = InferenceConfig(checkpoint='x', control_rate_hz=RATE).resolved(PANDA)
    topics = cfg.topic_of()
    assert topics['scene_rgb'] == '/scene_camera/image_raw'
    assert topics['wrist_depth'] == '/wrist_camera/depth/image_raw'
    ctl = InferenceController(ScriptedBackend(policy), LIMITS, cfg, clock=Clock())
    ctl.on_joint_state(10.0, ALL_JOINT_NAMES, HOME9)
    assert ctl.on_image(10.0, 'scene_rgb', np.zeros((24, 32, 3), np.uint8), 'bgr8') == ''
    assert ctl.on_image(10.0, 'wrist_rgb', np.zeros((8, 8, 3), np.uint8), 'rgb8') == ''
    error = ctl.on_image(10.0, 'wrist_depth', np.zeros((8, 8, 3), np.uint8), 'rgb8')
    assert error.startswith('wrist_depth: depth images must be 32FC1')
    assert ctl.stats(10.0)['observation_error'] == error
    assert ctl.observation(10.0)[1] == "no fresh ['wrist_depth']"
    assert ctl.on_image(10.0, 'wrist_depth', np.full((16, 16, 1), 900, np.uint16),
                        '16UC1') == ''
    obs, why = ctl.observation(10.0)
    assert why == '' and ctl.stats(10.0)['observation_error'] == ''
    assert obs['scene_rgb'].shape == (8, 8, 3) and np.allclose(obs['wrist_depth'], 0.9)
    assert 'does not observe' in ctl.on_image(10.0, 'top_rgb', np.zeros((8, 8, 3)), 'rgb8')


# ---- the safety property, on the node's own core path ----

values = st.floats(allow_nan=True, allow_infinity=True, width=64)
chunks = hnp.arrays(np.float64, (K, 8), elements=values)
names = st.sampled_from([list(ALL_JOINT_NAMES), list(reversed(ALL_JOINT_NAMES)),
                         list(ALL_JOINT_NAMES[:5]), ['a', 'b'], list(ALL_JOINT_NAMES) + ['x']])
joint_states = st.tuples(names, st.lists(values, min_size=0, max_size=10))
home_states = st.tuples(st.just('home_state'),
                        hnp.arrays(np.float64, 9, elements=st.floats(-0.05, 0.05)))
policy_outputs = st.tuples(st.just('policy'), chunks)
ticks = st.tuples(st.just('ticks'), st.integers(1, 30))
# Mostly a live loop (fresh states, policy calls, ticks), with every kind of fault mixed in.
events = st.lists(st.one_of(
    home_states, home_states, policy_outputs, policy_outputs, ticks, ticks,
    st.tuples(st.just('state'), joint_states),
    st.tuples(st.just('wait'), st.floats(0.0, 0.2)),
    st.tuples(st.just('toggle'), st.booleans())), min_size=5, max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events)
def test_no_command_ever_leaves_the_position_or_velocity_limits(events):
    ctl, backend, clock = make()
    limits, max_step = ctl.limits, LIMITS.select(JOINT_NAMES).velocity / RATE
    ctl.on_joint_state(clock.t, ALL_JOINT_NAMES, HOME9)
    ctl.enable(clock.t)
    previous, step, published = None, 0, 0
    for kind, value in events + [('ticks', 10)]:
        if kind == 'state':
            ctl.on_joint_state(clock.t, value[0], value[1])
        elif kind == 'home_state':
            ctl.on_joint_state(clock.t, ALL_JOINT_NAMES, HOME9 + value)
        elif kind == 'policy':
            backend.outputs.append(value)
            ctl.policy_step(step)
            step += 1
        elif kind == 'wait':
            clock.t += value
        elif kind == 'toggle':
            if value:
                ctl.enable(clock.t)
            else:
                ctl.disable()
            previous = None  # a (re)start begins at the measured position
            continue
        else:
            for _ in range(value):
                clock.t += 1.0 / RATE
                command = ctl.tick(clock.t)
                if command is None:
                    continue
                assert np.all(np.isfinite(command))
                assert np.all(command >= limits.lower) and np.all(command <= limits.upper)
                if previous is not None:
                    assert np.all(np.abs(command - previous) <= max_step + 1e-12)
                previous = command
                published += 1
    event('published' if published else 'nothing published')


def test_a_chunk_computed_across_a_re_enable_is_dropped():
    ctl, backend, clock = make()
    ctl.on_joint_state(clock.t, ALL_JOINT_NAMES, HOME9)
    ctl.enable(clock.t)
    chunk = np.tile(HOME_JOINT_POS - 0.002, (K, 1))

    def re_enabled(obs, mask):
        ctl.enable(clock.t)  # the operator restarts while the forward pass runs
        return chunk

    backend.predict_chunk = re_enabled
    assert ctl.policy_step(0) is None
    assert ctl.scheduler.chunks_added == 0
