"""demo_runner_node: hands-free episodes over real DDS, clean SIGINT."""

import time

import pytest
import yaml

pytest.importorskip('rclpy')

from lam_ros.data.messages import TYPESTORE  # noqa: E402, I100
from lam_ros.nodes.demo_runner_node import DemoRunnerConfig  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402

from .ros_harness import isolate_dds, NodeProcess  # noqa: E402


def _first_messages(bag):
    first = {}
    with AnyReader([bag], default_typestore=TYPESTORE) as reader:
        for conn, _, raw in reader.messages():
            if conn.topic not in first:
                first[conn.topic] = reader.deserialize(raw, conn.msgtype)
    return first


def test_runner_settings_are_checked():
    with pytest.raises(ValueError, match='episodes must be >= 1'):
        DemoRunnerConfig(episodes=0)
    with pytest.raises(ValueError, match='episode_timeout_s must be positive'):
        DemoRunnerConfig(episode_timeout_s=0.0)


def test_runner_records_two_episodes_and_exits(tmp_path):
    isolate_dds()
    out_dir = tmp_path / 'demos'
    procs = [
        NodeProcess('sim_node', {'task': 'lift', 'seed': 3, 'real_time_factor': 0.0}),
        NodeProcess('teleop_node', {'source': 'scripted', 'task': 'lift', 'rate_hz': 20.0,
                                    'expert_seed': 3, 'use_sim_time': True,
                                    'expert_waits_for': '/recorder_node/status'}),
        NodeProcess('recorder_node', {'output_dir': str(out_dir), 'task': 'lift',
                                      'use_sim_time': True}),
    ]
    runner = NodeProcess('demo_runner_node', {'episodes': 2, 'use_sim_time': True,
                                              'episode_timeout_s': 40.0})
    logs = lambda: '\n'.join(p.output() for p in procs + [runner])  # noqa: E731
    try:
        runner.proc.wait(120.0)  # generous: the runner ends itself long before under no load
    finally:
        runner_code = runner.stop()
        codes = [p.stop() for p in procs]
    assert runner_code == 0, logs()
    assert codes == [0, 0, 0], logs()
    out = runner.output()
    assert 'episode 1/2' in out and 'episode 2/2' in out and 'done:' in out, out
    index = yaml.safe_load((out_dir / 'dataset.yaml').read_text())
    episodes = index['episodes']
    assert [e['status'] for e in episodes] == ['complete', 'complete'], logs()
    assert all(e['success'] is not None for e in episodes), episodes
    # The scripted expert lifts the cube well within the timeout.
    assert sum(e['success'] for e in episodes) >= 1, logs()
    for entry in episodes:
        assert (out_dir / entry['name'] / 'metadata.yaml').is_file()
        assert entry['message_counts']['/joint_states'] > 50
    # Each episode stores the scene sim_node published for it (seed 3, reset once per episode).
    assert [e['scene']['seed'] for e in episodes] == [4, 5], episodes
    assert all(len(e['scene']['object_pose']) == 7 for e in episodes)
    # The expert waited for the recording: the bag begins with the arm still and the cube on
    # the table. Only the first episode is checked: at real_time_factor 0 a CPU-starved
    # recorder can still hold messages of the previous episode when the next one starts.
    first = _first_messages(out_dir / episodes[0]['name'])
    assert first['/task_success'].data is False
    assert first['/object_pose'].pose.position.z < 0.05, first['/object_pose']
    assert max(abs(v) for v in first['/joint_states'].velocity[:7]) < 0.05, first


def test_missing_service_is_a_clear_error_and_sigint_is_clean():
    isolate_dds()
    runner = NodeProcess('demo_runner_node', {'episodes': 1, 'service_timeout_s': 1.0,
                                              'sim_reset_service': '', 'use_sim_time': False,
                                              'teleop_reset_service': '',
                                              'start_service': '/nobody/start'})
    sim = NodeProcess('sim_node', {'task': 'lift'})
    try:
        assert runner.proc.wait(60.0) == 1, runner.output()
        deadline = time.monotonic() + 60.0
        while 'simulating' not in sim.output() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        runner.stop()
        sim_code = sim.stop(timeout_s=15.0)
    out = runner.output()
    assert "'/nobody/start'" in out and 'are not available after' in out, out
    assert 'start_service' in out, out
    assert 'Traceback' not in out, out
    bad = NodeProcess('demo_runner_node', {'episodes': 0})
    try:
        assert bad.proc.wait(60.0) == 1, bad.output()
    finally:
        bad.stop()
    assert 'demo_runner_node: ' in bad.output() and 'episodes must be >= 1' in bad.output()
    assert 'Traceback' not in bad.output(), bad.output()
    assert sim_code == 0 and 'Traceback' not in sim.output(), sim.output()
