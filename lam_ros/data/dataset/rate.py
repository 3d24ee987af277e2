"""
The policy rate of a dataset: asked for, recorded in ``dataset.yaml``, or read off the commands.

A policy steps at the rate its commands were sent, so the rate a dataset is built at comes, in
this order, from the user (``--rate-hz``), from the recording's ``dataset.yaml``
(``rates.control_rate_hz``), or from the bags themselves: the typical interval between
consecutive commands. Only when none of these is known does the robot description's control
rate apply. Any disagreement between what is asked and what was recorded is a warning, so a
dataset never silently resamples 25 Hz commands at 20 Hz.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

RATE_TOLERANCE = 0.02
"""Relative difference below which two rates count as the same (jitter, rounding)."""


@dataclass
class CommandRate:
    """The command rate measured in the bags."""

    rate_hz: float
    """Commands per second: 1 / the typical interval between consecutive commands (Hz)."""
    interval_ms: float
    """That interval (ms)."""
    episodes: int
    """Episodes that had at least two commands to measure."""


@dataclass
class RateChoice:
    """The rate a dataset is built at, where it comes from, and any warnings."""

    rate_hz: float
    """The policy rate (Hz)."""
    source: str
    """Where it comes from, in words (printed in the dataset summary)."""
    warnings: List[str] = field(default_factory=list)
    """Disagreements the user should hear about (printed on stderr)."""


def _tidy(rate_hz: float) -> float:
    """Round a measured rate to the whole number it almost is (24.9 -> 25.0), else 0.1 Hz."""
    nearest = float(round(rate_hz))
    if nearest > 0 and abs(rate_hz - nearest) <= 0.01 * rate_hz:
        return nearest
    return round(float(rate_hz), 1)


def detect_command_rate(command_times_ns: Sequence[np.ndarray]) -> Optional[CommandRate]:
    """
    Return the command rate over episodes' command stamps (ns), or None when unmeasurable.

    Per episode, the intervals within half and one and a half times the median (repeated
    stamps and pauses left out) are averaged, which cancels jitter; the median over episodes
    is robust to an odd episode.
    """
    intervals = []
    for times in command_times_ns:
        steps = np.diff(np.asarray(times, dtype=np.int64))
        steps = steps[steps > 0]
        if steps.size:
            median = float(np.median(steps))
            intervals.append(float(np.mean(steps[(steps > 0.5 * median)
                                                 & (steps < 1.5 * median)])))
    if not intervals:
        return None
    interval_ns = float(np.median(intervals))
    return CommandRate(_tidy(1e9 / interval_ns), interval_ns * 1e-6, len(intervals))


def _differs(a: float, b: float) -> bool:
    return abs(a - b) > RATE_TOLERANCE * max(a, b)


def choose_rate(requested: Optional[float], recorded: Optional[float],
                measured: Optional[CommandRate], command_topic: str,
                fallback: float) -> RateChoice:
    """
    Return the rate to build at, where it comes from, and a warning per disagreement.

    ``requested`` wins, else ``recorded`` (``dataset.yaml``), else ``measured`` (the bags),
    else ``fallback`` (the robot description's).
    """
    seen = (f'the commands on {command_topic} arrive at {measured.rate_hz:g} Hz (mean '
            f'interval {measured.interval_ms:.1f} ms over {measured.episodes} episodes)'
            if measured else '')
    if requested is not None:
        choice = RateChoice(float(requested), 'asked for (--rate-hz)')
        if recorded is not None and _differs(requested, recorded):
            choice.warnings.append(f'--rate-hz {requested:g} differs from the control rate '
                                   f'dataset.yaml recorded ({recorded:g} Hz)')
        if measured is not None and _differs(requested, measured.rate_hz):
            choice.warnings.append(f'--rate-hz {requested:g} differs from the recording: '
                                   f'{seen}; each policy step will span '
                                   f'{1000.0 / requested:.1f} ms')
        return choice
    if recorded is not None:
        choice = RateChoice(recorded, 'the control rate dataset.yaml recorded')
        if measured is not None and _differs(recorded, measured.rate_hz):
            choice.warnings.append(f'dataset.yaml records a control rate of {recorded:g} Hz but '
                                   f'{seen}; building at {recorded:g} Hz (pass --rate-hz to '
                                   'choose)')
        return choice
    if measured is not None:
        return RateChoice(measured.rate_hz, f'measured: {seen}')
    return RateChoice(float(fallback), "the robot description's control rate",
                      [f'no episode has two commands on {command_topic} to measure the rate; '
                       f"building at the robot description's {fallback:g} Hz (pass --rate-hz "
                       'to choose)'])
