"""
The time base of recorded episodes: header stamps, and arrivals placed on the same clock.

A recorder that stamps each message with its own clock when the callback runs (as ``ros2
bag record`` does) is only right while it keeps up. A simulation that runs faster than real
time outpaces it: callbacks run seconds after the messages arrived, so arrival stamps drift
away from the simulated instants the messages describe, and an episode opened or closed "now"
takes messages that arrived before its start and loses those still queued at its stop.

:class:`EpisodeTiming` fixes both on the clock of the header stamps (simulated time under
``use_sim_time``, the robot's clock on hardware):

- A message with a header stamp is logged at its stamp.
- A message without one (``Float64MultiArray`` commands, ``Bool`` success) is logged at the
  instant it arrived, read on the reference topic's clock: the DDS receive time of the message
  is placed between the receive times of the two reference messages (the joint states) around
  it, and its log time interpolated between their stamps. Commands are always logged at their
  arrival (a ``JointTrajectory`` stamp says when to start, not when it was sent).
- An episode holds the messages that *arrived* (DDS receive time, not callback time) between
  :meth:`~EpisodeTiming.begin` and :meth:`~EpisodeTiming.end`, opened by the last reference
  message before the start (the robot's state when it began); after ``end`` the episode
  stays open until every topic has been processed up to the stop (:meth:`~EpisodeTiming.poll`).

Receive times are wall-clock nanoseconds (``time.time_ns()``, what rmw's message info gives).
The DDS receive time is still taken by this process's threads: when the machine is loaded and
the recorder is not scheduled for a few milliseconds, messages from different publishers get
receive times in the order the threads wake, not the order they were sent. :class:`Arrivals`
takes that noise out with the publishers' source timestamps. Nothing here imports rclpy.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional

from lam_ros.data import messages

HISTORY_NS = 60 * 10**9
"""How far back (wall receive time) reference stamps are kept for late headerless messages."""

ARRIVAL_WINDOW = 256
"""Messages per publisher over which :class:`Arrivals` takes its smallest transit time."""


def has_header(msgtype: str) -> bool:
    """Return whether ``msgtype`` starts with a ``std_msgs/msg/Header`` (stamp first in CDR)."""
    fields = messages.TYPESTORE.fielddefs[msgtype][1]
    return bool(fields) and fields[0][0] == 'header' and \
        fields[0][1][1] == 'std_msgs/msg/Header'


def header_stamp_ns(raw: bytes) -> Optional[int]:
    """Return the header stamp (ns) of CDR bytes of a message that starts with a header."""
    if len(raw) < 12:
        return None
    order = 'little' if raw[1] & 1 else 'big'
    sec = int.from_bytes(raw[4:8], order, signed=True)
    nanosec = int.from_bytes(raw[8:12], order)
    return sec * 10**9 + nanosec


def bool_value(raw: bytes) -> bool:
    """Return the value of a CDR ``std_msgs/msg/Bool``."""
    return len(raw) > 4 and raw[4] != 0


@dataclass
class Stamped:
    """A message of the open episode with the time it is logged at in the bag."""

    topic: str
    log_time_ns: int
    raw: bytes


class Arrivals:
    """
    Receive times without this process's scheduling delays, from the publishers' source stamps.

    For each publisher the smallest ``received - source`` over its last
    :data:`ARRIVAL_WINDOW` messages is the transit time of a message delivered at once plus
    any offset between the two hosts' clocks; a message's arrival is its source time plus that.
    Messages published in one order then arrive in that order, however the receiving threads
    were scheduled, and the result stays on this host's clock when the publisher's differs.
    A publisher's clock stepped backwards gives arrivals early by the step until the window
    has passed. Without a source stamp (0) the receive time is used as it is.
    """

    def __init__(self) -> None:
        """Start with no publisher seen."""
        self._transit: Dict[object, deque] = {}

    def arrival(self, publisher: object, source_ns: int, received_ns: int) -> int:
        """Return the arrival time (ns) of a message from ``publisher`` (any hashable id)."""
        if not source_ns or not received_ns:
            return int(received_ns or source_ns)
        transits = self._transit.setdefault(publisher, deque(maxlen=ARRIVAL_WINDOW))
        transits.append(int(received_ns) - int(source_ns))
        return int(source_ns) + min(transits)


class _Reference:
    """Receive time -> stamp pairs of the reference topic, ascending."""

    def __init__(self) -> None:
        self.received: List[int] = []
        self.stamps: List[int] = []

    def add(self, received_ns: int, stamp_ns: int) -> None:
        if self.stamps and (stamp_ns < self.stamps[-1] or received_ns < self.received[-1]):
            # The clock went back (a restarted sim): the old pairs describe another clock.
            self.received.clear()
            self.stamps.clear()
        self.received.append(received_ns)
        self.stamps.append(stamp_ns)
        if len(self.received) > 4096 and received_ns - self.received[0] > HISTORY_NS:
            cut = bisect.bisect_left(self.received, received_ns - HISTORY_NS)
            del self.received[:cut]
            del self.stamps[:cut]

    def passed(self, received_ns: int) -> bool:
        """Return whether a reference message arrived after ``received_ns``."""
        return bool(self.received) and self.received[-1] > received_ns

    def at(self, received_ns: int) -> Optional[int]:
        """Return the stamp clock's reading at ``received_ns``, None without any reference."""
        if not self.received:
            return None
        i = bisect.bisect_right(self.received, received_ns)
        if i == 0:
            return self.stamps[0]
        if i == len(self.received):
            return self.stamps[-1]
        r0, r1 = self.received[i - 1], self.received[i]
        s0, s1 = self.stamps[i - 1], self.stamps[i]
        if r1 <= r0:
            return s0
        return s0 + (s1 - s0) * (received_ns - r0) // (r1 - r0)


class EpisodeTiming:
    """
    Which messages belong to the open episode, and the bag log time of each.

    ``topics`` maps every recorded topic to its type; ``reference_topic`` (stamped, usually
    the joint states) gives the clock that headerless messages are placed on;
    ``arrival_topics`` are logged at their arrival even if they have a header (commands).
    """

    def __init__(self, topics: Mapping[str, str], reference_topic: str,
                 arrival_topics: Iterable[str] = ()) -> None:
        """Check that the reference topic is recorded and carries header stamps."""
        if reference_topic not in topics:
            raise ValueError(f'time reference topic {reference_topic!r} is not recorded; '
                             f'expected one of {sorted(topics)}')
        if not has_header(topics[reference_topic]):
            raise ValueError(f'time reference topic {reference_topic} is '
                             f'{topics[reference_topic]}, which has no header stamp; use a '
                             'stamped topic such as the joint states')
        arrival = set(arrival_topics)
        self.reference_topic = reference_topic
        self._stamped = {t: has_header(m) and t not in arrival for t, m in topics.items()}
        self._ref = _Reference()
        self._opening: Optional[Stamped] = None  # the last reference message before the start
        self._pending: List[tuple] = []  # (topic, received_ns, raw) waiting for the reference
        self.start_ns: Optional[int] = None
        self.stop_ns: Optional[int] = None
        self._last_received: Dict[str, int] = {}
        self._pushed_since_poll: Dict[str, int] = {}
        self._polls_after_end = 0

    @property
    def recording(self) -> bool:
        """Whether an episode is begun and not yet finished."""
        return self.start_ns is not None

    @property
    def stopping(self) -> bool:
        """Whether the open episode was ended and is catching up."""
        return self.stop_ns is not None

    def clock_at(self, received_ns: int) -> Optional[int]:
        """Return the reference clock's reading at a receive time (None before any)."""
        return self._ref.at(received_ns)

    def begin(self, now_ns: int) -> None:
        """Open an episode: messages that arrive from ``now_ns`` on belong to it."""
        self.start_ns, self.stop_ns = int(now_ns), None
        self._pending.clear()
        self._last_received.clear()

    def end(self, now_ns: int) -> None:
        """End the open episode at ``now_ns``: later arrivals are left out; see :meth:`poll`."""
        if self.start_ns is None:
            raise RuntimeError('no episode is open; nothing to end')
        self.stop_ns = max(int(now_ns), self.start_ns)
        self._pushed_since_poll.clear()
        self._polls_after_end = 0

    def push(self, topic: str, raw: bytes, received_ns: int) -> List[Stamped]:
        """
        Take one message in the order its topic delivers; return those ready to be written.

        A headerless message waits until the reference topic has passed its arrival, so the
        list may hold earlier messages of other topics, and may be empty.
        """
        received_ns = int(received_ns)
        stamp = header_stamp_ns(raw) if self._stamped.get(topic) else None
        if topic == self.reference_topic and stamp is not None:
            self._ref.add(received_ns, stamp)
            if self.start_ns is None or received_ns < self.start_ns:
                # The robot's state when the episode begins: it opens the episode, so a
                # command that arrives before the next state still has one before it.
                self._opening = Stamped(topic, stamp, raw)
        if self.start_ns is None:
            return []
        self._last_received[topic] = received_ns
        self._pushed_since_poll[topic] = self._pushed_since_poll.get(topic, 0) + 1
        out: List[Stamped] = []
        inside = received_ns >= self.start_ns and (
            self.stop_ns is None or received_ns <= self.stop_ns)
        if inside:
            if topic == self.reference_topic and self._opening is not None:
                out.append(self._opening)
                self._opening = None
            if stamp is not None and stamp > 0:
                out.append(Stamped(topic, stamp, raw))
            else:
                self._pending.append((topic, received_ns, raw))
        if self._pending and topic == self.reference_topic:
            out.extend(self._resolve(final=False))
        return out

    def _resolve(self, final: bool) -> List[Stamped]:
        out, keep = [], []
        for topic, received_ns, raw in self._pending:
            if final or self._ref.passed(received_ns):
                stamp = self._ref.at(received_ns)
                if stamp is not None:
                    out.append(Stamped(topic, stamp, raw))
                # Without any reference message there is no clock to place it on: dropped.
            else:
                keep.append((topic, received_ns, raw))
        self._pending = keep
        return out

    def poll(self) -> bool:
        """
        Return whether every topic has been processed up to the stop (call it periodically).

        A topic is done when it delivered a message that arrived after the stop, or when it
        delivered nothing between two polls after :meth:`end` (its queue was empty, since an
        executor serves every ready subscription between two timer callbacks).
        """
        if self.stop_ns is None:
            return False
        pushed, self._pushed_since_poll = self._pushed_since_poll, {}
        self._polls_after_end += 1
        if self._polls_after_end < 2:
            return False
        return all(last > self.stop_ns or not pushed.get(topic)
                   for topic, last in self._last_received.items())

    def lagging(self) -> List[str]:
        """Return the topics not yet processed past the stop (for a timeout message)."""
        if self.stop_ns is None:
            return []
        return sorted(t for t, last in self._last_received.items() if last <= self.stop_ns)

    def finish(self) -> List[Stamped]:
        """Close the episode; return its messages still waiting for the reference clock."""
        out = self._resolve(final=True)
        self.start_ns = self.stop_ns = None
        self._pending.clear()
        self._opening = None
        return out

    def discard(self) -> None:
        """Close the episode, dropping what is waiting."""
        self.start_ns = self.stop_ns = None
        self._pending.clear()
        self._opening = None
