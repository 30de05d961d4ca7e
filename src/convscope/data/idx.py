"""Reading and writing the idx format that MNIST is distributed in (http://yann.lecun.com/exdb/mnist/).

Layout: two zero bytes, a type code, the number of dimensions, then each dimension as a big-endian uint32, then
the values in row-major order. Every check here exists so that a truncated or corrupt file is a clear error that
names the file, never a silently wrong array.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

# Type code -> big-endian numpy dtype, as the format defines them.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_file_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it ends in ``.gz``."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a valid gzip file ({e}): delete it and download it again") from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse idx bytes into an array with the file's shape; ``name`` is used in error messages."""
    if len(data) < 4:
        raise DataError(f"{name}: too short to be an idx file ({len(data)} bytes)")
    zero0, zero1, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise DataError(f"{name}: bad idx magic number 0x{data[:4].hex()} (not an idx file, or corrupt)")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{name}: truncated header")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = IDX_DTYPES[type_code]
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{name}: {problem}: header says shape {tuple(shape)} ({expected:,} bytes), file has {len(data):,} bytes"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)


def encode_idx(array: np.ndarray) -> bytes:
    """The idx bytes of ``array`` (used to write test fixtures and exported datasets)."""
    for code, dtype in IDX_DTYPES.items():
        if dtype.newbyteorder("=") == array.dtype.newbyteorder("="):
            header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            return header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    raise ValueError(f"idx cannot hold dtype {array.dtype}")
