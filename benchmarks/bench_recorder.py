"""
Throughput of recorder_node: 1 kHz joint states plus 30 Hz 640x480 rgb8 images over DDS.

Starts ``recorder_node`` as a process on an isolated DDS domain, publishes from this process
for ``--duration-s`` seconds inside one episode, stops the episode and compares what was
published with what the bag holds, per topic. Also reports the recorder's CPU use: user +
system time of its process over the episode, per second of published data, in % of one core.

    python benchmarks/bench_recorder.py --duration-s 60 --json bench_recorder.json

The joint-state publisher keeps ``--publisher-depth`` samples (default 10, what ros2_control's
joint_state_broadcaster offers), so a sample the transport drops can only be resent while it
is among the last 10: the recorder must keep up as it would on a real arm.
"""

import argparse
import json
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict

ROOT = Path(__file__).resolve().parents[1]
JOINTS9 = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1',
                                                      'panda_finger_joint2']


CAMERA = """
import sys, time
import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
duration_s, rate_hz = float(sys.argv[1]), float(sys.argv[2])
width, height = int(sys.argv[3]), int(sys.argv[4])
rclpy.init()
node = rclpy.create_node('bench_camera')
pub = node.create_publisher(Image, '/camera/image_raw',
                            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
while pub.get_subscription_count() < 1:
    rclpy.spin_once(node, timeout_sec=0.05)
image = Image(height=height, width=width, encoding='rgb8', step=width * 3)
image.data = np.random.default_rng(0).integers(0, 255, height * width * 3,
                                               dtype=np.uint8).tobytes()
print('ready', flush=True)
sent, t0 = 0, time.monotonic()
next_image = t0
while time.monotonic() - t0 < duration_s:
    image.header.stamp = node.get_clock().now().to_msg()
    pub.publish(image)
    sent += 1
    next_image += 1.0 / rate_hz
    time.sleep(max(0.0, next_image - time.monotonic()))
time.sleep(0.5)  # reliable delivery of the last frames
print(sent, flush=True)
"""
"""A camera driver publishing 640x480 rgb8 frames from its own process."""


def _cpu_s(pid: int) -> float:
    """Return user + system CPU seconds of a process (from /proc)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _sequence_gaps(bag: Path) -> Dict[str, int]:
    """Count the holes in the joint-state sequence numbers (position[0]) stored in the bag."""
    from rosbags.highlevel import AnyReader

    from lam_ros.data import messages
    seq = []
    with AnyReader([bag], default_typestore=messages.TYPESTORE) as reader:
        conns = [c for c in reader.connections if c.topic == '/joint_states']
        for conn, _, raw in reader.messages(connections=conns):
            seq.append(int(messages.deserialize(raw, conn.msgtype).position[0]))
    holes = [b - a - 1 for a, b in zip(seq, seq[1:]) if b - a > 1]
    return {'first': seq[0] if seq else -1, 'holes': len(holes), 'largest_hole': max(holes or [0])}


def _drain(node: Any, status: Dict[str, Any], sent: Dict[str, int],
           stall_s: float = 3.0, limit_s: float = 60.0) -> float:
    """Wait until the recorder has written all sent messages or stops making progress."""
    import rclpy
    t0 = last_change = time.monotonic()
    last = None
    while time.monotonic() - last_change < stall_s and time.monotonic() - t0 < limit_s:
        rclpy.spin_once(node, timeout_sec=0.1)
        counts = status.get('message_counts', {})
        if all(counts.get(t, 0) >= n for t, n in sent.items()):
            break
        if counts != last:
            last, last_change = dict(counts), time.monotonic()
    return time.monotonic() - t0


def _call(node: Any, client: Any, timeout_s: float = 20.0) -> Any:
    import rclpy
    from std_srvs.srv import Trigger
    if not client.wait_for_service(timeout_sec=timeout_s):
        raise RuntimeError(f'service {client.srv_name} did not appear in {timeout_s} s')
    future = client.call_async(Trigger.Request())
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout_s)
    if not future.done():
        raise RuntimeError(f'{client.srv_name} did not answer in {timeout_s} s')
    return future.result()


def run(duration_s: float, state_rate_hz: float, image_rate_hz: float, width: int,
        height: int, out_dir: Path, pub_depth: int = 10,
        camera_process: bool = True) -> Dict[str, Any]:
    """Run the benchmark and return its figures."""
    os.environ['ROS_DOMAIN_ID'] = str(random.randint(1, 200))
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    params = {'output_dir': str(out_dir), 'topics': '[/joint_states,/camera/image_raw]',
              'topic_types': '[sensor_msgs/msg/JointState,sensor_msgs/msg/Image]',
              'command_topic': "''", 'success_topic': "''",
              # the episode starts before anything is published: no required-topic check
              'required_max_age_s': '0.0'}
    args = [sys.executable, '-m', 'lam_ros.nodes.recorder_node', '--ros-args']
    for key, value in params.items():
        args += ['-p', f'{key}:={value}']
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    log = tempfile.NamedTemporaryFile('w+', suffix='.log', delete=False)
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node('bench_recorder_publisher')
    try:
        reliable = QoSProfile(depth=int(pub_depth), reliability=ReliabilityPolicy.RELIABLE)
        js_pub = node.create_publisher(JointState, '/joint_states', reliable)
        img_pub = None if camera_process else node.create_publisher(
            Image, '/camera/image_raw', QoSProfile(depth=10,
                                                   reliability=ReliabilityPolicy.RELIABLE))
        status: Dict[str, Any] = {}
        node.create_subscription(String, '/recorder_node/status',
                                 lambda msg: status.update(json.loads(msg.data)), 10)
        start = node.create_client(Trigger, '/recorder_node/start_episode')
        stop = node.create_client(Trigger, '/recorder_node/stop_episode')
        answer = _call(node, start)
        if not answer.success:
            raise RuntimeError(f'start_episode failed: {answer.message}')
        camera = None
        if camera_process:  # a camera driver of its own, as on a robot
            camera = subprocess.Popen(
                [sys.executable, '-c', CAMERA, str(duration_s), str(image_rate_hz), str(width),
                 str(height)], env=env, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20.0
        while (js_pub.get_subscription_count() < 1
               or (img_pub is not None and img_pub.get_subscription_count() < 1)) \
                and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        if camera is not None and camera.stdout.readline().strip() != 'ready':
            raise RuntimeError('the camera process did not start')
        image = Image(height=height, width=width, encoding='rgb8', step=width * 3)
        image.data = np.random.default_rng(0).integers(0, 255, height * width * 3,
                                                       dtype=np.uint8).tobytes()
        js = JointState(name=JOINTS9, position=[0.0] * 9, velocity=[0.0] * 9,
                        effort=[0.0] * 9)
        sent = {'/joint_states': 0, '/camera/image_raw': 0}
        cpu0 = _cpu_s(proc.pid)
        next_state = next_image = t0 = time.monotonic()
        while True:
            now = time.monotonic()
            if now - t0 >= duration_s:
                break
            if now >= next_state:
                stamp = node.get_clock().now().to_msg()
                js.header.stamp = stamp
                js.position[0] = float(sent['/joint_states'])
                js_pub.publish(js)
                sent['/joint_states'] += 1
                next_state += 1.0 / state_rate_hz
            if camera is None and now >= next_image:
                image.header.stamp = node.get_clock().now().to_msg()
                img_pub.publish(image)
                sent['/camera/image_raw'] += 1
                next_image += 1.0 / image_rate_hz
            next_due = next_state if camera is not None else min(next_state, next_image)
            time.sleep(max(0.0, next_due - time.monotonic()))
        publish_s = time.monotonic() - t0
        if camera is not None:
            sent['/camera/image_raw'] = int(camera.communicate(timeout=60)[0].split()[-1])
        drain_s = _drain(node, status, sent)
        cpu_s = _cpu_s(proc.pid) - cpu0
        answer = _call(node, stop)
        if not answer.success:
            raise RuntimeError(f'stop_episode failed: {answer.message}')
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    import yaml
    entry = yaml.safe_load((out_dir / 'dataset.yaml').read_text())['episodes'][0]
    bag_info = yaml.safe_load((out_dir / entry['name'] / 'metadata.yaml').read_text())
    in_bag = {t['topic_metadata']['name']: t['message_count']
              for t in bag_info['rosbag2_bagfile_information']['topics_with_message_count']}
    topics = {}
    for topic, count in sent.items():
        topics[topic] = {'published': count, 'recorded': int(in_bag.get(topic, 0)),
                         'lost': count - int(in_bag.get(topic, 0)),
                         'published_rate_hz': round(count / publish_s, 1)}
    topics['/joint_states']['gaps'] = _sequence_gaps(out_dir / entry['name'])
    bag_bytes = sum(p.stat().st_size for p in (out_dir / entry['name']).iterdir())
    return {'duration_s': round(publish_s, 2), 'topics': topics,
            # all the recorder's CPU time for the episode (drain included) per second of data
            'recorder_cpu_percent_of_one_core': round(100.0 * cpu_s / publish_s, 1),
            'bag_mb': round(bag_bytes / 1e6, 1),
            'write_rate_mb_s': round(bag_bytes / 1e6 / publish_s, 1),
            'image_size': [width, height], 'cpu_count': os.cpu_count(),
            'publisher_depth': int(pub_depth), 'camera_process': camera_process,
            'drain_s': round(drain_s, 2),
            'load_average_1min_at_end': round(os.getloadavg()[0], 2)}


def main() -> int:
    """Parse arguments, run, print (and optionally write) the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration-s', type=float, default=60.0)
    parser.add_argument('--state-rate-hz', type=float, default=1000.0)
    parser.add_argument('--image-rate-hz', type=float, default=30.0)
    parser.add_argument('--image-size', type=int, nargs=2, default=[640, 480])
    parser.add_argument('--publisher-depth', type=int, default=10,
                        help='joint-state publisher history depth (messages); 10 as '
                             "ros2_control's joint_state_broadcaster")
    parser.add_argument('--camera-in-publisher-process', action='store_true',
                        help='publish images from the joint-state process (one participant) '
                             'instead of a camera process of their own')
    parser.add_argument('--output-dir', default='', help='keep the bag here (default: temp)')
    parser.add_argument('--json', default='', help='also write the result to this file')
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.output_dir) if args.output_dir else Path(tmp) / 'ds'
        result = run(args.duration_s, args.state_rate_hz, args.image_rate_hz,
                     args.image_size[0], args.image_size[1], out_dir,
                     args.publisher_depth, not args.camera_in_publisher_process)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
