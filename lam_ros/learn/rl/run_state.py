"""
What an RL run leaves on disk: metrics.csv, curves.png, TensorBoard events, checkpoints.

``best/`` and ``last/`` are ordinary policy checkpoints (lam_ros.policy.checkpoint). ``last/``
also holds ``value_head.safetensors`` and the optimizer state, so running the same command
again resumes where the run stopped.
"""

from dataclasses import dataclass, field
import os
from typing import Any, Dict, List, Optional, Tuple

from lam_ros.learn import run_files
from lam_ros.learn.rl.agent import ActorCritic
from lam_ros.policy import CheckpointError, load_checkpoint, save_checkpoint
from safetensors.torch import load_file, save_file
import torch

METRICS_FILE = 'metrics.csv'
PLOT_FILE = 'curves.png'
VALUE_FILE = 'value_head.safetensors'
COLUMNS = ('env_steps', 'update', 'train_success_rate', 'train_return', 'train_episodes',
           'eval_success_rate', 'eval_return', 'policy_loss', 'value_loss', 'kl_bc', 'bc_loss',
           'entropy', 'approx_kl', 'clip_fraction', 'std', 'kl_coef', 'bc_coef', 'actor_lr',
           'imitation_loss', 'imitation_episodes', 'imitation_hard_episodes', 'replay_episodes',
           'replay_successes', 'steps_per_s', 'elapsed_s')


@dataclass
class RLResult:
    """What an RL run produced."""

    out_dir: str
    """The run directory."""
    best_checkpoint: str
    """best/: the best evaluated policy (the BC policy when RL never beat it)."""
    last_checkpoint: str
    """last/: the latest weights, with what resuming needs."""
    env_steps: int
    """Env steps done in total, over all resumed sessions."""
    resumed_from: int
    """Env steps this session started at."""
    best_success_rate: float
    """Success rate of best/ on the validation seeds."""
    initial_success_rate: Optional[float]
    """Success rate of the BC policy on the validation seeds (None if never evaluated)."""
    wall_time_s: float
    """Time of this session (s)."""
    steps_per_s: float
    """Env steps per second while collecting rollouts (policy inference included)."""
    interrupted: bool = False
    """True when the run stopped early (should_stop or SIGINT); last/ holds its state."""
    metrics_csv: str = ''
    """Path of metrics.csv."""
    curves_png: str = ''
    """Path of curves.png."""
    evaluations: List[Dict[str, Any]] = field(default_factory=list)
    """(env_steps, success_rate, mean_return) of every evaluation this session."""


class RLMetrics(run_files.MetricsLog):
    """Rows of metrics.csv (env_steps first) mirrored to TensorBoard when it is installed."""

    def __init__(self, out_dir: str, resume_env_steps: int = 0) -> None:
        """Open out_dir/metrics.csv keeping the rows up to resume_env_steps."""
        super().__init__(out_dir, resume_env_steps, COLUMNS, 'env_steps', 'rl/')


def read_rl_metrics(path: str) -> List[Dict[str, Optional[float]]]:
    """Read an RL metrics.csv into dicts of floats (None for empty cells; env_steps as int)."""
    return run_files.read_metrics(path, 'env_steps')


def plot_rl_curves(metrics_path: str, png_path: str, title: str = '') -> Optional[str]:
    """Plot success rate and return against env steps; return png_path (None if no rows)."""
    rows = read_rl_metrics(metrics_path)
    if not rows:
        return None
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for key, label, style in (('eval_success_rate', 'evaluation (mean chunk)', 'o-'),
                              ('train_success_rate', 'training rollouts (sampled)', '-')):
        points = [(r['env_steps'], r[key]) for r in rows if r.get(key) is not None]
        if points:
            top.plot(*zip(*points), style, label=label, alpha=0.8)
    top.set_ylabel('success rate')
    top.set_ylim(-0.02, 1.02)
    for key, label, style in (('eval_return', 'evaluation', 'o-'),
                              ('train_return', 'training rollouts', '-')):
        points = [(r['env_steps'], r[key]) for r in rows if r.get(key) is not None]
        if points:
            bottom.plot(*zip(*points), style, label=label, alpha=0.8)
    bottom.set_ylabel('episode return (env reward)')
    bottom.set_xlabel('env steps')
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        top.set_title(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def save_last(last_dir: str, agent: ActorCritic, optimizer: torch.optim.Optimizer,
              metadata: Dict[str, Any]) -> str:
    """Write last/: the policy checkpoint, then the value head and the optimizer state."""
    save_checkpoint(last_dir, agent.policy, metadata)
    tensors = {k: v.detach().cpu().contiguous() for k, v in agent.value_head.state_dict().items()}
    tmp = os.path.join(last_dir, VALUE_FILE + '.tmp')
    save_file(tensors, tmp)
    os.replace(tmp, os.path.join(last_dir, VALUE_FILE))
    run_files.save_training_state(last_dir, optimizer, {'env_steps': metadata['rl']['env_steps']})
    return last_dir


def load_last(last_dir: str, agent: ActorCritic) -> Tuple[Dict[str, Any], Optional[Dict]]:
    """Load last/ into agent; return (its metadata, optimizer state or None)."""
    try:
        policy, metadata = load_checkpoint(last_dir)
    except CheckpointError as err:
        raise ValueError(f'cannot resume from {last_dir}: {err}; remove it or choose a new '
                         'output directory') from err
    if policy.config.to_dict() != agent.policy.config.to_dict():
        raise ValueError(f'{last_dir} holds another policy config than the checkpoint being '
                         'fine-tuned; use a new output directory')
    agent.policy.load_state_dict(policy.state_dict())
    value_path = os.path.join(last_dir, VALUE_FILE)
    if os.path.isfile(value_path):
        agent.value_head.load_state_dict(load_file(value_path))
    state = run_files.load_training_state(last_dir)
    env_steps = (metadata.get('rl') or {}).get('env_steps')
    if state is None or state[1].get('env_steps') != env_steps or \
            not os.path.isfile(value_path):
        return metadata, None  # an interrupted save: restart the optimizer moments
    return metadata, state[0]
