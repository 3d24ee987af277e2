"""
Human-readable summaries and plots of a built dataset (matplotlib, headless).

``summary_lines`` describes the dataset (stdout); ``exclusion_lines`` says what was left out,
how much of the recording that is and which option decides it (stderr), so that excluding
data is never quiet.
"""

from pathlib import Path
from typing import Dict, List, Union

from lam_ros.data.dataset.build import Dataset
import numpy as np


# What to do about each kind of exclusion, beyond the option the exclusion names.
_HINTS: Dict[str, str] = {
    'too short': '0 keeps every episode',
    'failed outcome': 'to train on failed episodes too',
    'interrupted episode': 'to use episodes a crash or Ctrl-C cut short',
    'discarded episode': 'the operator discarded them while recording',
    'gap': 'a larger value accepts longer silences on a required topic',
    'pose frame': 'declare the frame there, or record /tf_static with the bags',
    'unreadable': 'fix or convert the files named',
    'invalid data': 'fix the mapping (--mapping) or the bags; the reasons are listed above',
    'image size': 'record every episode with one camera size',
}


def outcome_line(dataset: Dataset) -> str:
    """Return which outcomes the dataset trains on, with the counts."""
    counts = {True: 0, False: 0, None: 0}
    for ep in dataset.episodes:
        counts[ep.success] += 1
    failed = sum(1 for e in dataset.exclusions if e.kind == 'failed outcome')
    used = f'{counts[True]} successful, {counts[None]} without outcome'
    if dataset.include_failures:
        return f'outcomes used: {used}, {counts[False]} failed (--include-failures)'
    return (f'outcomes used: {used}; failed episodes excluded: {failed} '
            '(--include-failures uses them)')


def summary_lines(dataset: Dataset) -> List[str]:
    """Return the dataset's episodes, outcomes, per-joint ranges and exclusions as text lines."""
    eps = dataset.episodes
    lines = [f'episodes: {len(eps)} included, {len(dataset.exclusions)} excluded; '
             f'{dataset.num_steps} steps at {dataset.rate_hz:g} Hz',
             f'rate: {dataset.rate_hz:g} Hz, ' + (dataset.rate_source or 'as built'),
             outcome_line(dataset),
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


def exclusion_lines(dataset: Dataset, max_names: int = 6) -> List[str]:
    """
    Return the exclusion report: how many episodes, what fraction, why, and what decides it.

    Empty when nothing was excluded. One group per kind of reason, with the option that
    controls it and the first episodes' names.
    """
    excluded = dataset.exclusions
    if not excluded:
        return []
    total = len(excluded) + len(dataset.episodes)
    lines = [f'warning: excluded {len(excluded)} of {total} episodes '
             f'({100.0 * len(excluded) / total:.0f}%); the dataset uses the other '
             f'{len(dataset.episodes)}:']
    groups: Dict[str, list] = {}
    for exclusion in excluded:
        groups.setdefault(exclusion.kind, []).append(exclusion)
    for kind, items in groups.items():
        option = items[0].option
        hint = _HINTS.get(kind, '')
        decided = f'{option}: {hint}' if option else hint
        names = ', '.join(e.name for e in items[:max_names])
        more = f' (+{len(items) - max_names} more)' if len(items) > max_names else ''
        lines.append(f'  {len(items)} {kind} [{decided}]: {names}{more}')
        lines.append(f'    e.g. {items[0].name}: {items[0].reason}')
    lines.append('  (--strict makes any exclusion an error)')
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
