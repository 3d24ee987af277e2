"""Tests for the grasping environments: API, determinism, bad actions, spawn and success."""

import gymnasium as gym
from gymnasium.utils.env_checker import check_env
from lam_ros.sim import ENV_IDS, GraspEnv, make_env
from lam_ros.sim.robot import ALL_JOINT_NAMES, HOME_JOINT_POS
import numpy as np
import pytest


@pytest.fixture(scope='module')
def lift_env():
    env = make_env('lift')
    yield env
    env.close()


@pytest.fixture(scope='module')
def place_env():
    env = make_env('pick_place')
    yield env
    env.close()


@pytest.mark.filterwarnings('ignore::UserWarning')
@pytest.mark.parametrize('task', ['lift', 'pick_place'])
@pytest.mark.parametrize('camera', [False, True])
def test_check_env_passes(task, camera):
    cameras = {'scene': {'enabled': True, 'width': 16, 'height': 12, 'depth': True},
               'wrist': {'enabled': True, 'width': 10, 'height': 8, 'depth': False}} \
        if camera else {}
    env = make_env(task, cameras=cameras, render_mode='rgb_array')
    try:
        check_env(env)
        obs, _ = env.reset(seed=0)
        assert ('goal_pose' in obs) == (task == 'pick_place')
        if camera:
            assert obs['scene_rgb'].shape == (12, 16, 3) and obs['scene_rgb'].dtype == np.uint8
            assert obs['scene_depth'].shape == (12, 16, 1) and np.all(obs['scene_depth'] > 0)
            assert obs['wrist_rgb'].shape == (8, 10, 3) and 'wrist_depth' not in obs
        else:
            assert not [k for k in obs if k.endswith(('_rgb', '_depth'))]
        assert env.render().shape == (240, 320, 3)
    finally:
        env.close()


@pytest.mark.parametrize('robot', ['panda', 'xarm6'])
def test_the_wrist_camera_rides_on_the_tool_and_sees_the_cube_up_close(robot):
    """The wrist view changes as the hand moves; the scene view of the arm-free table does not."""
    env = make_env('lift', robot=robot, cameras={'scene': {'enabled': True, 'depth': True},
                                                 'wrist': {'enabled': True, 'depth': True}},
                   camera_observations=False)
    try:
        env.reset(seed=0)
        cube = env.object_pose()
        scene0, _ = env.camera_image('scene')
        wrist0, depth0 = env.camera_image('wrist')
        # Lower the tool straight over the cube: the wrist camera comes closer to the table.
        from lam_ros.sim import ScriptedExpert
        expert = ScriptedExpert('lift', seed=0, robot=env.robot)
        obs = env.observation()
        for _ in range(25):
            env.step(env.check_command(expert.act(obs)))
            obs = env.observation()
        wrist1, depth1 = env.camera_image('wrist')
        red = lambda rgb: np.mean((rgb[..., 0] > 150) & (rgb[..., 1] < 80))  # noqa: E731
        assert red(wrist1) > red(wrist0) > 0.0  # the (red) cube fills more of the view
        assert np.median(depth1) < np.median(depth0) < 1.0
        assert not np.array_equal(wrist0, wrist1)
        assert red(scene0) > 0.0 and np.linalg.norm(env.object_pose()[:2] - cube[:2]) < 0.05
        with pytest.raises(ValueError, match="camera 'top' is not enabled"):
            env.camera_image('top')
    finally:
        env.close()


def test_registered_ids_make_the_tasks():
    for task, env_id in ENV_IDS.items():
        env = gym.make(env_id)
        try:
            assert env.unwrapped.task == task
        finally:
            env.close()


def _rollout(task, seed, steps=25):
    env = make_env(task)
    try:
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        trace = [obs['object_pose']]
        for _ in range(steps):
            action = HOME_JOINT_POS + np.concatenate([rng.normal(0, 0.3, 7), [0.0]])
            action[7] = rng.uniform(0.0, 0.04)
            obs, reward, *_ = env.step(np.clip(action, env.action_space.low,
                                               env.action_space.high))
            trace.append(np.concatenate([obs['joint_pos'], obs['ee_pose'], [reward]]))
        return trace
    finally:
        env.close()


def test_same_seed_gives_identical_trajectories():
    first, second = _rollout('pick_place', 3), _rollout('pick_place', 3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_reset_with_the_same_seed_repeats_within_one_env(lift_env):
    runs = []
    for _ in range(2):
        obs, _ = lift_env.reset(seed=11)
        for _ in range(5):
            obs, *_ = lift_env.step(np.array([0.3, 0.2, 0.0, -2.0, 0.0, 2.2, 0.5, 0.01]))
        runs.append(obs)
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])


def test_different_seeds_differ():
    a, b = _rollout('lift', 1, steps=2), _rollout('lift', 2, steps=2)
    assert not np.allclose(a[0], b[0])


@pytest.mark.parametrize('action, match', [
    (np.full(8, np.nan), 'NaN'), (np.zeros(7), 'shape'), (np.zeros((2, 8)), 'shape'),
    (np.array([0.0, 0.0, 0.0, -2.0, 0.0, 2.0, 0.0, np.inf]), 'NaN'),
    (np.array([4.0, 0.0, 0.0, -2.0, 0.0, 2.0, 0.0, 0.02]), 'panda_joint1'),
    (np.array([0.0, 0.0, 0.0, -2.0, 0.0, 2.0, 0.0, 0.1]), 'panda_finger_joint1'),
    ('open', 'command')])
def test_bad_actions_raise(lift_env, action, match):
    lift_env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        lift_env.step(action)


def test_slightly_out_of_limit_actions_are_clipped(lift_env):
    lift_env.reset(seed=0)
    action = HOME_JOINT_POS.copy()
    action[3] = 0.03  # upper limit 0.0, inside the 0.05 rad tolerance
    action[7] = 0.043  # upper limit 0.04, inside the 5 mm tolerance
    clipped = lift_env.check_command(action)
    assert clipped[3] == 0.0 and clipped[7] == pytest.approx(0.04)
    lift_env.step(action)


def test_spawn_region_and_goal_zone(place_env):
    cfg = place_env.config
    yaws, min_gap = [], np.inf
    for seed in range(40):
        obs, info = place_env.reset(seed=seed)
        cube, goal = obs['object_pose'], obs['goal_pose']
        assert info['is_success'] is False
        assert np.all(np.abs(cube[:2] - cfg.spawn_center_xy_m) <= 0.1 + 1e-6)
        assert cube[2] == pytest.approx(0.025, abs=1e-4)
        assert np.all(np.abs(goal[:2] - cfg.goal_center_xy_m)
                      <= np.asarray(cfg.goal_size_xy_m) / 2 + 1e-6)
        min_gap = min(min_gap, np.linalg.norm(goal[:2] - cube[:2]))
        yaws.append(2 * np.arctan2(cube[6], cube[3]))
    assert cfg.spawn_size_xy_m[0] >= 0.2 and cfg.spawn_size_xy_m[1] >= 0.2
    # Zone disc and cube footprint never overlap.
    assert min_gap >= cfg.goal_radius_m + 0.05 * np.sqrt(0.5)
    # Every distinct orientation of the cube (a quarter turn) comes up.
    low, high = cfg.spawn_yaw_range_rad
    assert high - low >= np.pi / 2 - 1e-9
    assert np.all((np.array(yaws) >= low - 1e-6) & (np.array(yaws) <= high + 1e-6))
    assert np.ptp(yaws) > 0.8 * (high - low)


def test_fine_grained_interface(lift_env):
    lift_env.reset(seed=0)
    names, pos, vel, eff = lift_env.joint_state()
    assert names == ALL_JOINT_NAMES and pos.shape == vel.shape == eff.shape == (9,)
    assert lift_env.sim_time_s == 0.0
    lift_env.set_joint_targets(HOME_JOINT_POS * np.array([1, 1, 1, 1, 1, 1, 1, 0]))
    lift_env.step_physics(120)
    assert lift_env.sim_time_s == pytest.approx(0.5)
    _, pos, _, _ = lift_env.joint_state()
    assert pos[7] < 0.005 and pos[8] == pytest.approx(pos[7], abs=1e-3)
    assert lift_env.observation()['gripper_width'][0] == pytest.approx(pos[7] + pos[8])


def test_truncation_at_max_episode_steps():
    env = make_env('lift', max_episode_steps=3)
    try:
        env.reset(seed=0)
        flags = [env.step(HOME_JOINT_POS)[3] for _ in range(3)]
        assert flags == [False, False, True]
    finally:
        env.close()


def test_lift_needs_a_held_cube(lift_env):
    lift_env.reset(seed=0)
    cube = lift_env.observation()['object_pose'].astype(np.float64)
    cube[2] = 0.3  # high up but not in the hand: it falls, no success
    lift_env.set_object_pose(cube)
    for _ in range(12):
        _, _, terminated, _, info = lift_env.step(HOME_JOINT_POS)
        assert not info['is_success'] and not terminated


def test_pick_place_success_conditions(place_env):
    obs, _ = place_env.reset(seed=4)
    goal = obs['goal_pose'].astype(np.float64)
    open_hand = HOME_JOINT_POS
    closed_hand = np.concatenate([HOME_JOINT_POS[:7], [0.0]])

    def settle(pose_xy, action):
        place_env.set_object_pose([*pose_xy, 0.025, 1.0, 0.0, 0.0, 0.0])
        for _ in range(6):
            _, _, terminated, _, info = place_env.step(action)
        return info['is_success'], terminated

    outside = goal[:2] + np.array([place_env.config.goal_radius_m + 0.02, 0.0])
    assert settle(outside, open_hand) == (False, False)
    assert settle(goal[:2], closed_hand) == (False, False)
    assert settle(goal[:2], open_hand) == (True, True)


def test_human_render_without_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    with pytest.raises(RuntimeError, match='display'):
        make_env('lift', render_mode='human')


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match='task'):
        make_env('stack')
    with pytest.raises(ValueError, match='unknown TaskConfig fields'):
        make_env('lift', control_hz=10)
    with pytest.raises(ValueError, match='whole multiple'):
        make_env('lift', control_rate_hz=7.0)
    with pytest.raises(ValueError, match='render_mode'):
        GraspEnv('lift', render_mode='ascii')


def test_the_xarm_env_takes_its_joints_and_gripper_from_the_description():
    from lam_ros.description import load_robot
    robot = load_robot('xarm6')
    env = make_env('lift', robot='xarm6')
    try:
        assert env.action_space.shape == (7,)
        assert env.observation_space['joint_pos'].shape == (7,)
        obs, _ = env.reset(seed=3)
        names, pos, _, _ = env.joint_state()
        assert names == robot.state_joint_names and len(names) == 12
        with pytest.raises(ValueError, match='shape \\(7,\\).*drive_joint'):
            env.step(np.zeros(8))
        closed = np.array(robot.home_pose)
        closed[6] = robot.gripper.closed
        for _ in range(15):
            obs, *_ = env.step(closed)
        names, pos, _, _ = env.joint_state()
        # The mimic joints are driven in the sim: the linkage follows the drive joint.
        np.testing.assert_allclose(pos[7:], pos[6], atol=0.02)
        assert pos[6] > 0.8 and obs['gripper_width'][0] == pytest.approx(pos[6], abs=1e-6)
    finally:
        env.close()
