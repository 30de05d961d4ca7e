import gzip

import numpy as np
import pytest

from convscope.data.idx import encode_idx, parse_idx, read_file_bytes
from convscope.errors import DataError


def test_round_trip_keeps_shape_dtype_and_values():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = encode_idx(images)
    assert data[:4] == bytes([0, 0, 0x08, 3])
    assert data[4:16] == bytes([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4])
    np.testing.assert_array_equal(parse_idx(data), images)


def test_big_endian_values_are_read_in_order():
    values = np.array([1, -2, 70000], dtype=np.int32)
    data = bytes([0, 0, 0x0C, 1, 0, 0, 0, 3]) + values.astype(">i4").tobytes()
    np.testing.assert_array_equal(parse_idx(data), values)


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad idx magic"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "bad idx magic"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x06", "truncated"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x05\x06", "trailing bytes"),
])
def test_corrupt_data_is_a_clear_error_naming_the_file(data, message):
    with pytest.raises(DataError, match=message) as info:
        parse_idx(data, "labels.idx")
    assert "labels.idx" in str(info.value)


def test_gz_files_are_decompressed_and_broken_gz_is_named(tmp_path):
    good = tmp_path / "a.gz"
    good.write_bytes(gzip.compress(b"hello"))
    assert read_file_bytes(good) == b"hello"
    broken = tmp_path / "b.gz"
    broken.write_bytes(gzip.compress(b"hello" * 100)[:20])
    with pytest.raises(DataError, match="b.gz"):
        read_file_bytes(broken)
