"""
Write docs/nodes.md, the reference of every lam_ros node, from the nodes themselves.

Each node's description and parameter table come from what ``ros2 run lam_ros <node>
--help`` prints (module docstring; parameters with type, default and docstring, declared from
the node's config dataclasses), so they cannot drift from the code; test/test_docs.py fails
when docs/nodes.md differs from what this script writes. The topics and services are listed
here, by hand, and the test checks them against the ``~/`` names each node's source creates.

    python docs/node_reference.py          # rewrite docs/nodes.md
    python docs/node_reference.py --check  # exit 1 if docs/nodes.md is out of date
"""

import contextlib
import importlib
import io
from pathlib import Path
import re
import sys

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / 'docs' / 'nodes.md'

NODES = ['sim_node', 'teleop_node', 'recorder_node', 'demo_runner_node', 'replay_node',
         'inference_node', 'trainer_node']

# (kind, name or parameter, type, what). kind: pub, sub, srv (served), cli (called).
# A name in {braces} is the parameter that sets it (its default is in the parameter table).
INTERFACES = {
    'sim_node': [
        ('pub', '/joint_states', 'sensor_msgs/msg/JointState',
         'all joints, at `joint_state_rate_hz` (simulated time)'),
        ('pub', '/object_pose', 'geometry_msgs/msg/PoseStamped',
         'the object, in the robot base frame, at `pose_rate_hz`'),
        ('pub', '/goal_pose', 'geometry_msgs/msg/PoseStamped', 'the goal (tasks with one)'),
        ('pub', '/task_success', 'std_msgs/msg/Bool', "the task's success, with its hold time"),
        ('pub', '/scene_camera/image_raw, /scene_camera/camera_info',
         'sensor_msgs/msg/Image, CameraInfo',
         'each camera in `cameras` under its namespace (`/wrist_camera/...` for the wrist); '
         '`.../depth/image_raw` with `camera_depth`'),
        ('pub', '/clock', 'rosgraph_msgs/msg/Clock', 'simulated time, for `use_sim_time` nodes'),
        ('pub', '~/scene', 'std_msgs/msg/String', 'JSON seed and poses of each episode '
         '(transient local)'),
        ('sub', '/forward_position_controller/commands', 'std_msgs/msg/Float64MultiArray',
         "joint targets in the robot description's order"),
        ('sub', '/joint_trajectory_controller/joint_trajectory',
         'trajectory_msgs/msg/JointTrajectory', 'joint targets by name, interpolated'),
        ('srv', '~/reset', 'std_srvs/srv/Trigger', 'a new randomised episode'),
    ],
    'teleop_node': [
        ('sub', '{joint_state_topic}', 'sensor_msgs/msg/JointState', "the arm's state"),
        ('sub', '{twist_topic}', 'geometry_msgs/msg/TwistStamped',
         'MoveIt Servo style Cartesian velocity (sources cartesian, keyboard)'),
        ('sub', '{gripper_topic}', 'std_msgs/msg/Float64', 'gripper open fraction 0..1'),
        ('sub', '{joy_topic}', 'sensor_msgs/msg/Joy', 'source joy'),
        ('sub', '{leader_topic}', 'sensor_msgs/msg/JointState', 'source leader'),
        ('sub', '{object_pose_topic}, {goal_pose_topic}', 'geometry_msgs/msg/PoseStamped',
         'source scripted'),
        ('sub', '{expert_waits_for}', 'std_msgs/msg/String',
         "source scripted: a recorder's `~/status`; the expert waits for a recording"),
        ('pub', '{command_topic}', 'Float64MultiArray or JointTrajectory',
         'gated joint commands (`command_interface`)'),
        ('srv', '~/reset', 'std_srvs/srv/Trigger', 're-anchor on the current state'),
        ('cli', '{episode_services}', 'std_srvs/srv/Trigger',
         'keyboard / joystick episode keys'),
    ],
    'recorder_node': [
        ('sub', '{topics}, {command_topic}', 'any (raw CDR)',
         'everything recorded; the command topic is the action'),
        ('sub', '{success_topic}', 'std_msgs/msg/Bool', "the episode's outcome"),
        ('sub', '{scene_topic}', 'std_msgs/msg/String', 'sim scene, stored in dataset.yaml'),
        ('sub', '{joy_topic}', 'sensor_msgs/msg/Joy', 'start / stop / discard buttons'),
        ('pub', '~/status', 'std_msgs/msg/String', 'JSON: recording, episode, counts, errors'),
        ('srv', '~/start_episode', 'std_srvs/srv/Trigger', 'open a new episode bag'),
        ('srv', '~/stop_episode', 'std_srvs/srv/Trigger', 'close and save it'),
        ('srv', '~/discard_episode', 'std_srvs/srv/Trigger', 'close and delete it'),
    ],
    'demo_runner_node': [
        ('sub', '{success_topic}', 'std_msgs/msg/Bool', 'ends an episode early'),
        ('sub', '{recorder_status_topic}', 'std_msgs/msg/String', "the recorder's state"),
        ('cli', '/sim_node/reset, /teleop_node/reset', 'std_srvs/srv/Trigger',
         'a new scene, the operator re-anchored'),
        ('cli', '/recorder_node/start_episode, /recorder_node/stop_episode',
         'std_srvs/srv/Trigger', 'one recorded episode'),
    ],
    'replay_node': [
        ('sub', '{joint_state_topic}', 'sensor_msgs/msg/JointState',
         "the arm's state (start check, tracking error)"),
        ('pub', '{command_topic}', 'Float64MultiArray or JointTrajectory',
         'the recorded commands, at their recorded timing'),
        ('cli', '{scene_node} parameters', 'rcl_interfaces/srv/SetParameters',
         '`restore_seed`: the recorded scene on sim_node'),
    ],
    'inference_node': [
        ('sub', '{joint_state_topic}', 'sensor_msgs/msg/JointState',
         'joints matched by name, any order'),
        ('sub', 'object / goal pose, camera topics', 'PoseStamped, Image',
         "those the checkpoint observes (`observation_topics`, else the robot's)"),
        ('pub', '{command_topic}', 'Float64MultiArray or JointTrajectory',
         'gated commands at `control_rate_hz`, only while enabled'),
        ('pub', '~/stats', 'diagnostic_msgs/msg/DiagnosticArray',
         'loop rate, late ticks, jitter, policy latency, state age, gate'),
        ('srv', '~/enable', 'std_srvs/srv/SetBool', 'true: start an episode; false: hold'),
        ('srv', '~/reset', 'std_srvs/srv/Trigger', 'start a new episode (history and chunks '
         'cleared)'),
    ],
    'trainer_node': [
        ('pub', '{diagnostics_topic}', 'diagnostic_msgs/msg/DiagnosticArray',
         'stage, step, loss, success rate, ETA, last checkpoint'),
        ('pub', '~/best_checkpoint', 'std_msgs/msg/String',
         "the exported checkpoint's path (transient local)"),
        ('srv', '~/cancel', 'std_srvs/srv/Trigger', 'stop after saving the last checkpoint'),
    ],
}

KINDS = {'pub': 'publishes', 'sub': 'subscribes', 'srv': 'service', 'cli': 'calls'}

# Units from the parameter name's suffix, longest first.
UNITS = [('_radps', 'rad/s'), ('_rad_s', 'rad/s'), ('_mps', 'm/s'), ('_m_s', 'm/s'),
         ('_hz', 'Hz'), ('_rad', 'rad'), ('_s', 's'), ('_m', 'm')]

_PARAM = re.compile(r'^  (\S+) \((.+?), default: (.*)\)$')


def node_help(name: str) -> str:
    """Return what ``ros2 run lam_ros <name> --help`` prints."""
    module = importlib.import_module(f'lam_ros.nodes.{name}')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = module.main(['--help'])
    if code != 0:
        raise RuntimeError(f'{name} --help exited {code}')
    return out.getvalue()


def parse_help(text: str) -> tuple:
    """Split --help text into (description, [(name, type, default, doc)])."""
    lines = text.splitlines()
    start = lines.index('parameters (name (type, unit, default)):')
    description = '\n'.join(lines[2:start]).strip()
    params = []
    for line in lines[start + 1:]:
        match = _PARAM.match(line)
        if match:
            kind = match.group(2).split(', ')[0]
            params.append([match.group(1), kind, match.group(3), ''])
        elif params:
            params[-1][3] = (params[-1][3] + ' ' + line.strip()).strip()
    return description, [tuple(p) for p in params]


def unit(name: str) -> str:
    """Return the unit the parameter name's suffix states, or ''."""
    base = name.split('.')[-1]
    return next((u for suffix, u in UNITS if base.endswith(suffix)), '')


def _cell(text: str) -> str:
    return text.replace('|', '\\|')


def _markdown(rst: str) -> str:
    """Turn docstring markup (``code``, :class:`~a.b.C`) into Markdown."""
    text = re.sub(r':\w+:`~?([\w.]+)`', lambda m: f'`{m.group(1).split(".")[-1]}`', rst)
    return text.replace('``', '`')


def render() -> str:
    """Return the whole of docs/nodes.md."""
    out = ['# Node reference', '',
           "<!-- Generated by docs/node_reference.py from the nodes' --help; do not edit. -->",
           '',
           'Every node runs as `ros2 run lam_ros <node> --ros-args -p name:=value ...` (or '
           'from a launch file); `--help` prints the same description and parameters. '
           'Topic names in braces are parameters (defaults in the parameter table); `~/x` '
           "is the node's private name, e.g. `/recorder_node/x`. Units come from the "
           'parameter name: `_s` seconds, `_hz` Hz, `_m` metres, `_rad` radians, `_mps` m/s, '
           '`_radps` rad/s.', '']
    out += ['| node | what |', '|---|---|']
    helps = {name: parse_help(node_help(name)) for name in NODES}
    for name in NODES:
        first = _markdown(helps[name][0]).split('\n\n')[0].replace('\n', ' ')
        out.append(f'| [`{name}`](#{name}) | {_cell(first)} |')
    out.append('')
    for name in NODES:
        description, params = helps[name]
        out += [f'## {name}', '', _markdown(description), '',
                '| | topic / service | type | what |', '|---|---|---|---|']
        for kind, topic, msgtype, what in INTERFACES[name]:
            out.append(f'| {KINDS[kind]} | `{topic}` | {msgtype} | {_cell(what)} |')
        out += ['', '| parameter | type | default | unit | description |',
                '|---|---|---|---|---|']
        for pname, ptype, default, doc in params:
            out.append(f'| `{pname}` | {ptype} | `{_cell(default)}` | {unit(pname)} | '
                       f'{_cell(doc)} |')
        out.append('')
    return '\n'.join(out)


def main(argv: list) -> int:
    """Rewrite docs/nodes.md, or with --check say whether it is current."""
    text = render()
    if '--check' in argv:
        current = OUTPUT.read_text() if OUTPUT.exists() else ''
        if current != text:
            print(f'{OUTPUT} is out of date: run python docs/node_reference.py',
                  file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f'wrote {OUTPUT}')
    return 0


if __name__ == '__main__':
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
