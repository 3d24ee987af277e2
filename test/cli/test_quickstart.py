"""The README's main job, ``lam-ros quickstart --quick``, end to end through ROS 2 (tiny sizes)."""

import json
import os
from pathlib import Path

from lam_ros.cli import main
import pytest

pytest.importorskip('rclpy')

# Tiny sizes: the loop and every artefact, not the learning, is under test here.
TINY = ['--quick', '--demos', '2', '--eval-episodes', '1', '--ros-episodes', '1',
        '--set', 'bc_steps=20', '--set', 'bc_eval_interval=10',
        '--set', 'd_model=32', '--set', 'rl_env_steps=128', '--set', 'rl_num_envs=1',
        '--set', 'rl_rollout_steps=64', '--set', 'rl_eval_interval=128',
        '--set', 'rl_eval_episodes=1']


def _node_children() -> list:
    """Return the pids of this process's children that run a lam_ros node."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f'/proc/{entry}/stat').read_text()
            cmdline = Path(f'/proc/{entry}/cmdline').read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(')', 1)[1].split()[1])
        if ppid == os.getpid() and b'lam_ros.nodes.' in cmdline:
            found.append(int(entry))
    return found


def _read_bags(directory: Path) -> list:
    """Return the /joint_states message count of every episode bag in a recorder dataset."""
    from rosbags.highlevel import AnyReader

    from lam_ros.data import messages
    counts = []
    for bag in sorted(p for p in directory.iterdir() if p.is_dir()):
        with AnyReader([bag], default_typestore=messages.TYPESTORE) as reader:
            conns = [c for c in reader.connections if c.topic == '/joint_states']
            counts.append(sum(1 for _ in reader.messages(connections=conns)))
    return counts


def test_quick_mode_runs_every_stage_through_ros(tmp_path, capsys):
    """Bags, checkpoint, curves, GIF and the ROS-driven success rate all come out; no orphans."""
    from lam_ros.policy import load_checkpoint
    out = tmp_path / 'qs'
    assert main(['quickstart', '--out', str(out), '--video-episodes', '1'] + TINY) == 0
    printed = capsys.readouterr().out
    for step in range(1, 6):
        assert f'== {step}/5' in printed
    summary = json.loads((out / 'quickstart.json').read_text())
    for stage in ('expert', 'bc', 'rl', 'ros_inference'):
        rate = summary[stage]['success_rate']
        assert 0.0 <= rate <= 1.0, (stage, summary[stage])
    assert summary['expert']['episodes'] == 2
    assert summary['ros_inference']['episodes'] == 1
    assert summary['ros_inference']['first_seed'] == summary['bc']['seed']
    assert 'inference_node over ROS' in printed and 'wall_s' in summary
    # Every stage's artefact: bags readable by rosbags, a loadable checkpoint, plots, a GIF.
    assert all(n > 10 for n in _read_bags(out / 'demos_lift'))
    assert len(_read_bags(out / 'demos_lift')) == 2
    assert [n > 10 for n in _read_bags(out / 'ros_eval_lift')] == [True]
    model, _meta = load_checkpoint(summary['policy']['checkpoint'])
    assert sum(p.numel() for p in model.parameters()) > 0
    for stage in ('bc', 'rl'):
        png = Path(summary[stage]['curves'])
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 1000
    assert Path(summary['gif']).read_bytes()[:4] == b'GIF8'
    assert (out / 'dataset_lift.safetensors').stat().st_size > 0
    assert _node_children() == []

    # Run again: the bags and the training are reused, not redone.
    (out / 'ros_eval_lift').rename(out / 'ros_eval_before')
    assert main(['quickstart', '--out', str(out), '--video-episodes', '0'] + TINY) == 0
    printed = capsys.readouterr().out
    assert 'reusing 2 recorded episodes' in printed
    assert 'cache up to date' in printed
    assert json.loads((out / 'quickstart.json').read_text())['ros_inference']['episodes'] == 1
    assert _node_children() == []


def test_bad_options_stop_before_any_work(tmp_path, capsys):
    """A parameter quickstart owns, or a wrong value, is one clear error; nothing is written."""
    out = tmp_path / 'qs'
    assert main(['quickstart', '--out', str(out), '--set', 'dataset=x']) == 2
    assert '--set dataset: quickstart sets it' in capsys.readouterr().err
    assert main(['quickstart', '--out', str(out), '--set', 'bc_steps=0']) == 2
    assert 'bc_steps must be >= 1' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['quickstart', '--out', str(out), '--demos', '0'])
    assert not out.exists()
