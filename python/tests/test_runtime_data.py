"""The RuntimeData codec against docs/wire-format.md and the shared vectors."""

from __future__ import annotations

import gc
import json
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import VECTORS

from remotemedia_multiprocess.errors import WIRE_FORMAT_REASONS, WireFormatError
from remotemedia_multiprocess.runtime_data import HEADER_LEN, MAGIC, RuntimeData

SESSION = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
DTYPES = [
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "bool",
]


def roundtrip(rd: RuntimeData) -> RuntimeData:
    data = rd.encode()
    assert len(data) == rd.encoded_size() == HEADER_LEN + rd.nbytes
    back = RuntimeData.decode(data)
    assert back.encode() == data
    return back


def sample_messages() -> list[RuntimeData]:
    rng = np.random.default_rng(1)
    return [
        RuntimeData.audio(rng.standard_normal(960).astype(np.float32), 48000, channels=2),
        RuntimeData.audio(np.arange(-5, 5, dtype=np.int16), 16000),
        RuntimeData.video(rng.integers(0, 255, (2, 4, 3), dtype=np.uint8), 4, 2),
        RuntimeData.video(
            np.zeros(17, np.uint8), 3, 3, "yuv420p", frame_number=7, fps=(30000, 1001)
        ),
        RuntimeData.text("Olá, mundo ✓ 🎉", language="pt-BR"),
        RuntimeData.text(""),
        RuntimeData.tensor(np.arange(24, dtype=np.int32).reshape(2, 3, 4)),
        RuntimeData.json({"a": [1, 2.5, None, True], "ü": "x"}),
        RuntimeData.binary(bytes(range(256))),
    ]


# -- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("rd", sample_messages(), ids=lambda rd: rd.kind)
def test_roundtrip_every_kind(rd: RuntimeData) -> None:
    rd.sequence = 2**64 - 1
    rd.session_id = SESSION
    rd.timestamp_ns = 2**53 + 1
    back = roundtrip(rd)
    assert back.kind == rd.kind
    assert (back.sequence, back.session_id, back.timestamp_ns) == (
        2**64 - 1,
        SESSION,
        2**53 + 1,
    )
    assert back.as_bytes() == rd.as_bytes()
    for field in (
        "sample_rate",
        "channels",
        "sample_format",
        "width",
        "height",
        "pixel_format",
        "frame_number",
        "fps",
        "language",
        "dtype",
        "shape",
    ):
        assert getattr(back, field) == getattr(rd, field), field
    if isinstance(rd.payload, np.ndarray):
        assert back.array.shape == rd.array.shape
        np.testing.assert_array_equal(back.array, rd.array)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_every_dtype(dtype: str) -> None:
    arr = (np.arange(12) % 2).astype(dtype).reshape(3, 4)
    back = roundtrip(RuntimeData.tensor(arr))
    assert back.dtype == dtype
    assert back.array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.array, arr)


def test_tensor_scalar_empty_bigendian_and_strided() -> None:
    scalar = roundtrip(RuntimeData.tensor(np.int64(-3)))
    assert scalar.shape == () and scalar.array.shape == () and int(scalar.array) == -3
    empty = roundtrip(RuntimeData.tensor(np.zeros((0, 5), np.uint8)))
    assert empty.shape == (0, 5) and empty.nbytes == 0
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    back = roundtrip(RuntimeData.tensor(big))
    assert back.dtype == "float32"
    assert back.as_bytes() == np.arange(6, dtype="<f4").tobytes()
    strided = np.arange(64, dtype=np.int16).reshape(8, 8)[::2, 1::3]
    back = roundtrip(RuntimeData.tensor(strided))
    np.testing.assert_array_equal(back.array, strided)
    eight_d = np.zeros((1,) * 8, np.uint8)
    assert roundtrip(RuntimeData.tensor(eight_d)).shape == (1,) * 8
    with pytest.raises(ValueError):
        RuntimeData.tensor(np.zeros((1,) * 9, np.uint8))
    with pytest.raises(TypeError):
        RuntimeData.tensor(np.zeros(2, np.complex64))


@pytest.mark.parametrize(
    ("fmt", "w", "h", "shape"),
    [
        ("rgb24", 4, 2, (2, 4, 3)),
        ("bgr24", 4, 2, (2, 4, 3)),
        ("rgba32", 3, 1, (1, 3, 4)),
        ("gray8", 5, 3, (3, 5)),
        ("yuv420p", 3, 3, (17,)),
        ("nv12", 4, 2, (12,)),
    ],
)
def test_video_every_pixel_format(fmt: str, w: int, h: int, shape: tuple[int, ...]) -> None:
    n = int(np.prod(shape))
    rd = RuntimeData.video(bytes(range(n)), w, h, fmt, frame_number=2**64 - 1, fps=(25, 1))
    back = roundtrip(rd)
    assert back.array.shape == shape
    assert back.as_bytes() == bytes(range(n))
    assert (back.frame_number, back.fps) == (2**64 - 1, (25, 1))
    with pytest.raises(ValueError):
        RuntimeData.video(bytes(n + 1), w, h, fmt)


def test_audio_shapes_and_conversion() -> None:
    rd = RuntimeData.audio(np.zeros((10, 2), np.float64), 8000)
    assert rd.sample_format == "f32" and rd.channels == 2 and rd.payload.dtype == np.float32
    assert roundtrip(rd).array.shape == (10, 2)
    with pytest.raises(ValueError):
        RuntimeData.audio(np.zeros(5, np.int16), 8000, channels=2)
    with pytest.raises(ValueError):
        RuntimeData.audio(np.zeros(4, np.int16), 0)
    with pytest.raises(TypeError):
        RuntimeData.audio(np.zeros(4, np.int32), 8000)


def test_text_json_binary_accessors() -> None:
    t = roundtrip(RuntimeData.text("héllo", language="en"))
    assert t.text == "héllo" and t.as_text() == "héllo" and t.language == "en"
    assert isinstance(t.payload, memoryview)
    j = roundtrip(RuntimeData.json([1, {"b": "ü"}]))
    assert j.json() == [1, {"b": "ü"}]
    assert bytes(j.payload) == '[1,{"b":"ü"}]'.encode()
    b = roundtrip(RuntimeData.binary(b"\x00"))
    assert b.nbytes == 1 and b.as_bytes() == b"\x00" and b.array.tolist() == [0]
    with pytest.raises(ValueError):
        RuntimeData.text("x", language="x" * 17)
    with pytest.raises(ValueError):
        RuntimeData.text("x", language="é")
    with pytest.raises(ValueError):
        RuntimeData.json(float("nan"))


@pytest.mark.parametrize("kind", ["audio", "video", "text", "tensor", "json", "binary"])
def test_one_byte_or_smallest_payload(kind: str) -> None:
    rd = {
        "audio": lambda: RuntimeData.audio(np.zeros(1, np.int16), 8000),
        "video": lambda: RuntimeData.video(b"\x07", 1, 1, "gray8"),
        "text": lambda: RuntimeData.text("a"),
        "tensor": lambda: RuntimeData.tensor(np.array([9], np.uint8)),
        "json": lambda: RuntimeData.json(1),
        "binary": lambda: RuntimeData.binary(b"\xff"),
    }[kind]()
    back = roundtrip(rd)
    assert back.as_bytes() == rd.as_bytes()
    assert back.nbytes <= 2


def test_decode_is_zero_copy_and_readonly_follows_buffer() -> None:
    arr = np.arange(1000, dtype=np.float32)
    data = bytearray(RuntimeData.tensor(arr).encode())
    rd = RuntimeData.decode(data)
    base = np.frombuffer(data, np.uint8)
    assert np.shares_memory(rd.array, base)
    assert rd.array.__array_interface__["data"][0] == base.ctypes.data + HEADER_LEN
    data[HEADER_LEN : HEADER_LEN + 4] = struct.pack("<f", 42.0)
    assert rd.array[0] == 42.0  # a view, not a copy
    assert rd.array.flags.writeable
    ro = RuntimeData.decode(bytes(data))
    assert not ro.array.flags.writeable
    assert not RuntimeData.decode(RuntimeData.binary(b"ab").encode()).array.flags.writeable


def test_64_mib_tensor_encode_into() -> None:
    arr = np.random.default_rng(2).integers(0, 2**31, 16 * 1024 * 1024, dtype=np.int32)
    assert arr.nbytes == 64 * 1024 * 1024
    rd = RuntimeData.tensor(arr)
    buf = np.empty(rd.encoded_size(), np.uint8)
    rd.encode_into(memoryview(buf))
    back = RuntimeData.decode(buf)
    assert np.shares_memory(back.array, buf)
    np.testing.assert_array_equal(back.array, arr)
    with pytest.raises(ValueError):
        rd.encode_into(memoryview(buf)[:-1])
    with pytest.raises(ValueError):
        rd.encode_into(memoryview(bytes(rd.encoded_size())))


def test_encode_into_overwrites_stale_header_bytes() -> None:
    buf = bytearray(b"\xaa" * 200)
    RuntimeData.binary(b"xyz").encode_into(buf)
    assert bytes(buf[: HEADER_LEN + 3]) == RuntimeData.binary(b"xyz").encode()


def test_encode_into_overrides_sequence_and_timestamp() -> None:
    rd = RuntimeData.binary(b"x")
    buf = bytearray(rd.encoded_size())
    rd.encode_into(buf, sequence=5, timestamp_ns=6)
    back = RuntimeData.decode(buf)
    assert (back.sequence, back.timestamp_ns) == (5, 6)
    assert rd.sequence == 0


# -- errors --------------------------------------------------------------------


def valid(kind: str = "binary") -> bytearray:
    rd = {
        "binary": lambda: RuntimeData.binary(b"abcd"),
        "audio": lambda: RuntimeData.audio(np.zeros(4, np.float32), 8000, channels=2),
        "video": lambda: RuntimeData.video(bytes(24), 4, 2),
        "tensor": lambda: RuntimeData.tensor(np.zeros((2, 3), np.float32)),
        "text": lambda: RuntimeData.text("hi", language="en"),
        "json": lambda: RuntimeData.json({"a": 1}),
    }[kind]()
    return bytearray(rd.encode())


def patched(kind: str, fmt: str, offset: int, value: Any) -> bytearray:
    b = valid(kind)
    struct.pack_into(fmt, b, offset, value)
    return b


def reason_of(data: bytes | bytearray) -> str:
    with pytest.raises(WireFormatError) as info:
        RuntimeData.decode(data)
    return info.value.reason


BAD_CASES: list[tuple[str, bytes | bytearray]] = [
    ("too_short", b""),
    ("too_short", bytes(127)),
    ("bad_magic", patched("binary", "<I", 0, 0x524D4454)),
    ("bad_version", patched("binary", "<H", 4, 2)),
    ("bad_header_len", patched("binary", "<I", 8, 64)),
    ("length_mismatch", patched("binary", "<Q", 16, 5)),
    ("length_mismatch", patched("binary", "<Q", 16, 2**64 - 1)),
    ("length_mismatch", valid("binary")[:-1]),
    ("unknown_type", patched("binary", "<B", 6, 0)),
    ("unknown_type", patched("binary", "<B", 6, 7)),
    ("bad_metadata", patched("audio", "<I", 56, 0)),
    ("bad_metadata", patched("audio", "<H", 60, 0)),
    ("bad_metadata", patched("audio", "<H", 60, 3)),
    ("bad_metadata", patched("audio", "<B", 62, 3)),
    ("bad_metadata", patched("video", "<I", 56, 0)),
    ("bad_metadata", patched("video", "<I", 60, 3)),
    ("bad_metadata", patched("video", "<B", 64, 9)),
    ("bad_metadata", patched("video", "<I", 56, 2**32 - 1)),
    ("bad_metadata", patched("tensor", "<B", 56, 13)),
    ("bad_metadata", patched("tensor", "<B", 57, 9)),
    ("bad_metadata", patched("tensor", "<Q", 64, 3)),
    ("bad_metadata", patched("tensor", "<Q", 64, 2**63 + 2)),
    ("bad_metadata", patched("text", "<B", 56, 0xC3)),
    ("bad_metadata", valid("text")[:-2] + b"\xc3\x28"),
    ("bad_metadata", valid("json")[:-1] + b"x"),
]


@pytest.mark.parametrize(("reason", "data"), BAD_CASES)
def test_every_wire_format_error(reason: str, data: bytes) -> None:
    assert reason_of(data) == reason


def test_every_reason_is_covered() -> None:
    assert {r for r, _ in BAD_CASES} == set(WIRE_FORMAT_REASONS)


def test_check_order() -> None:
    b = patched("binary", "<I", 0, 0)
    struct.pack_into("<H", b, 4, 9)
    assert reason_of(b) == "bad_magic"
    b = patched("binary", "<H", 4, 9)
    struct.pack_into("<I", b, 8, 0)
    assert reason_of(b) == "bad_version"
    b = patched("binary", "<I", 8, 0)
    struct.pack_into("<Q", b, 16, 0)
    assert reason_of(b) == "bad_header_len"
    b = patched("binary", "<Q", 16, 0)
    struct.pack_into("<B", b, 6, 99)
    assert reason_of(b) == "length_mismatch"
    assert reason_of(b"RMDT" + bytes(10)) == "too_short"


def test_fuzz_never_raises_anything_else() -> None:
    rng = random.Random(7)
    seeds = [valid(k) for k in ("binary", "audio", "video", "tensor", "text", "json")]
    for seed in seeds:
        for n in range(len(seed)):
            assert reason_of(seed[:n]) in ("too_short", "length_mismatch")
    for _ in range(3000):
        b = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        try:
            RuntimeData.decode(b)
        except WireFormatError:
            pass


def test_magic_constant() -> None:
    assert struct.pack("<I", MAGIC) == b"RMDT"


# -- release -------------------------------------------------------------------


def test_release_calls_back_once_and_keeps_owner() -> None:
    calls: list[int] = []
    owner = object()
    rd = RuntimeData.decode(valid(), owner=owner, on_release=lambda: calls.append(1))
    assert rd.owner is owner and not rd.released
    with rd:
        pass
    rd.release()
    assert calls == [1] and rd.released and rd.owner is None


def test_garbage_collection_releases() -> None:
    calls: list[int] = []
    rd = RuntimeData.decode(valid(), owner=object(), on_release=lambda: calls.append(1))
    del rd
    gc.collect()
    assert calls == [1]


def test_copy_detaches() -> None:
    rd = RuntimeData.decode(valid("tensor"))
    c = rd.copy()
    assert c.encode() == rd.encode() and not np.shares_memory(c.array, rd.array)


# -- shared vectors ------------------------------------------------------------


def _vectors(bad: bool) -> list[Path]:
    if not VECTORS.is_dir():
        return []
    return sorted(p for p in VECTORS.glob("*.bin") if p.name.startswith("bad_") == bad)


def _skip_without(paths: list[Path]) -> None:
    if not paths:
        pytest.skip(f"no test vectors in {VECTORS} yet (written by scripts/make_vectors.ts)")


def _fields(path: Path) -> dict[str, Any]:
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def _from_fields(f: dict[str, Any]) -> RuntimeData:
    payload = bytes.fromhex(f["payload_hex"])
    common: dict[str, Any] = {
        "sequence": int(f["sequence"]),
        "session_id": bytes.fromhex(f["session_id"]),
        "timestamp_ns": int(f["timestamp_ns"]),
    }
    kind = f["kind"]
    if kind == "audio":
        dtype = "<f4" if f["sample_format"] == "f32" else "<i2"
        return RuntimeData.audio(
            np.frombuffer(payload, dtype),
            f["sample_rate"],
            channels=f["channels"],
            **common,
        )
    if kind == "video":
        return RuntimeData.video(
            payload,
            f["width"],
            f["height"],
            f["pixel_format"],
            frame_number=int(f["frame_number"]),
            fps=tuple(f["fps"]),
            **common,
        )
    if kind == "text":
        return RuntimeData.text(payload.decode("utf-8"), language=f["language"], **common)
    if kind == "tensor":
        arr = np.frombuffer(payload, np.dtype(f["dtype"]).newbyteorder("<")).reshape(f["shape"])
        return RuntimeData.tensor(arr, **common)
    if kind == "json":  # the payload bytes are the truth, not a re-serialization
        return RuntimeData("json", memoryview(payload), **common)
    return RuntimeData.binary(payload, **common)


def _check_fields(rd: RuntimeData, f: dict[str, Any]) -> None:
    assert rd.kind == f["kind"]
    assert rd.sequence == int(f["sequence"])
    assert rd.session_id.hex() == f["session_id"]
    assert rd.timestamp_ns == int(f["timestamp_ns"])
    assert rd.as_bytes().hex() == f["payload_hex"]
    kind = f["kind"]
    if kind == "audio":
        assert (rd.sample_rate, rd.channels, rd.sample_format) == (
            f["sample_rate"],
            f["channels"],
            f["sample_format"],
        )
    elif kind == "video":
        assert (rd.width, rd.height, rd.pixel_format) == (
            f["width"],
            f["height"],
            f["pixel_format"],
        )
        assert rd.frame_number == int(f["frame_number"]) and list(rd.fps) == f["fps"]
    elif kind == "text":
        assert rd.language == f["language"] and rd.text == f["text"]
    elif kind == "tensor":
        assert rd.dtype == f["dtype"] and list(rd.shape or ()) == f["shape"]
    elif kind == "json":
        assert rd.json() == f["value"]


GOOD = _vectors(bad=False)
BAD = _vectors(bad=True)


@pytest.mark.parametrize("path", GOOD or [None], ids=lambda p: p.stem if p else "none")
def test_vector_decodes_and_reencodes(path: Path | None) -> None:
    _skip_without(GOOD)
    assert path is not None
    data = path.read_bytes()
    f = _fields(path)
    rd = RuntimeData.decode(data)
    _check_fields(rd, f)
    assert rd.encode() == data
    assert _from_fields(f).encode() == data


@pytest.mark.parametrize("path", BAD or [None], ids=lambda p: p.stem if p else "none")
def test_bad_vector_fails_with_its_reason(path: Path | None) -> None:
    _skip_without(BAD)
    assert path is not None
    assert reason_of(path.read_bytes()) == _fields(path)["error"]


def test_docstring_examples() -> None:
    import doctest

    from remotemedia_multiprocess import _iox, channel, errors, runtime_data

    for module in (runtime_data, errors, _iox, channel):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0, module.__name__
