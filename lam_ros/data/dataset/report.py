"""Human-readable summaries and plots of a built dataset (matplotlib, headless)."""

from pathlib import Path
from typing import List, Union

from lam_ros.data.dataset.build import Dataset
import numpy as np


def summary_lines(dataset: Dataset) -> List[str]:
    """Return the dataset's episodes, outcomes, per-joint ranges and exclusions as text lines."""
    eps = dataset.episodes
    successes = [e.success for e in eps if e.success is not None]
    lines = [f'episodes: {len(eps)} included, {len(dataset.exclusions)} excluded; '
             f'{dataset.num_steps} steps at {dataset.rate_hz:g} Hz',
             'success: ' + (f'{sum(successes)}/{len(successes)} recorded outcomes'
                            if successes else 'not recorded'),
             'observations: ' + ', '.join(f'{k} {v}' for k, v in
                                          dataset.observation_spec().items())]
    for ep in eps:
        outcome = {True: 'success', False: 'failure', None: 'unknown'}[ep.success]
        lines.append(f'  {ep.name}: {len(ep)} steps, {ep.duration_s:.2f} s, {outcome}')
    pos = dataset.stats.get('joint_pos')
    act = dataset.stats.get('action')
    if pos is not None and act is not None:
        lines.append('joint ranges (joint_pos min..max | action min..max):')
        for j, name in enumerate(dataset.joint_names):
            lines.append(f'  {name:24s} {pos["min"][j]:+.4f}..{pos["max"][j]:+.4f} | '
                         f'{act["min"][j]:+.4f}..{act["max"][j]:+.4f}')
    if dataset.exclusions:
        lines.append('excluded:')
        lines.extend(f'  {e.name}: {e.reason}' for e in dataset.exclusions)
    return lines


def plot_dataset(dataset: Dataset, path: Union[str, Path]) -> Path:
    """Save a PNG with every joint's trajectories (positions and commands) over all episodes."""
    if not dataset.episodes:
        raise ValueError('the dataset has no episodes to plot; see its exclusion report')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = dataset.joint_names
    cols = 2
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 2.2 * rows), squeeze=False,
                             sharex=True)
    colours = plt.get_cmap('tab10')
    for e, ep in enumerate(dataset.episodes):
        t = np.arange(len(ep)) / dataset.rate_hz
        for j in range(len(names)):
            ax = axes[j // cols][j % cols]
            ax.plot(t, ep.obs['joint_pos'][:, j], color=colours(e % 10), lw=1.0,
                    label=ep.name if j == 0 else None)
            ax.plot(t, ep.action[:, j], color=colours(e % 10), lw=0.8, ls='--')
    for j, name in enumerate(names):
        ax = axes[j // cols][j % cols]
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].axis('off')
    for ax in axes[-1]:
        ax.set_xlabel('time (s)')
    axes[0][0].legend(fontsize=7, loc='best')
    fig.suptitle('joint positions (solid) and commands (dashed)', fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
