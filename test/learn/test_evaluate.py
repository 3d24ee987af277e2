"""Policy evaluation in PyBullet: statistics, seeds, env set-up from the policy, errors."""

from lam_ros.learn.evaluate import EVAL_SEED_START, evaluate_policy, make_eval_env, wilson_interval
from lam_ros.policy import PolicyConfig, save_checkpoint, TransformerPolicy
from lam_ros.sim import JOINT_NAMES
import numpy as np
import pytest
import torch

STATE = {'joint_pos': (8,), 'object_pose': (7,)}


def hold_home_policy(obs_spec=None, chunk_size=4):
    """
    Return a policy whose output is the mean action: the Panda's home pose, gripper open.

    With zero output weights the network predicts 0 in normalised units, i.e. exactly the
    action mean, so the arm holds still and never lifts the cube.
    """
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec=obs_spec or STATE, d_model=16,
                          n_heads=2, n_layers=1, chunk_size=chunk_size, dropout=0.0,
                          control_rate_hz=20.0, image_channels=(4,))
    model = TransformerPolicy(config)
    home = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04], np.float32)
    stats = {k: {'mean': np.zeros(s[0], np.float32), 'std': np.ones(s[0], np.float32)}
             for k, s in config.obs_spec.items() if len(s) == 1}
    stats['action'] = {'mean': home, 'std': np.full(8, 0.1, np.float32)}
    model.normalizer.fit(stats)
    torch.nn.init.zeros_(model.action_head.weight)
    return model.eval()


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(95, 100)
    assert low == pytest.approx(0.8883, abs=1e-4) and high == pytest.approx(0.9785, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='successes'):
        wilson_interval(3, 2)
    with pytest.raises(ValueError, match='trials'):
        wilson_interval(0, 0)


def test_a_policy_that_holds_still_fails_every_episode_on_unseen_seeds(tmp_path):
    path = save_checkpoint(tmp_path / 'ckpt', hold_home_policy(), {'task': 'lift'})
    seen = []
    result = evaluate_policy(path, 'lift', episodes=2, query_every=2, on_episode=seen.append)
    assert result['successes'] == 0 and result['success_rate'] == 0.0
    assert result['success_ci95'][0] == 0.0 and 0.5 < result['success_ci95'][1] < 0.9
    assert result['mean_time_to_success_s'] is None
    assert [r['seed'] for r in result['records']] == [EVAL_SEED_START, EVAL_SEED_START + 1]
    assert seen == result['records']
    # Lift episodes run to the 150-step limit; the policy ran every second step.
    assert [r['steps'] for r in result['records']] == [150, 150]
    assert all(r['clipped_steps'] == 0 for r in result['records'])
    assert result['mean_return'] > 0 and result['mean_policy_ms'] > 0


def test_commands_outside_the_joint_limits_are_clamped_and_counted():
    model = hold_home_policy()
    # Ask for a finger opening of 0.06 m, beyond the 0.04 m limit and the env's tolerance.
    model.normalizer.stats['action'].mean[7] = 0.06
    result = evaluate_policy(model, 'lift', episodes=1, seed=5)
    assert result['records'][0]['clipped_steps'] == result['records'][0]['steps']


def test_image_policies_get_the_cameras_they_were_trained_with():
    model = hold_home_policy({'joint_pos': (8,), 'scene_rgb': (24, 32, 3),
                              'wrist_rgb': (16, 16, 3), 'wrist_depth': (16, 16, 1)})
    env = make_eval_env(model, 'lift')
    try:
        obs, _ = env.reset(seed=0)
        assert obs['scene_rgb'].shape == (24, 32, 3) and 'scene_depth' not in obs
        assert obs['wrist_rgb'].shape == (16, 16, 3) and obs['wrist_depth'].shape == (16, 16, 1)
    finally:
        env.close()


def test_mismatches_are_reported(tmp_path):
    path = save_checkpoint(tmp_path / 'ckpt', hold_home_policy(), {'task': 'lift'})
    with pytest.raises(ValueError, match="trained on task 'lift', not 'pick_place'"):
        evaluate_policy(path, 'pick_place', episodes=1)
    goal = hold_home_policy({'joint_pos': (8,), 'goal_pose': (7,)})
    with pytest.raises(ValueError, match=r"does not observe \['goal_pose'\]"):
        evaluate_policy(goal, 'lift', episodes=1)
    with pytest.raises(ValueError, match='episodes'):
        evaluate_policy(goal, 'lift', episodes=0)
    with pytest.raises(ValueError, match='.gif or .mp4'):
        evaluate_policy(goal, 'lift', episodes=1, video_path=str(tmp_path / 'x.avi'))
    with pytest.raises(ValueError, match='checkpoint directory or a TransformerPolicy'):
        evaluate_policy(3, 'lift', episodes=1)


def test_a_policy_that_lifts_succeeds_and_reports_its_time_to_success(lifting_policy, tmp_path):
    """The success path: early episode ends, time to success, interval and video."""
    gif = tmp_path / 'lift.gif'
    result = evaluate_policy(lifting_policy, 'lift', episodes=3, video_path=str(gif),
                             video_episodes=1)
    succeeded = [r for r in result['records'] if r['success']]
    assert len(succeeded) >= 2, result['records']
    assert result['successes'] == len(succeeded)
    assert result['success_rate'] == len(succeeded) / 3
    for record in succeeded:
        # An episode ends at success, well before the 150-step limit; 20 Hz control.
        assert record['steps'] < 150
        assert record['time_to_success_s'] == pytest.approx(record['steps'] / 20.0)
    assert result['mean_time_to_success_s'] == pytest.approx(sum(
        r['time_to_success_s'] for r in succeeded) / len(succeeded))
    low, high = result['success_ci95']
    assert 0.0 < low < result['success_rate'] <= high <= 1.0
    assert gif.read_bytes()[:6] == b'GIF89a'


def test_the_gif_of_an_image_policy_shows_what_its_camera_saw(tmp_path):
    from PIL import Image
    model = hold_home_policy({'joint_pos': (8,), 'scene_rgb': (24, 32, 3)})
    gif = tmp_path / 'cam.gif'
    evaluate_policy(model, 'lift', episodes=1, query_every=4, video_path=str(gif))
    with Image.open(gif) as image:
        # The 320x240 render, then the 32x24 camera image scaled to 240 rows (320 wide).
        assert image.size == (640, 240)


def test_film_frame_scales_each_camera_to_the_render_height():
    from lam_ros.learn.evaluate import film_frame
    model = hold_home_policy({'joint_pos': (8,), 'scene_rgb': (8, 12, 3),
                              'scene_depth': (8, 12, 1)})
    render = np.zeros((16, 5, 3), np.uint8)
    rgb = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    depth = np.zeros((8, 12, 1), np.float32)
    depth[0, :4, 0] = [0.0, 1.0, 2.0, 9.0]
    frame = film_frame(render, {'scene_rgb': rgb, 'scene_depth': depth}, model.config)
    assert frame.shape == (16, 5 + 24 + 24, 3) and frame.dtype == np.uint8
    # Cameras in config.image_keys order (scene_depth, scene_rgb); each pixel doubled both
    # ways; depth is grey with near bright (depth_max_m 2 m and beyond: black).
    assert np.array_equal(frame[0, 5:13:2, 0], [255, 127, 0, 0])
    assert np.array_equal(frame[::2, 29::2], rgb)
