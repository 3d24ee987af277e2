"""
Train a policy from recorded demonstrations: trainer_node runs the whole pipeline.

ros2 launch lam_ros train.launch.py dataset:=lam_ros_demos output:=lam_ros_training
Progress appears on /diagnostics (rqt_runtime_monitor, Foxglove); the exported best
checkpoint's path on /trainer_node/best_checkpoint; cancel with
ros2 service call /trainer_node/cancel std_srvs/srv/Trigger.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    """Declare dataset, output and config, and start trainer_node with them."""
    arguments = [
        DeclareLaunchArgument('dataset', default_value='lam_ros_demos',
                              description='Recorder output directory (bags) or a dataset '
                                          'cache (.safetensors).'),
        DeclareLaunchArgument('output', default_value='lam_ros_training',
                              description='Run directory; launching again resumes there.'),
        DeclareLaunchArgument('config',
                              default_value=PathJoinSubstitution([
                                  FindPackageShare('lam_ros'), 'config', 'train.yaml']),
                              description='trainer_node params file (sizes, steps, RL budget, '
                                          'evaluation); copy config/train.yaml.'),
    ]
    trainer = Node(
        package='lam_ros', executable='trainer_node', name='trainer_node', output='screen',
        parameters=[LaunchConfiguration('config'),
                    {'dataset': LaunchConfiguration('dataset'),
                     'output_dir': LaunchConfiguration('output')}])
    return LaunchDescription(arguments + [trainer])
