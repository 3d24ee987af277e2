"""
Record demonstrations on a real arm: teleop_node + recorder_node against its controllers.

ros2 launch lam_ros record.launch.py source:=joy robot:=/path/to/my_arm.yaml
The arm's ros2_control stack (joint_state_broadcaster and a forward position or joint
trajectory controller) must already run; the topics below point at it.
"""

from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def check_joy_installed(context, *args, **kwargs) -> list:
    """Stop the launch before any node starts when source:=joy lacks the joy package."""
    if LaunchConfiguration('source').perform(context) != 'joy':
        return []
    try:
        get_package_share_directory('joy')
    except PackageNotFoundError:
        raise RuntimeError(
            "source:=joy needs the ROS 'joy' package (joy_node), which is not installed: "
            'install it (sudo apt install ros-$ROS_DISTRO-joy) or pick another source: '
            'source:=keyboard (keys in this terminal), cartesian (a TwistStamped topic), '
            'leader (a leader arm) or scripted') from None
    return []


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments, the teleop and recorder nodes, and the joy driver if needed."""
    config = PathJoinSubstitution([FindPackageShare('lam_ros'), 'config'])
    source = LaunchConfiguration('source')
    interface = LaunchConfiguration('command_interface')
    command_topic = LaunchConfiguration('command_topic')
    is_joy = PythonExpression(["'", source, "' == 'joy'"])
    is_forward = PythonExpression(["'", interface, "' == 'forward'"])
    arguments = [
        DeclareLaunchArgument('source', default_value='joy',
                              choices=['keyboard', 'joy', 'cartesian', 'leader', 'scripted'],
                              description='Operator input.'),
        DeclareLaunchArgument('task', default_value='lift',
                              description='Task name written into the dataset metadata.'),
        DeclareLaunchArgument('output_dir', default_value='lam_ros_demos',
                              description='Dataset directory (episodes are appended).'),
        DeclareLaunchArgument('robot', default_value='panda',
                              description='Robot description: a name under config/robots/ '
                                          'or a YAML path (joints, URDF, frames, topics, '
                                          'control rate); copy config/robots/panda.yaml.'),
        DeclareLaunchArgument('joint_state_topic', default_value='',
                              description="The arm's joint_state_broadcaster topic; '' = the "
                                          "robot description's."),
        DeclareLaunchArgument('command_interface', default_value='forward',
                              choices=['forward', 'trajectory'],
                              description='forward_command_controller or '
                                          'joint_trajectory_controller.'),
        DeclareLaunchArgument('command_topic', default_value='',
                              description="The active controller's command topic; '' = the "
                                          "robot description's for the interface."),
        DeclareLaunchArgument('leader_topic', default_value='/leader/joint_states',
                              description='Leader arm JointState (source:=leader).'),
        DeclareLaunchArgument('max_velocity_scale', default_value='0.3',
                              description='Fraction of the URDF velocity limits (0..1].'),
        DeclareLaunchArgument('recorder_config',
                              default_value=PathJoinSubstitution([config, 'recorder.yaml']),
                              description='recorder_node parameters (topics to record).'),
        DeclareLaunchArgument('command_rate_hz', default_value='0.0',
                              description='Teleop command rate (Hz), stored by the recorder '
                                          'as the control rate; 0 = the robot description rate.'),
        DeclareLaunchArgument('teleop_prefix', default_value='',
                              description="Command prefix of teleop_node, e.g. 'xterm -e'."),
    ]
    teleop = Node(
        package='lam_ros', executable='teleop_node', name='teleop_node', output='screen',
        emulate_tty=True, prefix=LaunchConfiguration('teleop_prefix'),
        parameters=[PathJoinSubstitution([config, 'teleop_node.yaml']),
                    PathJoinSubstitution([config, 'joy_teleop.yaml']),
                    {'robot': LaunchConfiguration('robot'), 'source': source,
                     'command_interface': interface,
                     'rate_hz': LaunchConfiguration('command_rate_hz'),
                     'command_topic': command_topic,
                     'joint_state_topic': LaunchConfiguration('joint_state_topic'),
                     'leader_topic': LaunchConfiguration('leader_topic'),
                     'max_velocity_scale': LaunchConfiguration('max_velocity_scale')}])
    joy = Node(package='joy', executable='joy_node', name='joy_node', output='screen',
               condition=IfCondition(is_joy),
               parameters=[PathJoinSubstitution([config, 'joy_teleop.yaml'])])
    recorder = Node(
        package='lam_ros', executable='recorder_node', name='recorder_node', output='screen',
        parameters=[LaunchConfiguration('recorder_config'),
                    {'robot': LaunchConfiguration('robot'),
                     'output_dir': LaunchConfiguration('output_dir'),
                     'task': LaunchConfiguration('task'),
                     'command_topic': command_topic,
                     'command_type': PythonExpression([
                         "'std_msgs/msg/Float64MultiArray' if ", is_forward,
                         " else 'trajectory_msgs/msg/JointTrajectory'"]),
                     'control_rate_hz': LaunchConfiguration('command_rate_hz'),
                     'joy_topic': PythonExpression(["'/joy' if ", is_joy, " else ''"]),
                     'joy_start_button': 6, 'joy_stop_button': 4,
                     'joy_discard_button': 3}])
    # The check comes before every node, so a missing joy package leaves nothing running.
    return LaunchDescription(arguments + [OpaqueFunction(function=check_joy_installed),
                                          teleop, joy, recorder])
