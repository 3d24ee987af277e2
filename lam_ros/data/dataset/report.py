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


OUTCOME_COLOURS = {True: '#2a9d4b', False: '#d1495b', None: '#7f7f7f'}
"""Line colour per episode outcome: success, failure, not recorded."""
OUTCOME_NAMES = {True: 'success', False: 'failure', None: 'not recorded'}
LISTED = 10
"""At most this many episodes or exclusions are named one by one in a summary."""


def _spread(values: List[float], unit: str) -> str:
    if not values:
        return 'n/a'
    lo, med, hi = np.percentile(values, [0, 50, 100])
    return f'min {lo:.2f} {unit}, median {med:.2f} {unit}, max {hi:.2f} {unit}'


def _names(names: List[str]) -> str:
    shown = ', '.join(names[:LISTED])
    return shown + (f' ... and {len(names) - LISTED} more' if len(names) > LISTED else '')


def summary_lines(dataset: Dataset) -> List[str]:
    """Return the dataset's size, rate, outcomes, durations, per-joint ranges and exclusions."""
    eps = dataset.episodes
    counts = {k: [e.name for e in eps if e.success is k] for k in (True, False, None)}
    lines = [f'episodes: {len(eps)} included, {len(dataset.exclusions)} excluded; '
             f'{dataset.num_steps} steps at {dataset.rate_hz:g} Hz',
             f'rate: {dataset.rate_hz:g} Hz, ' + (dataset.rate_source or 'as built'),
             outcome_line(dataset),
             'durations: ' + _spread([e.duration_s for e in eps], 's'),
             'observations: ' + ', '.join(f'{k} {v}' for k, v in
                                          dataset.observation_spec().items())]
    if counts[False]:
        lines.append(f'failures: {_names(counts[False])}')
    if len(eps) <= LISTED:
        for ep in eps:
            lines.append(f'  {ep.name}: {len(ep)} steps, {ep.duration_s:.2f} s, '
                         f'{OUTCOME_NAMES[ep.success]}')
    pos = dataset.stats.get('joint_pos')
    act = dataset.stats.get('action')
    if pos is not None and act is not None:
        units = joint_units(dataset)
        lines.append('joint ranges (joint_pos min..max | action min..max):')
        for j, name in enumerate(dataset.joint_names):
            lines.append(f'  {name:24s} {pos["min"][j]:+.4f}..{pos["max"][j]:+.4f} | '
                         f'{act["min"][j]:+.4f}..{act["max"][j]:+.4f} {units[j]}')
    if dataset.exclusions:
        by_reason: Dict[str, List[str]] = {}
        for e in dataset.exclusions:
            by_reason.setdefault(e.reason, []).append(e.name)
        lines.append('excluded:')
        for reason, names in sorted(by_reason.items(), key=lambda kv: -len(kv[1]))[:LISTED]:
            lines.append(f'  {_names(names)}: {reason}')
        if len(by_reason) > LISTED:
            lines.append(f'  ... and {len(by_reason) - LISTED} other reasons')
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


def joint_units(dataset: Dataset) -> List[str]:
    """Return each joint's unit: m for the robot's gripper joint, rad for the others."""
    gripper = ''
    try:
        from lam_ros.description import load_robot
        gripper = load_robot(dataset.robot or None).gripper.joint
    except (FileNotFoundError, ValueError, AttributeError):
        pass
    return ['m' if name == gripper or 'finger' in name else 'rad'
            for name in dataset.joint_names]


def plot_dataset(dataset: Dataset, path: Union[str, Path]) -> Path:
    """
    Save a PNG of every joint's trajectory over all episodes, coloured by outcome.

    Readable from one to hundreds of episodes: one colour per outcome (with the counts in one
    legend above the plots), line opacity falling with the number of episodes, and the
    commands (dashed) drawn only for up to 20 episodes.
    """
    if not dataset.episodes:
        raise ValueError('the dataset has no episodes to plot; see its exclusion report')
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib.lines import Line2D
    import matplotlib.pyplot as plt

    names, units = dataset.joint_names, joint_units(dataset)
    eps = dataset.episodes
    cols = 2
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 1.9 * rows + 1.0),
                             squeeze=False, sharex=True, layout='constrained')
    alpha = float(np.clip(6.0 / len(eps), 0.06, 0.9))
    commands = len(eps) <= 20
    # Failures last, so that they stay visible on top of many successes.
    for ep in sorted(eps, key=lambda e: {True: 0, None: 1, False: 2}[e.success]):
        t = np.arange(len(ep)) / dataset.rate_hz
        colour = OUTCOME_COLOURS[ep.success]
        for j in range(len(names)):
            ax = axes[j // cols][j % cols]
            ax.plot(t, ep.obs['joint_pos'][:, j], color=colour, lw=0.9, alpha=alpha)
            if commands:
                ax.plot(t, ep.action[:, j], color=colour, lw=0.7, ls='--', alpha=alpha)
    for j, name in enumerate(names):
        ax = axes[j // cols][j % cols]
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(f'position ({units[j]})', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].axis('off')
    for ax in axes[-1]:
        ax.set_xlabel('time since episode start (s)', fontsize=8)
    handles = [Line2D([], [], color=OUTCOME_COLOURS[k], lw=2,
                      label=f'{OUTCOME_NAMES[k]} ({n})')
               for k, n in ((k, sum(e.success is k for e in eps)) for k in (True, False, None))
               if n]
    if commands:
        handles.append(Line2D([], [], color='black', lw=1, ls='--', label='command'))
    fig.legend(handles=handles, loc='outside lower center', ncol=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle(f'joint positions of {len(eps)} episodes at {dataset.rate_hz:g} Hz'
                 + (' (dashed: commands)' if commands else ''), fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
