"""rosbags' MCAP bag writer, made to write what rosbag2_storage_mcap writes.

rosbags (0.11) leaves out two things `ros2 bag record -s mcap` puts into every bag: the channel
metadata entry `topic_type_hash` (the RIHS01 type description hash next to
`offered_qos_profiles`), and a message's publish time apart from its log time (rosbag2 writes the
DDS source timestamp, i.e. the send time, as publishTime and the reception time as logTime;
rosbags writes the reception time twice). Tools that match a channel to a type by its hash
(rosbag2's reader fills `type_description_hash` from it, bag-to-DDS bridges republish with it) and
latency analyses that subtract send from receive time need both.
"""
from __future__ import annotations

from io import BytesIO

from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import (
    Channel, McapWriter, write_channel, write_record, write_string, write_uint16, write_uint32, write_uint64)

CHUNK_BYTES = 2**20  # a chunk is closed past 1 MiB, as rosbags' own writer does


class McapStorage(McapWriter):
    """The MCAP storage of rosbags with rosbag2_storage_mcap's channel metadata and publish time."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.publish_time: int | None = None  # set by BagWriter.write for the next message only

    def add_connection(self, connection: Connection, offered_qos_profiles: str) -> None:
        metadata = BytesIO()
        for key, value in (("offered_qos_profiles", offered_qos_profiles), ("topic_type_hash", connection.digest)):
            write_string(metadata, key)
            write_string(metadata, value)
        serialization = connection.ext.serialization_format  # type: ignore[union-attr]
        self.channels.append(
            Channel(connection.id, connection.msgtype, connection.topic, serialization, metadata.getvalue()))
        self.channel_stats[connection.id] = 0
        write_channel(self.chunk.bio, self.channels[-1], self.schemas)

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        """Message record with logTime = timestamp and publishTime = self.publish_time (else timestamp);
        chunk index and time ranges use the log time, as rosbags and rosbag2 do."""
        publish_time, self.publish_time = self.publish_time, None
        self.message_start_time = min(timestamp, self.message_start_time)
        self.message_end_time = max(timestamp, self.message_end_time)
        self.channel_stats[connection.id] += 1
        chunk = self.chunk
        chunk.message_start_time = min(timestamp, chunk.message_start_time)
        chunk.message_end_time = max(timestamp, chunk.message_end_time)
        chunk.msgs[connection.id].append((timestamp, chunk.bio.tell()))
        rec = BytesIO()
        write_uint16(rec, connection.id)
        write_uint32(rec, 0)  # sequence: not known to the recorder (rosbags writes 0 too)
        write_uint64(rec, timestamp)
        write_uint64(rec, timestamp if publish_time is None else publish_time)
        rec.write(data)
        write_record(chunk.bio, 0x05, rec)
        if chunk.bio.tell() > CHUNK_BYTES:
            self.close_chunk()


class BagWriter(Writer):
    """rosbags.rosbag2.Writer whose MCAP storage is McapStorage; write() takes a publish time."""

    STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: McapStorage}

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview,
              publish_time: int | None = None) -> None:
        """timestamp: reception (log) time, ns; publish_time: the sender's time, ns (None = timestamp)."""
        if isinstance(self.storage, McapStorage):
            self.storage.publish_time = publish_time
        super().write(connection, timestamp, data)

