"""Read the records of a W&B offline run file (``offline-run-*/run-<id>.wandb``) for tests.

Shim because wandb 0.31 ships no Python reader (``wandb.sdk.internal.datastore`` was removed when the writer
moved to the Go ``wandb-core``). Format (unchanged since wandb 0.10, LevelDB log layout): a 7-byte header
``b":W&B"`` + uint16 0xBEE1 + uint8 version 0, then 32 KiB blocks of chunks, each chunk a 7-byte header
(uint32 CRC-32C, uint16 length, uint8 type: 1 full, 2 first, 3 middle, 4 last) and its bytes; fewer than 7 bytes
left in a block are zero padding, and a zero chunk header pads the rest of its block (the reader goes on with the next
block, where later records may follow, rather than stopping there). A record's bytes are a ``wandb_internal_pb2.Record`` protobuf.
"""

from __future__ import annotations

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7


def read_records(path: str | Path) -> list[wandb_internal_pb2.Record]:
    """Every record of ``path`` in order (CRC not checked). Raises ValueError on a bad file header."""
    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:HEADER])
    if (ident, magic, version) != (b":W&B", 0xBEE1, 0):
        raise ValueError(f"{path}: not a W&B run file (header {data[:HEADER]!r})")
    records, pos, parts = [], HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:  # zero padding to the end of the block (a flush); records may follow
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            records.append(record)
    return records


def item_key(item) -> str:
    """``key`` or the ``/``-joined ``nested_key`` of a history/summary/config item."""
    return item.key or "/".join(item.nested_key)
