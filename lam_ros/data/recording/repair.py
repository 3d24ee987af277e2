"""
Salvage the messages of an MCAP file cut short by a crash into a complete rosbag2 bag.

A recorder killed mid-episode leaves an MCAP file with a header, the chunks flushed so far
and perhaps a torn record at the end, but no summary, footer or ``metadata.yaml``. The MCAP
record framing (opcode, length, body) lets a reader walk the file up to the torn record; the
complete chunks are rewritten here into a new bag with the ``rosbags`` writer.
"""

from dataclasses import dataclass, field
from pathlib import Path
import struct
from typing import Dict, Iterator, Optional, Tuple, Union

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys.store import Typestore
import yaml

MAGIC = b'\x89MCAP0\r\n'
_OP_HEADER, _OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK = 1, 2, 3, 4, 5, 6
_U16 = struct.Struct('<H')
_U32 = struct.Struct('<I')
_U64 = struct.Struct('<Q')


@dataclass
class Channel:
    """One MCAP channel: a topic and its message type."""

    topic: str
    msgtype: str


@dataclass
class ScanResult:
    """What a scan of a (possibly truncated) MCAP file found."""

    channels: Dict[int, Channel] = field(default_factory=dict)
    """Channels by MCAP channel id."""
    complete: bool = False
    """True when the file ends with a footer (it was closed properly)."""
    valid_bytes: int = 0
    """Offset just after the last intact record."""


class _Truncated(Exception):
    """Raised internally at the first record that does not fit in the file."""


def _take(buf: memoryview, pos: int, size: int) -> Tuple[memoryview, int]:
    if pos + size > len(buf):
        raise _Truncated
    return buf[pos:pos + size], pos + size


def _string(buf: memoryview, pos: int) -> Tuple[str, int]:
    raw, pos = _take(buf, pos, 4)
    text, pos = _take(buf, pos, _U32.unpack(raw)[0])
    return bytes(text).decode('utf-8'), pos


def _decompress(data: memoryview, compression: str, size: int) -> memoryview:
    if compression == '':
        return data
    if compression == 'zstd':
        try:
            from compression import zstd
        except ImportError:
            from backports import zstd
        return memoryview(zstd.decompress(bytes(data)))
    if compression == 'lz4':
        import lz4.frame
        return memoryview(lz4.frame.decompress(bytes(data)))
    raise ValueError(f'unsupported MCAP chunk compression {compression!r}; expected zstd or lz4')


def _records(buf: memoryview, pos: int, end: int) -> Iterator[Tuple[int, memoryview, int]]:
    """Yield (opcode, body, end offset) for each whole record in ``buf[pos:end]``."""
    while pos < end:
        head, body_pos = _take(buf, pos, 9)
        opcode = head[0]
        (length,) = _U64.unpack(head[1:9])
        if body_pos + length > end:
            raise _Truncated
        yield opcode, buf[body_pos:body_pos + length], body_pos + length
        pos = body_pos + length


def _handle(opcode: int, body: memoryview, schemas: Dict[int, str], result: ScanResult
            ) -> Iterator[Tuple[int, int, memoryview]]:
    """Update schemas/channels from one record; yield messages as (channel, log_ns, data)."""
    if opcode == _OP_SCHEMA:
        (sid,) = _U16.unpack(body[:2])
        schemas[sid], _ = _string(body, 2)
    elif opcode == _OP_CHANNEL:
        cid, sid = struct.unpack('<HH', body[:4])
        topic, _ = _string(body, 4)
        result.channels[cid] = Channel(topic, schemas.get(sid, ''))
    elif opcode == _OP_MESSAGE:
        cid, _seq, log_ns, _pub = struct.unpack('<HIQQ', body[:22])
        yield cid, log_ns, body[22:]
    elif opcode == _OP_CHUNK:
        _start, _end, size, _crc = struct.unpack('<QQQI', body[:28])
        compression, pos = _string(body, 28)
        raw, pos = _take(body, pos, 8)
        data, _ = _take(body, pos, _U64.unpack(raw)[0])
        inner = _decompress(data, compression, size)
        for sub_op, sub_body, _ in _records(inner, 0, len(inner)):
            yield from _handle(sub_op, sub_body, schemas, result)


def scan_mcap(data: Union[bytes, memoryview], result: ScanResult
              ) -> Iterator[Tuple[int, int, memoryview]]:
    """
    Yield (channel id, log time ns, CDR bytes) of every intact message in MCAP ``data``.

    Channels are added to ``result.channels`` before their first message is yielded; the
    scan stops quietly at a torn record and leaves its offset in ``result.valid_bytes``.
    """
    buf = memoryview(data)
    if bytes(buf[:8]) != MAGIC:
        raise ValueError('not an MCAP file (bad magic bytes at the start)')
    schemas: Dict[int, str] = {}
    result.valid_bytes = 8
    try:
        for opcode, body, end in _records(buf, 8, len(buf)):
            if opcode == _OP_FOOTER:
                result.complete = bytes(buf[end:end + 8]) == MAGIC
                result.valid_bytes = end
                return
            # A chunk torn inside its body raises before any of its messages are yielded.
            messages = list(_handle(opcode, body, schemas, result))
            yield from messages
            result.valid_bytes = end
    except (_Truncated, struct.error):
        return


def bag_mcap_path(bag_dir: Path) -> Optional[Path]:
    """Return the MCAP file of a bag directory (the one its name implies, else the only one)."""
    bag_dir = Path(bag_dir)
    named = bag_dir / f'{bag_dir.name}.mcap'
    if named.exists():
        return named
    found = sorted(bag_dir.glob('*.mcap'))
    return found[0] if len(found) == 1 else None


def read_bag_info(bag_dir: Path) -> Optional[Dict[str, object]]:
    """
    Return ``rosbag2_bagfile_information`` of a closed bag, or None when it is not closed.

    A bag counts as closed when ``metadata.yaml`` exists and its MCAP ends with a footer.
    """
    meta_path = Path(bag_dir) / 'metadata.yaml'
    mcap = bag_mcap_path(bag_dir)
    if not meta_path.exists() or mcap is None or mcap.stat().st_size < 16:
        return None
    with open(mcap, 'rb') as f:
        f.seek(-8, 2)
        if f.read(8) != MAGIC:
            return None
    try:
        with open(meta_path, encoding='utf-8') as f:
            meta = yaml.safe_load(f) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        return None  # metadata.yaml cut short by a crash: rebuild it from the MCAP
    info = meta.get('rosbag2_bagfile_information') if isinstance(meta, dict) else None
    return info if isinstance(info, dict) else None


def topic_counts(info: Dict[str, object]) -> Dict[str, int]:
    """Return message counts per topic from a bag's ``rosbag2_bagfile_information``."""
    counts = {}
    for item in info.get('topics_with_message_count') or []:
        counts[item['topic_metadata']['name']] = int(item['message_count'])
    return counts


def repair_bag(src_mcap: Path, dst_dir: Path, typestore: Typestore,
               custom_data: Optional[Dict[str, str]] = None) -> Dict[str, int]:
    """
    Write every intact message of ``src_mcap`` into a new bag at ``dst_dir``.

    Returns the message count per topic. Channels whose type ``typestore`` does not know
    are dropped (their definitions cannot be written). ``dst_dir`` must not exist.
    """
    with open(src_mcap, 'rb') as f:
        data = f.read()
    result = ScanResult()
    counts: Dict[str, int] = {}
    writer = Writer(dst_dir, version=9, storage_plugin=StoragePlugin.MCAP)
    for key, value in (custom_data or {}).items():
        writer.set_custom_data(key, value)
    writer.open()
    try:
        connections = {}
        for cid, log_ns, payload in scan_mcap(data, result):
            if cid not in connections:
                channel = result.channels.get(cid)
                if channel is None or channel.msgtype not in typestore.types:
                    connections[cid] = None
                else:
                    connections[cid] = writer.add_connection(channel.topic, channel.msgtype,
                                                             typestore=typestore)
                    counts[channel.topic] = 0
            connection = connections[cid]
            if connection is not None:
                writer.write(connection, log_ns, payload)
                counts[connection.topic] += 1
        # Topics that were announced but never got a message still belong in the bag.
        for cid, channel in result.channels.items():
            if cid not in connections and channel.msgtype in typestore.types:
                writer.add_connection(channel.topic, channel.msgtype, typestore=typestore)
                counts[channel.topic] = 0
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return counts
