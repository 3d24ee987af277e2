"""Write a rosbag2 bag (MCAP or sqlite3) from timestamped messages, e.g. converted episodes."""

from pathlib import Path
from typing import Any, Dict, Iterable, Tuple, Union

from lam_ros.data import messages
from rosbags.rosbag2 import StoragePlugin, Writer

Record = Tuple[str, str, int, Any]
"""``(topic, msgtype, log_time_ns, message)`` with a message from :mod:`messages`."""


STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
"""Storage plugins by the name ``ros2 bag record -s`` takes."""


def write_bag(path: Union[str, Path], records: Iterable[Record], storage: str = 'mcap') -> Path:
    """
    Write ``records`` (in any order) to a new bag directory at ``path``; return it.

    ``storage`` is ``mcap`` (the default since Iron) or ``sqlite3`` (``.db3``, the default up
    to Humble). The bag is what ``ros2 bag record`` would produce: ``ros2 bag info``, Foxglove
    and :mod:`lam_ros.data.bags.reader` read it.
    """
    path = Path(path)
    if path.exists():
        raise ValueError(f'{path} already exists; a bag is written to a new directory')
    if storage not in STORAGES:
        raise ValueError(f'storage must be one of {sorted(STORAGES)}, got {storage!r}')
    ordered = sorted(records, key=lambda r: int(r[2]))
    connections: Dict[Tuple[str, str], Any] = {}
    with Writer(path, version=9, storage_plugin=STORAGES[storage]) as writer:
        for topic, msgtype, stamp_ns, msg in ordered:
            key = (topic, msgtype)
            if key not in connections:
                if any(t == topic for t, _ in connections):
                    raise ValueError(f'topic {topic} is given two message types; one topic '
                                     'carries one type')
                connections[key] = writer.add_connection(topic, msgtype,
                                                         typestore=messages.TYPESTORE)
            writer.write(connections[key], int(stamp_ns), messages.serialize(msg, msgtype))
    return path
