"""
Bring a recorder output directory back to a consistent state after a crash.

Every step is safe to repeat after a crash of the recovery itself: a rebuilt bag is written
under ``.recovery/`` and only swapped in (rename) once it is closed and synced; the broken
original is parked next to it and deleted last.
"""

from dataclasses import dataclass, field
from pathlib import Path
import shutil
from typing import Any, Dict, List, Optional, Union

from lam_ros.data import messages
from lam_ros.data.recording import index as idx
from lam_ros.data.recording.repair import bag_mcap_path, read_bag_info, repair_bag, topic_counts
from lam_ros.description.files import fsync_dir

STAGING = '.recovery'
QUARANTINE = 'quarantine'
"""Sub-directory that takes episode directories no rosbag2 tool can open, out of the way."""


@dataclass
class RecoveryReport:
    """What :func:`recover_dataset` did."""

    recovered: List[str] = field(default_factory=list)
    """Unfinished bags rebuilt from their intact chunks (now ``interrupted``)."""
    unrecoverable: List[str] = field(default_factory=list)
    """Episodes with no usable data (``interrupted``, ``recovered: false``); skip them."""
    finalized: List[str] = field(default_factory=list)
    """Bags that were closed but not yet listed as such; the outcome came from the bag."""
    removed: List[str] = field(default_factory=list)
    """Leftovers deleted: bags of discarded episodes, half-written recovery copies, temp
    files of an index write cut short."""
    quarantined: List[str] = field(default_factory=list)
    """Unreadable episode directories moved to ``quarantine/`` (the entry says why)."""

    @property
    def changed(self) -> bool:
        """Return whether anything was repaired or cleaned up."""
        return bool(self.recovered or self.unrecoverable or self.finalized or self.removed
                    or self.quarantined)

    def __str__(self) -> str:
        """Summarise what was done in one line."""
        parts = [f'{label} {", ".join(names)}' for label, names in (
            ('recovered', self.recovered), ('finalized', self.finalized),
            ('unrecoverable', self.unrecoverable), ('quarantined', self.quarantined),
            ('removed', self.removed)) if names]
        return '; '.join(parts) or 'nothing to do'


def _clean_staging(output_dir: Path, report: RecoveryReport) -> None:
    staging = output_dir / STAGING
    if not staging.is_dir():
        return
    for parked in sorted(staging.glob('*.broken')):
        name = parked.name[:-len('.broken')]
        target = output_dir / name
        if target.exists() and read_bag_info(target) is not None:
            shutil.rmtree(parked)
        elif not target.exists():
            parked.rename(target)  # the swap did not happen: start over from the original
        report.removed.append(str(parked.relative_to(output_dir)))
    shutil.rmtree(staging)
    fsync_dir(output_dir)


def _remove_temp_files(output_dir: Path, report: RecoveryReport) -> None:
    # Only the lock holder writes the index, so any temp file left is from a killed writer.
    for tmp in sorted(output_dir.glob(f'.{Path(idx.INDEX_NAME).stem}.*.tmp')):
        tmp.unlink()
        report.removed.append(tmp.name)


def _quarantine(output_dir: Path, entry: Dict[str, Any], why: str,
                report: RecoveryReport) -> None:
    """Move an unreadable episode directory to ``quarantine/`` and say why in its entry."""
    name = entry['name']
    bag_dir = output_dir / name
    entry['recovered'] = False
    entry['error'] = why
    if bag_dir.exists():
        target_dir = output_dir / QUARANTINE
        target_dir.mkdir(exist_ok=True)
        target = target_dir / name
        if target.exists():
            shutil.rmtree(target)
        bag_dir.rename(target)
        fsync_dir(target_dir)
        fsync_dir(output_dir)
        entry['quarantine'] = f'{QUARANTINE}/{name}'
        report.quarantined.append(name)
    report.unrecoverable.append(name)


def _entry_from_info(entry: Dict[str, Any], info: Dict[str, Any]) -> None:
    entry['message_counts'] = topic_counts(info)
    entry['duration_s'] = round(int(info['duration']['nanoseconds']) / 1e9, 6)
    count = int(info.get('message_count') or 0)
    entry['start_time_ns'] = int(info['starting_time']['nanoseconds_since_epoch']) \
        if count else None


def _finalize_closed(entry: Dict[str, Any], info: Dict[str, Any]) -> None:
    custom = info.get('custom_data') or {}
    status = custom.get('lam_ros.status', idx.COMPLETE)
    entry['status'] = status if status in (idx.COMPLETE, idx.INTERRUPTED) else idx.COMPLETE
    entry['success'] = {'true': True, 'false': False}.get(custom.get('lam_ros.success'))
    _entry_from_info(entry, info)


def _rebuild(output_dir: Path, entry: Dict[str, Any], report: RecoveryReport) -> None:
    name = entry['name']
    bag_dir = output_dir / name
    mcap = bag_mcap_path(bag_dir) if bag_dir.is_dir() else None
    entry['status'] = idx.INTERRUPTED
    entry['success'] = None
    if mcap is None:
        _quarantine(output_dir, entry, 'the recorder stopped before the bag file was created',
                    report)
        return
    staging = output_dir / STAGING
    staging.mkdir(exist_ok=True)
    try:
        repair_bag(mcap, staging / name, messages.TYPESTORE,
                   custom_data={'lam_ros.status': idx.INTERRUPTED, 'lam_ros.success': 'null'})
    except Exception as exc:  # not MCAP at all (e.g. killed before the header hit the disk)
        shutil.rmtree(staging / name, ignore_errors=True)
        size = mcap.stat().st_size
        _quarantine(output_dir, entry, f'bag file unreadable ({size} bytes): '
                    f'{" ".join(str(exc).split())}', report)
        return
    for path in (staging / name).iterdir():
        idx.fsync_file(path)
    fsync_dir(staging / name)
    parked = staging / f'{name}.broken'
    bag_dir.rename(parked)
    (staging / name).rename(bag_dir)
    fsync_dir(staging)
    fsync_dir(output_dir)
    shutil.rmtree(parked)
    info = read_bag_info(bag_dir)
    _entry_from_info(entry, info)
    entry['recovered'] = bool(int(info.get('message_count') or 0))
    (report.recovered if entry['recovered'] else report.unrecoverable).append(name)


def recover_dataset(output_dir: Union[str, Path]) -> RecoveryReport:
    """
    Finish what a crashed recorder left in ``output_dir`` and return what was done.

    Unfinished bags are rebuilt from their intact MCAP chunks and marked ``interrupted``;
    bags that were closed but not yet listed get the outcome stored in their metadata.
    Raises RuntimeError when a live recorder holds the directory.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise ValueError(f'{output_dir} is not a directory; expected a recorder output_dir')
    lock = idx.DirectoryLock(output_dir)
    try:
        return recover_locked(output_dir)
    finally:
        lock.release()


def recover_locked(output_dir: Path) -> RecoveryReport:
    """Recover ``output_dir``; the caller holds its :class:`DirectoryLock`."""
    output_dir = Path(output_dir)
    report = RecoveryReport()
    _clean_staging(output_dir, report)
    _remove_temp_files(output_dir, report)
    index = idx.read_index(output_dir)
    on_disk = sorted(p.name for p in output_dir.iterdir()
                     if p.is_dir() and idx.episode_index(p.name) is not None)
    if index is None and not on_disk:
        return report
    if index is None:
        index = {'format_version': idx.FORMAT_VERSION, 'episodes': []}
    dirty = False
    for name in on_disk:
        if idx.find_entry(index, name) is None:
            index['episodes'].append({'name': name, 'status': idx.RECORDING, 'success': None,
                                      'duration_s': 0.0, 'message_counts': {}})
    index['episodes'].sort(key=lambda e: idx.episode_index(str(e.get('name'))) or 0)
    for entry in index['episodes']:
        name = str(entry.get('name'))
        bag_dir = output_dir / name
        status = entry.get('status')
        if status == idx.DISCARDED and bag_dir.exists():
            shutil.rmtree(bag_dir)
            report.removed.append(name)
        # A write error leaves an 'interrupted' entry whose bag was never closed.
        unclosed_error = (status == idx.INTERRUPTED and 'recovered' not in entry
                          and bag_dir.is_dir() and read_bag_info(bag_dir) is None)
        if status != idx.RECORDING and not unclosed_error:
            continue
        dirty = True
        info: Optional[Dict[str, Any]] = read_bag_info(bag_dir) if bag_dir.is_dir() else None
        if info is not None:
            _finalize_closed(entry, info)
            report.finalized.append(name)
        else:
            _rebuild(output_dir, entry, report)
    if dirty:
        idx.write_index(output_dir, index)
    staging = output_dir / STAGING
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()
    return report
