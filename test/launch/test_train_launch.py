"""train.launch.py: its arguments reach trainer_node (runs where launch_ros is installed)."""

import os
from pathlib import Path

from nodes.ros_harness import claim_domain
import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / 'launch' / 'train.launch.py'


def test_train_launch_declares_dataset_output_and_config():
    text = LAUNCH.read_text()
    for name in ('dataset', 'output', 'config'):
        assert f"DeclareLaunchArgument('{name}'" in text
    assert "executable='trainer_node'" in text and "'train.yaml'" in text
    assert (ROOT / 'config' / 'train.yaml').is_file()


@pytest.fixture
def ament_prefix(tmp_path, monkeypatch):
    """Make an install prefix whose lam_ros share directory is this source tree."""
    index = tmp_path / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'lam_ros').write_text('')
    os.symlink(ROOT, tmp_path / 'share' / 'lam_ros')
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path))
    return tmp_path


def test_trainer_node_gets_the_launch_arguments(ament_prefix, tmp_path, monkeypatch):
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    pytest.importorskip('rclpy')
    import rclpy
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument
    from launch.launch_description_sources import get_launch_description_from_python_launch_file
    from launch_ros.actions import Node
    from rclpy.context import Context

    from lam_ros.data.recording.demos import DemoConfig, record_demos
    from lam_ros.nodes.trainer_node import check_params_files, TrainerNode
    monkeypatch.setenv('ROS_DOMAIN_ID', str(claim_domain()))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    demos = tmp_path / 'demos'
    record_demos(DemoConfig(task='lift', episodes=2, seed=0), demos)
    for arguments in ({'dataset': str(demos), 'output': str(tmp_path / 'run')}, {}):
        description = get_launch_description_from_python_launch_file(str(LAUNCH))
        context = LaunchContext()
        context.launch_configurations.update(arguments)
        nodes = []
        for entity in description.entities:
            if isinstance(entity, DeclareLaunchArgument):
                entity.execute(context)
            elif isinstance(entity, Node):
                entity._perform_substitutions(context)
                nodes.append(entity)
        assert [n.node_executable for n in nodes] == ['trainer_node']
        args = ['--ros-args']
        for value, is_file in nodes[0]._Node__expanded_parameter_arguments:
            assert not is_file or os.path.isfile(value), value
            args += ['--params-file', value] if is_file else ['-p', value]
        check_params_files(args)
    # The defaults (last expansion) with the dataset and small sizes given on top.
    args += ['-p', f'dataset:={demos}', '-p', f'output_dir:={tmp_path / "run"}',
             '-p', 'bc_steps:=1000000', '-p', 'd_model:=32', '-p', 'num_threads:=1']
    ros_context = Context()
    rclpy.init(args=args, context=ros_context)
    try:
        node = TrainerNode(context=ros_context)
        assert node.config.dataset == str(demos)
        assert node.config.output_dir == str(tmp_path / 'run')
        assert node.config.head == 'gaussian' and node.options.diagnostics_topic == '/diagnostics'
        node.destroy_node()
    finally:
        ros_context.try_shutdown()
