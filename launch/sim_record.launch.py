"""
Record demonstrations in simulation: sim_node + teleop_node + recorder_node.

ros2 launch lam_ros sim_record.launch.py source:=keyboard|joy|scripted task:=lift
Episodes are started / stopped / discarded with the recorder's Trigger services
(/recorder_node/start_episode ...), or with the pad's Start / Back / Y when source:=joy;
/sim_node/reset draws a new scene. Hands-free: episodes:=20 starts demo_runner_node, which
records 20 episodes (reset, start, stop on success or timeout) and then ends the launch,
e.g. ros2 launch lam_ros sim_record.launch.py source:=scripted episodes:=20 real_time_factor:=2
"""

from lam_ros.description import TASK_NAMES
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the nodes (joy driver for source:=joy, runner for episodes)."""
    config = PathJoinSubstitution([FindPackageShare('lam_ros'), 'config'])
    # camera:=true turns on both simulated cameras (sim_node's comma-separated `cameras`).
    cameras = PythonExpression(["'scene,wrist' if '", LaunchConfiguration('camera'),
                                "'.lower() == 'true' else ''"])
    source = LaunchConfiguration('source')
    task = LaunchConfiguration('task')
    use_sim_time = LaunchConfiguration('use_sim_time')
    is_joy = PythonExpression(["'", source, "' == 'joy'"])
    arguments = [
        DeclareLaunchArgument('source', default_value='keyboard',
                              choices=['keyboard', 'joy', 'scripted', 'cartesian'],
                              description='Operator: keyboard, joy, scripted expert, or '
                                          'cartesian (TwistStamped on '
                                          '/teleop_node/delta_twist_cmds).'),
        DeclareLaunchArgument('task', default_value='lift', choices=list(TASK_NAMES),
                              description='Task to simulate and record.'),
        DeclareLaunchArgument('output_dir', default_value='lam_ros_demos',
                              description='Dataset directory (episodes are appended).'),
        DeclareLaunchArgument('seed', default_value='0',
                              description='Seed of the first episode; -1 for random.'),
        DeclareLaunchArgument('real_time_factor', default_value='1.0',
                              description='Simulated seconds per wall second (0 = as fast '
                                          'as possible); the recorder must keep up, see '
                                          'benchmarks/bench_ros_demos.py.'),
        DeclareLaunchArgument('episodes', default_value='0',
                              description='Episodes to record hands-free, then stop the '
                                          'launch; 0 = manual (through the services).'),
        DeclareLaunchArgument('episode_timeout_s', default_value='60.0',
                              description='Hands-free: seconds (sim time) before an '
                                          'unsuccessful episode is saved as a failure.'),
        DeclareLaunchArgument('camera', default_value='false',
                              description='Publish and record the scene and wrist cameras.'),
        DeclareLaunchArgument('use_sim_time', default_value='true',
                              description='Teleop and recorder follow /clock from sim_node.'),
        DeclareLaunchArgument('robot', default_value='panda',
                              description='Robot description: a name under config/robots/ '
                                          'or a YAML path (joints, URDF, frames, topics, '
                                          'control rate); copy config/robots/panda.yaml.'),
        DeclareLaunchArgument('recorder_config',
                              default_value=PathJoinSubstitution([config, 'recorder.yaml']),
                              description='recorder_node parameters file.'),
        DeclareLaunchArgument('command_rate_hz', default_value='0.0',
                              description='Teleop command rate (Hz), stored by the recorder '
                                          'as the control rate; 0 = the robot description rate.'),
        DeclareLaunchArgument('teleop_prefix', default_value='',
                              description="Command prefix of teleop_node, e.g. 'xterm -e' "
                                          'to give the keyboard its own terminal.'),
    ]
    sim = Node(
        package='lam_ros', executable='sim_node', name='sim_node', output='screen',
        parameters=[PathJoinSubstitution([config, 'sim_node.yaml']),
                    {'robot': LaunchConfiguration('robot'), 'task': task,
                     'seed': LaunchConfiguration('seed'),
                     'real_time_factor': LaunchConfiguration('real_time_factor'),
                     'cameras': cameras}])
    teleop = Node(
        package='lam_ros', executable='teleop_node', name='teleop_node', output='screen',
        emulate_tty=True, prefix=LaunchConfiguration('teleop_prefix'),
        parameters=[PathJoinSubstitution([config, 'teleop_node.yaml']),
                    PathJoinSubstitution([config, 'joy_teleop.yaml']),
                    {'robot': LaunchConfiguration('robot'), 'source': source, 'task': task,
                     'use_sim_time': use_sim_time,
                     'rate_hz': LaunchConfiguration('command_rate_hz'),
                     # The scripted operator starts when the recording does.
                     'expert_waits_for': '/recorder_node/status'}])
    joy = Node(package='joy', executable='joy_node', name='joy_node', output='screen',
               condition=IfCondition(is_joy),
               parameters=[PathJoinSubstitution([config, 'joy_teleop.yaml'])])
    recorder_params = [
        LaunchConfiguration('recorder_config'),
        {'robot': LaunchConfiguration('robot'), 'output_dir': LaunchConfiguration('output_dir'),
         'task': task,
         'use_sim_time': use_sim_time,
         'control_rate_hz': LaunchConfiguration('command_rate_hz'),
         'joy_topic': PythonExpression(["'/joy' if ", is_joy, " else ''"]),
         # Start / Back / Y: clear of the teleop's A / B gripper and LB dead-man.
         'joy_start_button': 6, 'joy_stop_button': 4, 'joy_discard_button': 3}]
    with_camera = IfCondition(LaunchConfiguration('camera'))
    recorders = [
        Node(package='lam_ros', executable='recorder_node', name='recorder_node',
             output='screen', condition=UnlessCondition(LaunchConfiguration('camera')),
             parameters=recorder_params),
        Node(package='lam_ros', executable='recorder_node', name='recorder_node',
             output='screen', condition=with_camera,
             parameters=recorder_params + [PathJoinSubstitution([config,
                                                                 'recorder_camera.yaml'])]),
    ]
    # The runner ending (all episodes done, or a clear error) ends the whole launch.
    runner = Node(
        package='lam_ros', executable='demo_runner_node', name='demo_runner_node',
        output='screen', on_exit=Shutdown(reason='demo_runner_node finished'),
        condition=IfCondition(PythonExpression([LaunchConfiguration('episodes'), ' > 0'])),
        parameters=[{'episodes': LaunchConfiguration('episodes'),
                     'episode_timeout_s': LaunchConfiguration('episode_timeout_s'),
                     'use_sim_time': use_sim_time}])
    return LaunchDescription(arguments + [sim, teleop, joy] + recorders + [runner])
