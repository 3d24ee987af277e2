"""
The simulated Panda alone, standing in for a ros2_control arm.

ros2 launch lam_ros sim.launch.py task:=pick_place
Then point any lam_ros launch file for a real arm (record.launch.py, ...) at it.
"""

from lam_ros.description import TASK_NAMES
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and sim_node."""
    config = PathJoinSubstitution([FindPackageShare('lam_ros'), 'config'])
    # camera:=true turns on both simulated cameras (sim_node's comma-separated `cameras`).
    cameras = PythonExpression(["'scene,wrist' if '", LaunchConfiguration('camera'),
                                "'.lower() == 'true' else ''"])
    arguments = [
        DeclareLaunchArgument('task', default_value='lift', choices=list(TASK_NAMES),
                              description='Task to simulate.'),
        DeclareLaunchArgument('seed', default_value='0',
                              description='Seed of the first episode; -1 for random.'),
        DeclareLaunchArgument('real_time_factor', default_value='1.0',
                              description='Simulated seconds per wall second (0 = max).'),
        DeclareLaunchArgument('camera', default_value='false',
                              description='Publish the scene and wrist cameras '
                                          '(/scene_camera/..., /wrist_camera/...).'),
        DeclareLaunchArgument('gui', default_value='false',
                              description='Open the PyBullet window (needs a display).'),
    ]
    sim = Node(
        package='lam_ros', executable='sim_node', name='sim_node', output='screen',
        parameters=[PathJoinSubstitution([config, 'sim_node.yaml']),
                    {'task': LaunchConfiguration('task'), 'seed': LaunchConfiguration('seed'),
                     'real_time_factor': LaunchConfiguration('real_time_factor'),
                     'cameras': cameras,
                     'gui': LaunchConfiguration('gui')}])
    return LaunchDescription(arguments + [sim])
