"""
Run a trained policy on a real arm through its ros2_control controller; starts disabled.

ros2 launch lam_ros inference.launch.py checkpoint:=runs/bc_lift/best robot:=my_arm \
    command_interface:=forward
Nothing moves until ros2 service call /inference_node/enable std_srvs/srv/SetBool
"{data: true}"; "{data: false}" holds the position. The arm's ros2_control stack
(joint_state_broadcaster and the forward position or joint trajectory controller, active)
must already run.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and inference_node."""
    config = PathJoinSubstitution([FindPackageShare('lam_ros'), 'config'])
    interface = LaunchConfiguration('command_interface')
    arguments = [
        DeclareLaunchArgument('checkpoint', description='Policy checkpoint directory.'),
        DeclareLaunchArgument('robot', default_value='',
                              description='Robot description: a name under config/robots/ or '
                                          "a YAML path (topics, URDF, gripper); '' = the "
                                          "checkpoint's robot."),
        DeclareLaunchArgument('params_file',
                              default_value=PathJoinSubstitution([config,
                                                                  'inference_panda.yaml']),
                              description='inference_node parameters; copy '
                                          'config/inference_template.yaml for another arm.'),
        DeclareLaunchArgument('urdf_path', default_value='',
                              description='URDF for the position and velocity limits; '
                                          "'' = the robot description's URDF."),
        DeclareLaunchArgument('command_interface', default_value='forward',
                              choices=['forward', 'trajectory'],
                              description='forward_command_controller (Float64MultiArray) or '
                                          'joint_trajectory_controller (JointTrajectory).'),
        DeclareLaunchArgument('command_topic', default_value='',
                              description="The active controller's command topic; '' = the "
                                          "robot description's for the interface."),
        DeclareLaunchArgument('joint_state_topic', default_value='',
                              description="The joint_state_broadcaster topic; '' = the "
                                          "robot description's."),
        DeclareLaunchArgument('control_rate_hz', default_value='100.0',
                              description='Command rate (Hz).'),
        DeclareLaunchArgument('max_velocity_scale', default_value='0.5',
                              description='Fraction (0..1] of the URDF velocity limits.'),
        DeclareLaunchArgument('device', default_value='auto',
                              description='auto (cuda when present), cpu or cuda.'),
    ]
    inference = Node(
        package='lam_ros', executable='inference_node', name='inference_node', output='screen',
        parameters=[LaunchConfiguration('params_file'),
                    {'checkpoint': LaunchConfiguration('checkpoint'),
                     'robot': LaunchConfiguration('robot'),
                     'urdf_path': LaunchConfiguration('urdf_path'),
                     'command_interface': interface,
                     'command_topic': LaunchConfiguration('command_topic'),
                     'joint_state_topic': LaunchConfiguration('joint_state_topic'),
                     'control_rate_hz': LaunchConfiguration('control_rate_hz'),
                     'max_velocity_scale': LaunchConfiguration('max_velocity_scale'),
                     'device': LaunchConfiguration('device'),
                     'autostart': False}])
    return LaunchDescription(arguments + [inference])
