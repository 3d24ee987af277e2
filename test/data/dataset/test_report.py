"""Dataset summaries and plots stay readable from a few to hundreds of episodes."""

import dataclasses
import warnings

from lam_ros.data.dataset.build import build_dataset, Exclusion
from lam_ros.data.dataset.report import plot_dataset, summary_lines
from lam_ros.data.recording.demos import DemoConfig, record_demos
import pytest


@pytest.fixture(scope='module')
def many(tmp_path_factory):
    """Sixty episodes (three real lift demos, repeated) with mixed outcomes and exclusions."""
    out = tmp_path_factory.mktemp('demos')
    record_demos(DemoConfig(task='lift', episodes=3, seed=0), out)
    real = build_dataset(out)
    outcomes = [True, True, True, False, None]
    episodes = [dataclasses.replace(real.episodes[i % 3], name=f'episode_{i:06d}',
                                    success=outcomes[i % 5]) for i in range(60)]
    exclusions = [Exclusion(f'bad_{i}', 'too short' if i % 2 else 'no joint states')
                  for i in range(30)]
    return dataclasses.replace(real, episodes=episodes, exclusions=exclusions)


def test_the_summary_counts_instead_of_listing_every_episode(many):
    lines = summary_lines(many)
    assert lines[1].startswith('rate: ')
    assert lines[2].startswith('outcomes used: 36 successful, 12 without outcome')
    assert lines[3].startswith('durations: min ') and ' s, median ' in lines[3]
    assert lines[5].startswith('failures: episode_000003, episode_000008, ')
    assert lines[5].endswith('... and 2 more')
    assert not any(line.startswith('  episode_') for line in lines)
    joints = lines[lines.index('excluded:') - 8:lines.index('excluded:')]
    assert joints[0].startswith('  panda_joint1 ') and joints[0].endswith(' rad')
    assert joints[-1].startswith('  panda_finger_joint1 ') and joints[-1].endswith(' m')
    excluded = lines[lines.index('excluded:') + 1:]
    assert len(excluded) == 2 and all('... and 5 more' in line for line in excluded)
    assert len(lines) < 25


def test_the_plot_has_units_an_outcome_legend_and_no_layout_warning(many, tmp_path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figures = []
    real_savefig = plt.Figure.savefig

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return real_savefig(fig, *args, **kwargs)

    plt.Figure.savefig = keep
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            path = plot_dataset(many, tmp_path / 'plot.png')
    finally:
        plt.Figure.savefig = real_savefig
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    fig = figures[0]
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [
        'success (36)', 'failure (12)', 'not recorded (12)']
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert {ax.get_ylabel() for ax in axes} == {'position (rad)', 'position (m)'}
    assert axes[-1].get_xlabel() == 'time since episode start (s)'
    # The legend sits below the plots, not over them.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    renderer = FigureCanvasAgg(fig).get_renderer()
    box = legend.get_window_extent(renderer)
    assert all(box.y1 <= ax.get_window_extent(renderer).y0 for ax in axes)
