"""PPO from a camera policy: the env gets the policy's camera, images stay uint8 throughout."""

import math

from lam_ros.data.dataset.build import build_dataset
from lam_ros.data.recording.demos import DemoConfig, record_demos
from lam_ros.learn.bc import BCConfig, train_bc
from lam_ros.learn.rl import RLConfig, train_rl
from lam_ros.learn.rl.buffer import Buffer
from lam_ros.learn.rl.envs import task_factory
from lam_ros.learn.rl.run_state import read_rl_metrics
from lam_ros.policy import load_checkpoint, PolicyConfig
from lam_ros.sim import JOINT_NAMES
import numpy as np
import pytest
import torch

SPEC = {'joint_pos': (8,), 'scene_rgb': (16, 16, 3)}


@pytest.fixture(scope='module')
def camera_dataset(tmp_path_factory):
    """Record two lift demos with a 16x16 camera."""
    out = tmp_path_factory.mktemp('camera_demos')
    record_demos(DemoConfig(task='lift', episodes=2, seed=0, cameras='scene', camera_width=16,
                            camera_height=16), out)
    return build_dataset(out)


@pytest.fixture(scope='module')
def image_checkpoint(camera_dataset, tmp_path_factory):
    """Train a tiny gaussian-head ResNet-keypoint policy for a few steps (shifted images)."""
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec=SPEC, head='gaussian', d_model=16,
                          n_heads=2, n_layers=1, history_len=2, chunk_size=4, dropout=0.0,
                          image_encoder='resnet', image_channels=(4, 8), image_keypoints=4)
    bc = BCConfig(steps=6, batch_size=8, eval_interval=6, warmup_steps=1, image_shift=2,
                  progress=False, num_threads=1)
    result = train_bc(camera_dataset, config, bc, str(tmp_path_factory.mktemp('bc')),
                      task='lift')
    return result.last_checkpoint


def test_the_task_factory_gives_the_camera_the_policy_observes():
    env = task_factory('lift', 20.0, cameras={'scene': {'enabled': True, 'width': 16,
                                                        'height': 16, 'depth': False}})()
    try:
        obs, _ = env.reset(seed=0)
        assert obs['scene_rgb'].shape == (16, 16, 3) and obs['scene_rgb'].dtype == np.uint8
    finally:
        env.close()


def test_rollout_buffer_keeps_images_uint8(image_checkpoint):
    model, _ = load_checkpoint(image_checkpoint)
    buffer = Buffer(4, 2, model.config, torch.device('cpu'))
    assert buffer.obs['scene_rgb'].dtype == torch.uint8
    assert buffer.obs['joint_pos'].dtype == torch.float32


def test_ppo_smoke_run_on_an_image_checkpoint(image_checkpoint, camera_dataset, tmp_path):
    def short_lift():
        from lam_ros.sim import make_env
        return make_env('lift', max_episode_steps=12,
                        cameras={'scene': {'enabled': True, 'width': 16, 'height': 16,
                                           'depth': False}})
    cfg = RLConfig(total_env_steps=48, num_envs=2, vector='sync', rollout_steps=12,
                   query_every=4, epochs=1, minibatch_size=8, eval_interval=48,
                   eval_episodes=1, critic_warmup_updates=1, num_threads=1, progress=False,
                   anneal_env_steps=48, imitation_capacity=2, imitation_steps=1,
                   imitation_batch_size=4)
    result = train_rl(image_checkpoint, str(tmp_path / 'rl'), cfg, env=short_lift,
                      demos=camera_dataset)
    assert result.env_steps == 48 and not result.interrupted
    updates = [r for r in read_rl_metrics(result.metrics_csv) if r['value_loss'] is not None]
    assert updates and all(math.isfinite(r['value_loss']) for r in updates)
    assert any(r['policy_loss'] is not None and math.isfinite(r['policy_loss'])
               for r in updates)
    model, meta = load_checkpoint(result.last_checkpoint)
    assert model.config.image_encoder == 'resnet' and meta['rl']['env_steps'] == 48
