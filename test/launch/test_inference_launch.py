"""
The inference launch files: real launch_ros descriptions whose nodes start with their params.

Runs where ``launch`` and ``launch_ros`` are importable (a ROS 2 install) and skips elsewhere.
"""

import os
from pathlib import Path

from lam_ros.policy import PolicyConfig, save_checkpoint, TransformerPolicy
from lam_ros.sim.robot import JOINT_NAMES
from nodes.ros_harness import claim_domain
import pytest

ROOT = Path(__file__).resolve().parents[2]

CASES = [
    ('sim_inference.launch.py', {}, {'autostart': True, 'command_interface': 'forward',
                                     'command_topic': '/forward_position_controller/commands',
                                     'robot': 'panda'}),
    ('inference.launch.py', {'command_interface': 'trajectory', 'control_rate_hz': '500.0'},
     {'autostart': False, 'command_interface': 'trajectory', 'control_rate_hz': 500.0,
      'command_topic': '/joint_trajectory_controller/joint_trajectory',
      'joint_state_topic': '/joint_states', 'max_velocity_scale': 0.5}),
]


@pytest.fixture
def ament_prefix(tmp_path, monkeypatch):
    """Make an install prefix in which lam_ros's share directory is this source tree."""
    index = tmp_path / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'lam_ros').write_text('')
    os.symlink(ROOT, tmp_path / 'share' / 'lam_ros')
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path))
    return tmp_path


def _expand(path: Path, arguments: dict):
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument
    from launch.launch_description_sources import get_launch_description_from_python_launch_file
    from launch_ros.actions import Node
    description = get_launch_description_from_python_launch_file(str(path))
    context = LaunchContext()
    context.launch_configurations.update(arguments)
    nodes = []
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.execute(context)
        elif isinstance(entity, Node):
            entity._perform_substitutions(context)
            nodes.append(entity)
    return nodes


@pytest.mark.parametrize('name,arguments,expected', CASES, ids=[c[0] for c in CASES])
def test_inference_launch_starts_the_node_with_its_parameters(name, arguments, expected,
                                                              ament_prefix, tmp_path,
                                                              monkeypatch):
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    pytest.importorskip('rclpy')
    import rclpy
    from rclpy.context import Context
    from lam_ros.nodes.inference_node import InferenceNode
    monkeypatch.setenv('ROS_DOMAIN_ID', str(claim_domain()))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    checkpoint = tmp_path / 'policy'
    save_checkpoint(checkpoint, TransformerPolicy(PolicyConfig(
        joint_names=JOINT_NAMES, obs_spec={'joint_pos': (8,)}, d_model=16, n_heads=2,
        n_layers=1)))
    nodes = _expand(ROOT / 'launch' / name, dict(arguments, checkpoint=str(checkpoint)))
    executables = sorted(n.node_executable for n in nodes)
    assert executables == (['inference_node', 'sim_node'] if name.startswith('sim')
                           else ['inference_node'])
    node = next(n for n in nodes if n.node_executable == 'inference_node')
    args = ['--ros-args']
    for value, is_file in node._Node__expanded_parameter_arguments:
        assert not is_file or os.path.isfile(value), value
        args += ['--params-file', value] if is_file else ['-p', value]
    context = Context()
    rclpy.init(args=args, context=context)
    try:
        instance = InferenceNode(context=context)
        try:
            assert instance.config.checkpoint == str(checkpoint)
            for key, value in expected.items():
                assert getattr(instance.config, key) == value, key
            assert instance.ctl.enabled == expected['autostart']
        finally:
            instance.destroy_node()
    finally:
        context.try_shutdown()


@pytest.mark.parametrize('name', ['inference_panda.yaml', 'inference_template.yaml'])
def test_inference_params_files_parse_and_name_only_real_parameters(name):
    from dataclasses import fields

    from lam_ros.control.inference import InferenceConfig
    import yaml
    path = ROOT / 'config' / name
    params = yaml.safe_load(path.read_text())['inference_node']['ros__parameters']
    known = {f.name for f in fields(InferenceConfig)} | {'robot_description'}
    assert set(params) <= known, set(params) - known
    assert params['autostart'] is False
    InferenceConfig(**{k: v for k, v in params.items() if k != 'robot_description'})
    pytest.importorskip('rclpy')
    import rclpy
    from rclpy.context import Context
    context = Context()
    rclpy.init(args=['--ros-args', '--params-file', str(path)], context=context)  # rcl's parser
    context.try_shutdown()
