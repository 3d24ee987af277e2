"""
A trained policy driving the simulated Panda: sim_node + inference_node, enabled at start.

ros2 launch lam_ros sim_inference.launch.py checkpoint:=runs/bc_lift/best task:=lift
Reset the scene for a new episode with ros2 service call /sim_node/reset std_srvs/srv/Trigger
(and /inference_node/enable std_srvs/srv/SetBool "{data: true}" to restart the policy).
"""

from lam_ros.description import TASK_NAMES
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments, sim_node and inference_node."""
    config = PathJoinSubstitution([FindPackageShare('lam_ros'), 'config'])
    # camera:=true turns on both simulated cameras (sim_node's comma-separated `cameras`).
    cameras = PythonExpression(["'scene,wrist' if '", LaunchConfiguration('camera'),
                                "'.lower() == 'true' else ''"])
    arguments = [
        DeclareLaunchArgument('checkpoint', description='Policy checkpoint directory.'),
        DeclareLaunchArgument('task', default_value='lift', choices=list(TASK_NAMES),
                              description='Task to simulate (the one the policy learned).'),
        DeclareLaunchArgument('robot', default_value='panda',
                              description='Robot description: a name under config/robots/ '
                                          'or a YAML path.'),
        DeclareLaunchArgument('seed', default_value='0',
                              description='Seed of the first episode; -1 for random.'),
        DeclareLaunchArgument('camera', default_value='false',
                              description='Publish the scene and wrist cameras (for image '
                                          'policies).'),
        DeclareLaunchArgument('control_rate_hz', default_value='100.0',
                              description='Command rate of inference_node (Hz).'),
        DeclareLaunchArgument('command_interface', default_value='forward',
                              choices=['forward', 'trajectory'],
                              description='Float64MultiArray or JointTrajectory commands.'),
        DeclareLaunchArgument('device', default_value='auto',
                              description='auto, cpu or cuda.'),
        DeclareLaunchArgument('gui', default_value='false',
                              description='Open the PyBullet window (needs a display).'),
    ]
    sim = Node(
        package='lam_ros', executable='sim_node', name='sim_node', output='screen',
        parameters=[PathJoinSubstitution([config, 'sim_node.yaml']),
                    {'robot': LaunchConfiguration('robot'),
                     'task': LaunchConfiguration('task'), 'seed': LaunchConfiguration('seed'),
                     'cameras': cameras,
                     'gui': LaunchConfiguration('gui')}])
    inference = Node(
        package='lam_ros', executable='inference_node', name='inference_node', output='screen',
        parameters=[PathJoinSubstitution([config, 'inference_panda.yaml']),
                    {'checkpoint': LaunchConfiguration('checkpoint'),
                     'robot': LaunchConfiguration('robot'),
                     'control_rate_hz': LaunchConfiguration('control_rate_hz'),
                     'command_interface': LaunchConfiguration('command_interface'),
                     'device': LaunchConfiguration('device'),
                     'autostart': True}])
    return LaunchDescription(arguments + [sim, inference])
