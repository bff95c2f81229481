"""Read a rosbag2 bag's messages, and as many as can be read from a damaged one.

`read_bag` opens the bag with rosbags (metadata.yaml + MCAP summary). When that fails - a
recorder killed before it closed the bag (no metadata.yaml, no MCAP footer) or a file cut short -
it scans the .mcap records from the start instead and keeps every message up to the damage,
skipping chunks whose CRC does not match. `BagScan.error` then says what was wrong in one line;
a caller reports it next to the partial result, never a traceback and never nothing.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag2 import Reader, ReaderError

MAGIC = b"\x89MCAP0\r\n"
_SCHEMA, _CHANNEL, _MESSAGE, _CHUNK, _DATA_END, _FOOTER = 0x03, 0x04, 0x05, 0x06, 0x0F, 0x02


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str       # pkg/msg/Type
    timestamp: int     # ns, the recorder's log time
    data: bytes        # CDR


@dataclass
class BagScan:
    """Messages of a bag in file order (`messages`), and what stopped the read early (`error`)."""

    path: Path
    topics: list[str] | None = None
    error: str | None = None
    salvaged: bool = False            # read by scanning records (the bag did not open normally)
    skipped_chunks: int = 0

    def messages(self) -> Iterator[BagMessage]:
        reader, why = open_reader(self.path)
        if reader is None:
            yield from self._scan(why)
            return
        try:
            conns = [c for c in reader.connections if self.topics is None or c.topic in self.topics]
            for c, stamp, data in reader.messages(connections=conns):
                yield BagMessage(c.topic, c.msgtype, stamp, bytes(data))
        except (ReaderError, OSError, ValueError, struct.error) as exc:
            self.error = f"{self.path}: read stopped: {exc}"
        finally:
            reader.close()

    def _scan(self, why: str) -> Iterator[BagMessage]:
        files = sorted(self.path.glob("*.mcap")) if self.path.is_dir() else [self.path]
        files = [f for f in files if f.is_file()]
        if not files:
            self.error = f"{self.path}: not a readable bag ({why}) and no .mcap file in it"
            return
        self.salvaged = True
        problems = []
        for f in files:
            try:
                problem = yield from _scan_mcap(f, self)
            except (struct.error, UnicodeDecodeError, IndexError) as exc:
                problem = f"corrupt record ({exc})"
            if problem:
                problems.append(f"{f.name}: {problem}")
        opened = why.splitlines()[0][:200]
        self.error = (f"{self.path}: damaged bag ({opened}); read its records directly"
                      + (f": {'; '.join(problems)}" if problems else "")
                      + (f"; {self.skipped_chunks} corrupt chunk(s) skipped" if self.skipped_chunks else ""))


def open_reader(path: Path) -> tuple[Reader | None, str]:
    """An opened rosbags Reader, or None and why the bag does not open normally (then scan it)."""
    try:
        reader = Reader(path)
        reader.open()
        return reader, ""
    except (ReaderError, FileNotFoundError, OSError, ValueError, KeyError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def read_bag(path: str | Path, topics: list[str] | None = None) -> tuple[list[BagMessage], BagScan]:
    """Every readable message (topics filter optional) and the scan (its `error`, None when whole)."""
    scan = BagScan(Path(path), topics)
    return list(scan.messages()), scan


def _string(buf: bytes, at: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, at)
    end = at + 4 + n
    if end > len(buf):
        raise struct.error("string runs past its record")
    return buf[at + 4:end].decode(), end


def _records(buf: bytes, at: int, end: int) -> Iterator[tuple[int, int, bytes | None]]:
    """(offset, opcode, body) of each record from `at`; body None where the record is cut off."""
    while at < end:
        if at + 9 > end:
            yield at, -1, None
            return
        op, length = buf[at], struct.unpack_from("<Q", buf, at + 1)[0]
        if at + 9 + length > end:
            yield at, op, None
            return
        yield at, op, buf[at + 9:at + 9 + length]
        at += 9 + length


def _scan_mcap(file: Path, scan: BagScan):
    """Yield the messages of one .mcap file record by record; returns why it stopped early, or None."""
    buf = file.read_bytes()
    if not buf.startswith(MAGIC):
        return f"no MCAP magic ({len(buf)} bytes)"
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}

    def messages_of(records) -> Iterator[BagMessage]:
        for _, op, body in records:
            if body is None:
                return
            if op == _SCHEMA:
                (sid,) = struct.unpack_from("<H", body, 0)
                schemas[sid], _ = _string(body, 2)
            elif op == _CHANNEL:
                cid, sid = struct.unpack_from("<HH", body, 0)
                topic, _ = _string(body, 4)
                channels[cid] = (topic, schemas.get(sid, ""))
            elif op == _MESSAGE:
                cid, _seq, log_time = struct.unpack_from("<HIQ", body, 0)
                topic, msgtype = channels.get(cid, ("", ""))
                if topic and (scan.topics is None or topic in scan.topics):
                    yield BagMessage(topic, msgtype, log_time, bytes(body[22:]))

    for at, op, body in _records(buf, len(MAGIC), len(buf)):
        if op in (_DATA_END, _FOOTER):
            return None
        if body is None:
            if op == _CHUNK and at + 9 + 40 <= len(buf):  # an uncompressed chunk cut off: its whole records
                inner = buf[at + 9:]
                compression, pos = _string(inner, 28)
                if compression == "":
                    start = pos + 8
                    yield from messages_of(_records(inner, start, len(inner)))
            return f"cut off at byte {at} of {len(buf)} (a record runs past the end of the file)"
        if op == _CHUNK:
            _, _, size, crc = struct.unpack_from("<QQQI", body, 0)
            compression, pos = _string(body, 28)
            (csize,) = struct.unpack_from("<Q", body, pos)
            data = body[pos + 8:pos + 8 + csize]
            try:
                if compression == "lz4":
                    import lz4.frame
                    data = lz4.frame.decompress(data)
                elif compression == "zstd":
                    import zstandard
                    data = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
                elif compression:
                    raise ValueError(f"unknown compression {compression!r}")
            except Exception:  # noqa: BLE001 - any decoder error means this chunk is lost, not the bag
                scan.skipped_chunks += 1
                continue
            if len(data) != size or (crc and zlib.crc32(data) != crc):
                scan.skipped_chunks += 1
                continue
            yield from messages_of(_records(data, 0, len(data)))
        else:
            yield from messages_of([(at, op, body)])
    return "no MCAP footer (the recorder did not close the bag)"
