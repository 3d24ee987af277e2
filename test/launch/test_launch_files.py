"""
Launch files: the executables and parameter files they name exist, and they load.

The launch_ros part runs where ``launch`` and ``launch_ros`` are importable (a ROS 2
install); it evaluates every substitution and starts each lam_ros node in-process with
the parameters launch would give it.
"""

import ast
import importlib
import json
import os
from pathlib import Path
import subprocess
import sys
import time

from nodes.ros_harness import claim_domain
import pytest
from source_tree import copy_source

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))
REQUIRED = ['sim_record.launch.py', 'record.launch.py']


def _node_calls(path: Path):
    tree = ast.parse(path.read_text())
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', None) == 'Node':
            yield {kw.arg: kw.value.value for kw in call.keywords
                   if isinstance(kw.value, ast.Constant)}


def test_required_launch_files_exist():
    names = [p.name for p in LAUNCH_FILES]
    for name in REQUIRED:
        assert name in names


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_named_executables_and_parameter_files_exist(path):
    nodes = list(_node_calls(path))
    assert nodes, f'{path.name} starts no Node'
    for node in nodes:
        if node.get('package') == 'lam_ros':
            module = ROOT / 'lam_ros' / 'nodes' / (node['executable'] + '.py')
            # setup.py installs lib/lam_ros/<name> for every lam_ros/nodes/<name>_node.py.
            assert module.is_file() and module.name.endswith('_node.py'), \
                f'{path.name} names missing executable {module}'
    tree = ast.parse(path.read_text())
    yaml_names = {c.value for c in ast.walk(tree)
                  if isinstance(c, ast.Constant) and isinstance(c.value, str)
                  and c.value.endswith('.yaml')}
    configs = {p.name for p in (ROOT / 'config').rglob('*.yaml')}
    assert yaml_names <= configs, f'{path.name} names missing files {yaml_names - configs}'


# ---- with launch_ros ----

CASES = [
    ('sim_record.launch.py', {'source': 'scripted', 'task': 'pick_place'}),
    ('sim_record.launch.py', {'source': 'scripted', 'episodes': '3',
                              'episode_timeout_s': '45', 'real_time_factor': '0.0'}),
    ('sim_record.launch.py', {'source': 'joy', 'camera': 'true'}),
    ('record.launch.py', {'source': 'leader', 'command_interface': 'trajectory'}),
    ('sim.launch.py', {'source': '', 'task': 'pick_place', 'camera': 'true'}),
    ('sim.launch.py', {'source': '', 'robot': 'xarm6'}),
]


@pytest.fixture
def ament_prefix(tmp_path, monkeypatch):
    """Return an install prefix in which lam_ros's share directory is this source tree."""
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
            if entity.condition is None or entity.condition.evaluate(context):
                entity._perform_substitutions(context)
                nodes.append(entity)
    return nodes


@pytest.mark.parametrize('name,arguments', CASES,
                         ids=[f'{c[0]}-{c[1]["source"]}-{c[1].get("episodes", 0)}-'
                              f'{c[1].get("robot", "panda")}' for c in CASES])
def test_launch_description_starts_real_nodes(name, arguments, ament_prefix, tmp_path,
                                              monkeypatch):
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    pytest.importorskip('rclpy')
    import rclpy
    from rclpy.context import Context
    monkeypatch.setenv('ROS_DOMAIN_ID', str(claim_domain()))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    arguments = dict(arguments, output_dir=str(tmp_path / 'demos'))
    nodes = _expand(ROOT / 'launch' / name, arguments)
    executables = {n.node_executable for n in nodes if n.node_package == 'lam_ros'}
    if name == 'sim.launch.py':
        assert executables == {'sim_node'}
    else:
        assert {'teleop_node', 'recorder_node'} <= executables
        assert [n.node_executable for n in nodes].count('recorder_node') == 1
        # The hands-free runner starts only when episodes > 0.
        assert ('demo_runner_node' in executables) == (int(arguments.get('episodes', 0)) > 0)
    assert ('joy_node' in {n.node_executable for n in nodes}) == (arguments['source'] == 'joy')
    for node in nodes:
        if node.node_package != 'lam_ros':
            continue
        params = node._Node__expanded_parameter_arguments
        args = ['--ros-args']
        for value, is_file in params:
            assert not is_file or os.path.isfile(value), value
            args += ['--params-file', value] if is_file else ['-p', value]
        module = importlib.import_module(f'lam_ros.nodes.{node.node_executable}')
        cls = {'sim_node': 'SimNode', 'teleop_node': 'TeleopNode',
               'recorder_node': 'RecorderNode',
               'demo_runner_node': 'DemoRunnerNode'}[node.node_executable]
        context = Context()
        rclpy.init(args=args, context=context)
        try:
            instance = getattr(module, cls)(context=context)
            try:
                if node.node_executable == 'teleop_node':
                    assert instance.config.source == arguments['source']
                    assert instance.config.rate_hz == 20.0
                    assert instance.config.expert_waits_for == (
                        '/recorder_node/status' if name == 'sim_record.launch.py' else '')
                    assert instance.config.command_interface == arguments.get(
                        'command_interface', 'forward')
                if node.node_executable == 'sim_node':
                    assert instance.config.task == arguments.get('task', 'lift')
                    assert instance.config.real_time_factor == float(
                        arguments.get('real_time_factor', 1.0))
                    assert instance.config.cameras == (
                        'scene,wrist' if arguments.get('camera') == 'true' else '')
                    assert instance.get_parameter('robot').value == arguments.get('robot',
                                                                                  'panda')
                if node.node_executable == 'demo_runner_node':
                    assert instance.config.episodes == int(arguments['episodes'])
                    assert instance.config.episode_timeout_s == 45.0
                    assert instance.get_parameter('use_sim_time').value is True
                if node.node_executable == 'recorder_node':
                    joy = instance.get_parameter('joy_topic').value
                    assert joy == ('/joy' if arguments['source'] == 'joy' else '')
                    assert instance.get_parameter('output_dir').value == arguments['output_dir']
                    assert instance.config.control_rate_hz == 20.0
                    assert ('/wrist_camera/image_raw' in instance.config.topics) == (
                        arguments.get('camera') == 'true')
            finally:
                instance.destroy_node()
        finally:
            context.try_shutdown()


@pytest.mark.parametrize('interface,command_topic', [
    ('forward', '/fr3_position_controller/commands'),
    ('trajectory', '/fr3_trajectory_controller/joint_trajectory')])
def test_record_launch_follows_the_robot_description_topics(interface, command_topic,
                                                            ament_prefix, tmp_path, monkeypatch):
    """record.launch.py robot:=<yaml> talks to the topics that description names."""
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    pytest.importorskip('rclpy')
    import rclpy
    from rclpy.context import Context
    import yaml
    monkeypatch.setenv('ROS_DOMAIN_ID', str(claim_domain()))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    robot = yaml.safe_load((ROOT / 'config' / 'robots' / 'panda.yaml').read_text())
    robot['topics'].update(joint_state='/franka/joint_states',
                           command='/fr3_position_controller/commands',
                           trajectory_command='/fr3_trajectory_controller/joint_trajectory')
    path = tmp_path / 'fr3.yaml'
    path.write_text(yaml.safe_dump(robot))
    nodes = _expand(ROOT / 'launch' / 'record.launch.py',
                    {'source': 'cartesian', 'robot': str(path), 'command_interface': interface,
                     'output_dir': str(tmp_path / 'demos')})
    seen = {}
    for node in nodes:
        args = ['--ros-args']
        for value, is_file in node._Node__expanded_parameter_arguments:
            args += ['--params-file', value] if is_file else ['-p', value]
        module = importlib.import_module(f'lam_ros.nodes.{node.node_executable}')
        cls = {'teleop_node': 'TeleopNode', 'recorder_node': 'RecorderNode'}[node.node_executable]
        context = Context()
        rclpy.init(args=args, context=context)
        try:
            instance = getattr(module, cls)(context=context)
            try:
                if node.node_executable == 'teleop_node':
                    seen['teleop'] = (instance.output.topic, instance.config.joint_state_topic)
                else:
                    seen['recorder'] = (instance.config.command_topic, instance.config.topics)
            finally:
                instance.destroy_node()
        finally:
            context.try_shutdown()
    assert seen['teleop'] == (command_topic, '/franka/joint_states')
    assert seen['recorder'][0] == command_topic
    assert '/franka/joint_states' in seen['recorder'][1]


@pytest.fixture(scope='module')
def installed_prefix(tmp_path_factory):
    """
    Install lam_ros without dependencies into a fresh prefix.

    The executables setup.py installs under lib/lam_ros run the launched nodes, as ``ros2
    launch`` runs them.
    """
    pytest.importorskip('launch')  # before the install: nothing to launch it with
    pytest.importorskip('launch_ros')
    prefix = tmp_path_factory.mktemp('prefix')
    source = tmp_path_factory.mktemp('src') / 'lam_ros'
    copy_source(source)
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--ignore-installed',
         '--no-build-isolation', '--disable-pip-version-check', '--prefix', str(prefix),
         str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return prefix


def _launch_env(prefix: Path) -> dict:
    """Return the environment of a launch from ``prefix``: its lam_ros, this venv's deps."""
    site = next(prefix.glob('lib/python*/site-packages'))
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PYTHONPATH'] = os.pathsep.join([str(site)] + [p for p in sys.path if p])
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    env['AMENT_PREFIX_PATH'] = str(prefix)
    return env


RUN_LAUNCH = """
import sys
from launch import LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
service = LaunchService(argv=sys.argv[2:])
service.include_launch_description(IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]),
    launch_arguments=[tuple(a.split(':=', 1)) for a in sys.argv[2:]]))
sys.exit(service.run())
"""


def test_sim_record_launch_records_a_scripted_episode(installed_prefix, tmp_path, monkeypatch):
    """ros2 launch sim_record.launch.py source:=scripted, driven through the services."""
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    pytest.importorskip('rclpy')
    import signal
    import yaml
    monkeypatch.setenv('ROS_DOMAIN_ID', str(claim_domain()))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    out_dir = tmp_path / 'demos'
    env = _launch_env(installed_prefix)
    log = open(tmp_path / 'launch.log', 'w+')
    proc = subprocess.Popen(
        [sys.executable, '-c', RUN_LAUNCH,
         str(installed_prefix / 'share' / 'lam_ros' / 'launch' / 'sim_record.launch.py'),
         'source:=scripted', f'output_dir:={out_dir}', 'seed:=2'],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Bool, String
    from std_srvs.srv import Trigger
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node('launch_probe', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    success, recorder_success = [], []
    node.create_subscription(Bool, '/task_success', lambda m: success.append(m.data), 10)
    node.create_subscription(
        String, '/recorder_node/status',
        lambda m: recorder_success.append(json.loads(m.data)['success']), 10)

    def spin_until(condition, timeout_s):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not condition():
            executor.spin_once(timeout_sec=0.05)
        return condition()

    def call(name):
        client = node.create_client(Trigger, name)
        assert spin_until(client.service_is_ready, 30.0), f'{name} missing'
        future = client.call_async(Trigger.Request())
        assert spin_until(future.done, 10.0), f'{name} did not answer'
        return future.result()

    try:
        assert call('/recorder_node/start_episode').success
        assert spin_until(lambda: any(success), 40.0), 'the scripted lift never succeeded'
        # Stop once the recorder has taken the success value too (its status says so).
        assert spin_until(lambda: recorder_success and recorder_success[-1], 30.0)
        result = call('/recorder_node/stop_episode')
        assert result.success and 'success=True' in result.message, result.message
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)
        log.seek(0)
        output = log.read()
        log.close()
    assert proc.returncode == 0, output
    index = yaml.safe_load((out_dir / 'dataset.yaml').read_text())
    assert [e['status'] for e in index['episodes']] == ['complete'], output


def test_sim_record_launch_hands_free_episodes_end_the_launch(installed_prefix, tmp_path,
                                                              monkeypatch):
    """ros2 launch sim_record.launch.py source:=scripted episodes:=2 returns by itself."""
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    pytest.importorskip('rclpy')
    import signal
    import yaml
    monkeypatch.setenv('ROS_DOMAIN_ID', str(claim_domain()))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    out_dir = tmp_path / 'demos'
    env = _launch_env(installed_prefix)
    log = open(tmp_path / 'launch.log', 'w+')
    proc = subprocess.Popen(
        [sys.executable, '-c', RUN_LAUNCH,
         str(installed_prefix / 'share' / 'lam_ros' / 'launch' / 'sim_record.launch.py'),
         'source:=scripted', f'output_dir:={out_dir}', 'seed:=4', 'episodes:=2',
         'real_time_factor:=0.0'],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    try:
        code = proc.wait(150.0)  # generous under load; about 20 s on an idle machine
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launch and every node it started
        proc.wait(5.0)
        code = None
    log.seek(0)
    output = log.read()
    log.close()
    assert code is not None, f'the launch did not end by itself:\n{output}'
    assert code == 0, output
    assert 'episode 2/2' in output and 'Traceback' not in output, output
    index = yaml.safe_load((out_dir / 'dataset.yaml').read_text())
    statuses = [e['status'] for e in index['episodes']]
    assert statuses == ['complete', 'complete'], output


@pytest.mark.parametrize('name', ['record.launch.py', 'sim_record.launch.py'])
def test_launch_with_joy_missing_says_so_and_starts_nothing(name, installed_prefix, tmp_path,
                                                            monkeypatch):
    """source:=joy without the joy package: one clear error, no node left running."""
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    import signal
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(installed_prefix))
    try:
        from ament_index_python.packages import get_package_share_directory
        get_package_share_directory('joy')
        pytest.skip('the joy package is installed here')
    except LookupError:
        pass
    monkeypatch.setenv('ROS_DOMAIN_ID', str(claim_domain()))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env = _launch_env(installed_prefix)
    proc = subprocess.Popen(
        [sys.executable, '-c', RUN_LAUNCH,
         str(installed_prefix / 'share' / 'lam_ros' / 'launch' / name),
         'source:=joy', f'output_dir:={tmp_path / "demos"}'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything the launch left behind
            left_behind = True
        except ProcessLookupError:
            left_behind = False
    assert proc.returncode != 0, output
    assert "source:=joy needs the ROS 'joy' package" in output, output
    assert 'source:=keyboard' in output and 'Traceback' not in output, output
    assert 'teleop_node' not in output and 'recorder_node' not in output, output
    assert not left_behind, 'a node of the launch outlived it'
    assert not (tmp_path / 'demos').exists()
