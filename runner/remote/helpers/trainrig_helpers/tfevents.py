"""TensorBoard event files written with the standard library: scalars only.

The format is TFRecord (length, masked CRC-32C, payload, masked CRC-32C) around `Event` protocol
buffers; the few fields a scalar needs are encoded by hand, so the events exist whether or not
TensorBoard, TensorFlow or torch is installed where the training runs.
"""

import os
import socket
import struct
import time


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n):
    out = bytearray()
    while True:
        bits = n & 0x7F
        n >>= 7
        if n:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field_bytes(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


_FLOAT32_MAX = 3.4028234663852886e38


def _float32(value):
    """A diverging loss (1e39) is beyond float32: it shows as infinity, it never ends the training."""
    if value > _FLOAT32_MAX:
        return float("inf")
    if value < -_FLOAT32_MAX:
        return float("-inf")
    return value


def _event(wall_time, step, file_version=None, scalars=()):
    out = struct.pack("<Bd", 1 << 3 | 1, wall_time) + _varint(2 << 3) + _varint(step)
    if file_version is not None:
        out += _field_bytes(3, file_version.encode())
    if scalars:
        values = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + struct.pack("<Bf", 2 << 3 | 5, _float32(value)))
            for tag, value in scalars
        )
        out += _field_bytes(5, values)
    return out


def record(payload):
    """One TFRecord around `payload`."""
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", _masked_crc(length)) + payload + struct.pack("<I", _masked_crc(payload))


class EventFileWriter:
    """Appends scalar events to a new events.out.tfevents.* file in `folder`, flushed each write."""

    def __init__(self, folder):
        os.makedirs(folder, exist_ok=True)
        now = time.time()
        name = "events.out.tfevents.%d.%s.%d.trainrig" % (int(now), socket.gethostname(), os.getpid())
        self.path = os.path.join(folder, name)
        self._file = open(self.path, "ab")
        self._write(_event(now, 0, file_version="brain.Event:2"))

    def _write(self, payload):
        self._file.write(record(payload))
        self._file.flush()

    def add_scalars(self, step, values, wall_time=None):
        """`values`: (tag, float) pairs, all at `step`."""
        self._write(_event(time.time() if wall_time is None else wall_time, step, scalars=list(values)))

    def close(self):
        self._file.close()
