"""The policy rate: asked for, recorded, or measured on the commands, with warnings."""

from lam_ros.data.dataset.rate import choose_rate, CommandRate, detect_command_rate
import numpy as np
import pytest


def stamps(rate_hz, n=50, jitter_s=0.0, seed=0):
    """Return command times (ns) at ``rate_hz`` with uniform jitter."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate_hz + rng.uniform(-jitter_s, jitter_s, n)
    return np.round(np.sort(t) * 1e9).astype(np.int64)


@pytest.mark.parametrize('rate_hz', [25.0, 50.0, 10.0, 30.0, 12.5])
def test_the_command_rate_is_measured_through_jitter_and_pauses(rate_hz):
    times = stamps(rate_hz, jitter_s=0.02 / rate_hz)
    paused = np.concatenate([times, times[-1] + 2_000_000_000 + times])  # a 2 s pause
    repeated = np.repeat(times, 2)  # the same stamp twice (two publishers)
    measured = detect_command_rate([times, paused, repeated])
    assert measured.rate_hz == rate_hz and measured.episodes == 3
    assert measured.interval_ms == pytest.approx(1000 / rate_hz, rel=0.01)


def test_nothing_to_measure():
    assert detect_command_rate([]) is None
    assert detect_command_rate([np.array([5], dtype=np.int64)]) is None


def test_choice_order_and_warnings():
    measured = CommandRate(25.0, 40.0, 3)
    asked = choose_rate(20.0, None, measured, '/cmd', 20.0)
    assert asked.rate_hz == 20.0 and len(asked.warnings) == 1
    assert '--rate-hz 20 differs from the recording' in asked.warnings[0]
    assert choose_rate(25.0, None, measured, '/cmd', 20.0).warnings == []
    assert choose_rate(25.2, None, measured, '/cmd', 20.0).warnings == []  # within 2 %
    recorded = choose_rate(None, 20.0, measured, '/cmd', 20.0)
    assert recorded.rate_hz == 20.0 and 'dataset.yaml records' in recorded.warnings[0]
    both = choose_rate(30.0, 20.0, measured, '/cmd', 20.0)
    assert len(both.warnings) == 2
    plain = choose_rate(None, None, measured, '/cmd', 20.0)
    assert plain.rate_hz == 25.0 and not plain.warnings and 'measured' in plain.source
    blind = choose_rate(None, None, None, '/cmd', 20.0)
    assert blind.rate_hz == 20.0 and 'no episode has two commands on /cmd' in blind.warnings[0]
