"""RuntimeData and its wire codec (docs/wire-format.md, version 1).

A message is a 128-byte little-endian header followed by the payload bytes.
This codec is byte-for-byte identical to ``data/runtime_data/``; both are
pinned by the shared vectors in ``tests/vectors``.

Decoding never copies the payload: audio, video and tensor payloads are numpy
arrays over the decoded buffer, text/json/binary payloads are memoryviews of
it. Encoding writes the header and copies the payload with one memmove.

Example:
    >>> import numpy as np
    >>> rd = RuntimeData.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    >>> back = RuntimeData.decode(rd.encode())
    >>> back.kind, back.shape, back.array.tolist()
    ('tensor', (2, 3), [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
"""

from __future__ import annotations

import contextlib
import json as _json
import struct
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import numpy as np
import numpy.typing as npt

from ._contracts import (
    WIRE_AUDIO_FORMATS,
    WIRE_DTYPES,
    WIRE_HEADER_LEN,
    WIRE_LANGUAGE_MAX,
    WIRE_MAGIC,
    WIRE_MAX_NDIM,
    WIRE_OFFSETS,
    WIRE_PIXEL_FORMATS,
    WIRE_TYPES,
)
from ._contracts import WIRE_VERSION as _WIRE_VERSION
from .errors import WireFormatError, WireFormatReason

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "HEADER_LEN",
    "MAGIC",
    "WIRE_VERSION",
    "Kind",
    "RuntimeData",
]

Kind = Literal["audio", "video", "text", "tensor", "json", "binary"]
"""The six payload kinds."""

MAGIC = WIRE_MAGIC
"""``b"RMDT"`` read as a little-endian u32."""
WIRE_VERSION = _WIRE_VERSION
"""The wire format version this codec reads and writes."""
HEADER_LEN = WIRE_HEADER_LEN
"""Length of the header, and offset of the payload."""

_U64_MAX = (1 << 64) - 1
_U32_MAX = (1 << 32) - 1
_SAFE_INT_MAX = (1 << 53) - 1  # shape entries stay exact in the TS codec too
_MAX_NDIM = WIRE_MAX_NDIM
_LANGUAGE_OFFSET = WIRE_OFFSETS["text_language"]
_LANGUAGE_MAX = WIRE_LANGUAGE_MAX

# magic, version, type, flags, header_len, reserved, payload_len, sequence,
# session_id, timestamp_ns: the first 56 bytes.
_COMMON = struct.Struct("<IHBBIIQQ16sQ")

_KIND_CODES: dict[str, int] = dict(WIRE_TYPES)
_KINDS: dict[int, Kind] = {code: cast("Kind", kind) for kind, code in WIRE_TYPES.items()}

_SAMPLE_FORMAT_CODES: dict[str, int] = dict(WIRE_AUDIO_FORMATS)
_SAMPLE_FORMATS: dict[int, str] = {v: k for k, v in WIRE_AUDIO_FORMATS.items()}
_SAMPLE_DTYPES: dict[str, np.dtype[Any]] = {
    "f32": np.dtype("<f4"),
    "i16": np.dtype("<i2"),
}

_PIXEL_FORMATS: dict[int, str] = {v: k for k, v in WIRE_PIXEL_FORMATS.items()}
_PIXEL_FORMAT_CODES: dict[str, int] = {v: k for k, v in _PIXEL_FORMATS.items()}
_PACKED_CHANNELS: dict[str, int] = {"rgb24": 3, "bgr24": 3, "rgba32": 4}

_DTYPES: dict[int, str] = {v: k for k, v in WIRE_DTYPES.items()}
_DTYPE_CODES: dict[str, int] = {v: k for k, v in _DTYPES.items()}
_WIRE_DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "uint32": np.dtype("<u4"),
    "uint64": np.dtype("<u8"),
    "float16": np.dtype("<f2"),
    "bool": np.dtype("?"),
}
_U1 = np.dtype("u1")
_ZERO_SESSION = bytes(16)


def _fail(reason: WireFormatReason, message: str) -> WireFormatError:
    return WireFormatError(reason, message)


def _video_length(width: int, height: int, pixel_format: str) -> int:
    px = width * height
    if pixel_format in ("rgb24", "bgr24"):
        return px * 3
    if pixel_format == "rgba32":
        return px * 4
    if pixel_format == "gray8":
        return px
    # yuv420p and nv12: a full-size luma plane, two quarter-size chroma planes.
    return px + 2 * (((width + 1) // 2) * ((height + 1) // 2))


def _video_shape(width: int, height: int, pixel_format: str) -> tuple[int, ...]:
    channels = _PACKED_CHANNELS.get(pixel_format)
    if channels is not None:
        return (height, width, channels)
    if pixel_format == "gray8":
        return (height, width)
    return (_video_length(width, height, pixel_format),)


def _dtype_name(dtype: np.dtype[Any]) -> str:
    """The wire name of a numpy dtype, whatever its byte order."""
    if dtype.kind == "b":
        return "bool"
    name = dtype.newbyteorder("=").name if dtype.byteorder != "|" else dtype.name
    if name not in _DTYPE_CODES:
        raise TypeError(f"dtype {dtype} has no wire code (supported: {', '.join(_DTYPE_CODES)})")
    return name


def _check_u(name: str, value: int, maximum: int, minimum: int = 0) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not minimum <= int(value) <= maximum:
        raise ValueError(f"{name} {value} is not in {minimum}..{maximum}")


def _session_bytes(
    session_id: bytes | bytearray | memoryview | str | uuid.UUID | None,
) -> bytes:
    if session_id is None:
        return _ZERO_SESSION
    if isinstance(session_id, uuid.UUID):
        return session_id.bytes
    if isinstance(session_id, str):
        session_id = bytes.fromhex(session_id.replace("-", ""))
    out = bytes(session_id)
    if len(out) != 16:
        raise ValueError(f"session_id must be 16 bytes, got {len(out)}")
    return out


def _check_language(language: str | None) -> None:
    if language is None:
        return
    raw = language.encode("ascii", errors="replace")
    if not language.isascii() or "\0" in language:
        raise ValueError(f"language tag {language!r} is not NUL-free ASCII")
    if len(raw) > _LANGUAGE_MAX:
        raise ValueError(f"language tag {language!r} is longer than {_LANGUAGE_MAX} bytes")


def _byte_view(data: Any) -> memoryview:
    """A flat unsigned-byte view of a bytes-like object, without copying."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        if not mv.c_contiguous:
            raise ValueError("the buffer must be C-contiguous")
        mv = mv.cast("B")
    return mv


def _readonly_empty(dtype: np.dtype[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
    arr = np.empty(shape, dtype=dtype)
    arr.flags.writeable = False
    return arr


def _view(
    mv: memoryview, dtype: np.dtype[Any], count: int, shape: tuple[int, ...]
) -> npt.NDArray[Any]:
    """A numpy view of ``count`` items after the header of ``mv``."""
    if count == 0:
        return _readonly_empty(dtype, shape)
    return np.frombuffer(mv, dtype=dtype, count=count, offset=HEADER_LEN).reshape(shape)


class _Lease:
    """Keeps the owner of a decoded buffer (an iceoryx2 sample) alive and
    releases it once: explicitly, or when nothing references it any more.

    Every payload view of a decoded message references its lease (through the
    buffer it was decoded from, when the channel builds it so), so a view kept
    past the RuntimeData still holds the sample.
    """

    __slots__ = ("__weakref__", "on_release", "owner", "released")

    def __init__(self, owner: Any, on_release: Callable[[], None] | None) -> None:
        self.owner = owner
        self.on_release = on_release
        self.released = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        callback = self.on_release
        self.on_release = None
        try:
            if callback is not None:
                callback()
        finally:
            self.owner = None

    def __del__(self) -> None:
        if not self.released:
            with contextlib.suppress(Exception):  # never raise from a finalizer
                self.release()


class _KindConstructorOrValue:
    """``RuntimeData.text(...)`` builds a message; ``rd.text`` reads one.

    On the class the attribute is the constructor; on an instance it is the
    value (``rd.text`` is the str, ``rd.json()`` parses).
    """

    def __init__(self, constructor: str, instance_value: Callable[[RuntimeData], Any]) -> None:
        self._constructor = constructor
        self._instance_value = instance_value

    @overload
    def __get__(self, obj: None, owner: type[RuntimeData]) -> Callable[..., RuntimeData]: ...

    @overload
    def __get__(self, obj: RuntimeData, owner: type[RuntimeData] | None = None) -> Any: ...

    def __get__(self, obj: RuntimeData | None, owner: type[RuntimeData] | None = None) -> Any:
        if obj is None:
            assert owner is not None
            return getattr(owner, self._constructor)
        return self._instance_value(obj)


class RuntimeData:
    """One message of a pipeline: audio, video, text, a tensor, JSON or bytes.

    Common fields: ``kind``, ``sequence`` (u64, the producer's counter; a
    publisher stamps it when 0), ``session_id`` (16 bytes), ``timestamp_ns``
    (u64 CLOCK_MONOTONIC; stamped at send time when 0) and ``payload``:

    - audio: numpy array of shape ``(frames, channels)``, float32 or int16,
      with ``sample_rate``, ``channels`` and ``sample_format`` (``"f32"`` or
      ``"i16"``);
    - video: uint8 array of shape ``(h, w, c)`` for rgb24/bgr24/rgba32,
      ``(h, w)`` for gray8, 1-D for the planar yuv420p and nv12; with
      ``width``, ``height``, ``pixel_format``, ``frame_number``, ``fps``;
    - tensor: numpy array with ``dtype`` (wire name, e.g. ``"float32"``) and
      ``shape``;
    - text, json, binary: a memoryview of the bytes; text has ``language``.

    A decoded message's payload is a view of the buffer it was decoded from
    (for a channel: the shared memory sample, read-only). Release it with
    :meth:`release` or a ``with`` block when done; dropping every reference
    releases it too. ``port`` is the input port name, set by the runner.

    Example:
        >>> rd = RuntimeData.text("hello", language="en")
        >>> back = RuntimeData.decode(rd.encode())
        >>> back.text, back.language
        ('hello', 'en')
    """

    __slots__ = (
        "__weakref__",
        "_lease",
        "_text",
        "_value",
        "channels",
        "dtype",
        "fps",
        "frame_number",
        "height",
        "kind",
        "language",
        "payload",
        "pixel_format",
        "port",
        "sample_format",
        "sample_rate",
        "sequence",
        "session_id",
        "shape",
        "timestamp_ns",
        "width",
    )

    kind: Kind
    sequence: int
    session_id: bytes
    timestamp_ns: int
    payload: npt.NDArray[Any] | memoryview
    port: str | None
    sample_rate: int | None
    channels: int | None
    sample_format: str | None
    width: int | None
    height: int | None
    pixel_format: str | None
    frame_number: int
    fps: tuple[int, int]
    language: str | None
    dtype: str | None
    shape: tuple[int, ...] | None

    def __init__(
        self,
        kind: Kind,
        payload: npt.NDArray[Any] | memoryview,
        *,
        sequence: int = 0,
        session_id: bytes | str | uuid.UUID | None = None,
        timestamp_ns: int = 0,
        sample_rate: int | None = None,
        channels: int | None = None,
        sample_format: str | None = None,
        width: int | None = None,
        height: int | None = None,
        pixel_format: str | None = None,
        frame_number: int = 0,
        fps: tuple[int, int] = (0, 0),
        language: str | None = None,
        dtype: str | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> None:
        """Low-level constructor: stores the fields as given. Prefer the kind
        constructors (:meth:`audio`, :meth:`video`, ``RuntimeData.text``,
        :meth:`tensor`, ``RuntimeData.json``, :meth:`binary`); consistency is
        checked when encoding."""
        if kind not in _KIND_CODES:
            raise ValueError(f"unknown kind {kind!r}")
        self.kind = kind
        self.payload = payload
        self.sequence = sequence
        self.session_id = _session_bytes(session_id)
        self.timestamp_ns = timestamp_ns
        self.port = None
        self.sample_rate = sample_rate
        self.channels = channels
        self.sample_format = sample_format
        self.width = width
        self.height = height
        self.pixel_format = pixel_format
        self.frame_number = frame_number
        self.fps = fps
        self.language = language
        self.dtype = dtype
        self.shape = shape
        self._text: str | None = None
        self._value: Any = None
        self._lease: _Lease | None = None

    # -- constructors ------------------------------------------------------

    @classmethod
    def audio(
        cls,
        samples: npt.ArrayLike,
        sample_rate: int,
        channels: int | None = None,
        **common: Any,
    ) -> RuntimeData:
        """Interleaved PCM audio.

        Args:
            samples: float32 or int16 samples, 1-D (interleaved) or
                ``(frames, channels)``. Other float dtypes are converted to
                float32 (a copy).
            sample_rate: Samples per second per channel (> 0).
            channels: Channel count; defaults to ``samples.shape[1]`` for 2-D
                input, else 1.
            **common: ``sequence``, ``session_id``, ``timestamp_ns``.

        Example:
            >>> import numpy as np
            >>> rd = RuntimeData.audio(np.zeros(960, np.float32), 48000, channels=2)
            >>> rd.payload.shape, rd.sample_format
            ((480, 2), 'f32')
        """
        arr = np.asarray(samples)
        if arr.dtype.kind == "f" and arr.dtype.itemsize != 4:
            arr = arr.astype(np.float32)
        if arr.dtype.kind == "f":
            fmt = "f32"
        elif arr.dtype.kind == "i" and arr.dtype.itemsize == 2:
            fmt = "i16"
        else:
            raise TypeError(f"audio samples must be float32 or int16, not {arr.dtype}")
        if arr.ndim == 2:
            if channels is not None and channels != arr.shape[1]:
                raise ValueError(f"channels={channels} but samples have {arr.shape[1]} columns")
            channels = int(arr.shape[1])
        elif arr.ndim == 1:
            channels = 1 if channels is None else channels
            _check_u("channels", channels, 0xFFFF, 1)
            if arr.shape[0] % channels:
                raise ValueError(
                    f"{arr.shape[0]} samples are not a whole number of {channels}-channel frames"
                )
            arr = arr.reshape(-1, channels)
        else:
            raise ValueError(f"audio samples must be 1-D or 2-D, got {arr.ndim}-D")
        _check_u("sample_rate", sample_rate, _U32_MAX, 1)
        _check_u("channels", channels, 0xFFFF, 1)
        return cls(
            "audio",
            arr,
            sample_rate=int(sample_rate),
            channels=int(channels),
            sample_format=fmt,
            **common,
        )

    @classmethod
    def video(
        cls,
        frame: npt.ArrayLike | bytes | bytearray | memoryview,
        width: int,
        height: int,
        pixel_format: str = "rgb24",
        frame_number: int = 0,
        fps: tuple[int, int] = (0, 0),
        **common: Any,
    ) -> RuntimeData:
        """One raw video frame.

        Args:
            frame: uint8 pixels (any shape with the right element count) or
                bytes.
            width: Width in pixels (> 0).
            height: Height in pixels (> 0).
            pixel_format: ``rgb24``, ``bgr24``, ``rgba32``, ``gray8``,
                ``yuv420p`` or ``nv12``.
            frame_number: u64 frame counter.
            fps: ``(numerator, denominator)``; ``(0, 0)`` = unknown.
            **common: ``sequence``, ``session_id``, ``timestamp_ns``.

        Example:
            >>> import numpy as np
            >>> rd = RuntimeData.video(np.zeros((2, 4, 3), np.uint8), 4, 2)
            >>> rd.payload.shape, rd.pixel_format
            ((2, 4, 3), 'rgb24')
        """
        if pixel_format not in _PIXEL_FORMAT_CODES:
            raise ValueError(f"unknown pixel format {pixel_format!r}")
        _check_u("width", width, _U32_MAX, 1)
        _check_u("height", height, _U32_MAX, 1)
        _check_u("frame_number", frame_number, _U64_MAX)
        _check_u("fps numerator", fps[0], _U32_MAX)
        _check_u("fps denominator", fps[1], _U32_MAX)
        if isinstance(frame, (bytes, bytearray, memoryview)):
            arr = np.frombuffer(_byte_view(frame), dtype=_U1)
        else:
            arr = np.asarray(frame)
        if arr.dtype != _U1:
            raise TypeError(f"video frames must be uint8, not {arr.dtype}")
        want = _video_length(width, height, pixel_format)
        if arr.size != want:
            raise ValueError(
                f"{pixel_format} {width}x{height} needs {want} bytes, frame has {arr.size}"
            )
        shape = _video_shape(width, height, pixel_format)
        if arr.shape != shape:
            arr = arr.reshape(shape)
        return cls(
            "video",
            arr,
            width=int(width),
            height=int(height),
            pixel_format=pixel_format,
            frame_number=int(frame_number),
            fps=(int(fps[0]), int(fps[1])),
            **common,
        )

    @classmethod
    def from_text(cls, s: str, language: str | None = None, **common: Any) -> RuntimeData:
        """UTF-8 text; also reachable as ``RuntimeData.text(s, language)``.

        Args:
            s: The text.
            language: BCP 47 tag (ASCII, at most 16 bytes), or None.
            **common: ``sequence``, ``session_id``, ``timestamp_ns``.

        Example:
            >>> RuntimeData.text("olá", language="pt-BR").nbytes
            4
        """
        if not isinstance(s, str):
            raise TypeError(f"text must be a str, not {type(s).__name__}")
        language = language or None
        _check_language(language)
        rd = cls("text", memoryview(s.encode("utf-8")), language=language, **common)
        rd._text = s
        return rd

    @classmethod
    def tensor(cls, array: npt.ArrayLike, **common: Any) -> RuntimeData:
        """An n-dimensional array (ndim <= 8), sent C-contiguous little-endian.

        Args:
            array: Any numpy array (or array-like) of a supported dtype:
                float16/32/64, int8/16/32/64, uint8/16/32/64, bool.
            **common: ``sequence``, ``session_id``, ``timestamp_ns``.

        Example:
            >>> import numpy as np
            >>> RuntimeData.tensor(np.ones((2, 2), np.int64)).dtype
            'int64'
        """
        arr = np.asarray(array)
        name = _dtype_name(arr.dtype)
        if arr.ndim > _MAX_NDIM:
            raise ValueError(f"ndim {arr.ndim} is more than {_MAX_NDIM}")
        return cls("tensor", arr, dtype=name, shape=tuple(int(d) for d in arr.shape), **common)

    @classmethod
    def from_json(cls, obj: Any, **common: Any) -> RuntimeData:
        """A JSON value; also reachable as ``RuntimeData.json(obj)``.

        Serialized compactly (``separators=(",", ":")``, non-ASCII kept, NaN
        refused), as ``JSON.stringify`` does.

        Example:
            >>> bytes(RuntimeData.json({"a": [1, 2]}).payload)
            b'{"a":[1,2]}'
        """
        text = _json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        rd = cls("json", memoryview(text.encode("utf-8")), **common)
        rd._value = obj
        return rd

    @classmethod
    def binary(
        cls, data: bytes | bytearray | memoryview | npt.NDArray[Any], **common: Any
    ) -> RuntimeData:
        """Opaque bytes (any C-contiguous buffer; not copied).

        Example:
            >>> RuntimeData.binary(b"\\x00\\x01").nbytes
            2
        """
        return cls("binary", _byte_view(data), **common)

    text = _KindConstructorOrValue("from_text", lambda rd: rd.as_text())
    """``RuntimeData.text(s, language=None)`` builds a text message;
    ``rd.text`` is the decoded str of a text (or json) message."""

    json = _KindConstructorOrValue("from_json", lambda rd: rd.as_json)
    """``RuntimeData.json(obj)`` builds a json message; ``rd.json()`` returns
    the parsed value."""

    # -- accessors ---------------------------------------------------------

    @property
    def nbytes(self) -> int:
        """Payload length in bytes."""
        p = self.payload
        return p.nbytes

    @property
    def array(self) -> npt.NDArray[Any]:
        """The payload as a numpy array (a uint8 view for text/json/binary)."""
        p = self.payload
        if isinstance(p, np.ndarray):
            return p
        if len(p) == 0:
            return _readonly_empty(_U1, (0,))
        return np.frombuffer(p, dtype=_U1)

    def as_numpy(self) -> npt.NDArray[Any]:
        """Same as :attr:`array`."""
        return self.array

    def as_text(self) -> str:
        """The text of a text or json message."""
        if self._text is None:
            if self.kind not in ("text", "json"):
                raise TypeError(f"a {self.kind} message has no text")
            self._text = str(self.payload, "utf-8")  # type: ignore[arg-type]
        return self._text

    def as_json(self) -> Any:
        """The parsed value of a json message."""
        if self.kind != "json":
            raise TypeError(f"a {self.kind} message is not json")
        if self._value is None:
            self._value = _parse_json(self.as_text())
        return self._value

    def as_bytes(self) -> bytes:
        """A copy of the payload bytes, exactly as on the wire."""
        p = self.payload
        if isinstance(p, np.ndarray):
            wire = _wire_dtype(self)
            return np.ascontiguousarray(p, dtype=wire).tobytes()
        return bytes(p)

    @property
    def owner(self) -> Any:
        """What the payload views live in (the iceoryx2 sample), if any."""
        return None if self._lease is None else self._lease.owner

    @property
    def released(self) -> bool:
        """True once :meth:`release` ran."""
        return self._lease is not None and self._lease.released

    def release(self) -> None:
        """Gives the underlying sample back now. The payload views must not
        be used afterwards. Idempotent; a no-op for messages built locally."""
        if self._lease is not None:
            self._lease.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def copy(self) -> RuntimeData:
        """A copy that owns its payload (not tied to any sample)."""
        out = RuntimeData.decode(self.encode())
        out.port = self.port
        return out

    def __repr__(self) -> str:
        meta = {
            "audio": lambda: f"{self.sample_rate} Hz x{self.channels} {self.sample_format}",
            "video": lambda: f"{self.width}x{self.height} {self.pixel_format} #{self.frame_number}",
            "text": lambda: f"language={self.language!r}",
            "tensor": lambda: f"{self.dtype}{list(self.shape or ())}",
            "json": lambda: "",
            "binary": lambda: "",
        }[self.kind]()
        return f"RuntimeData({self.kind} seq={self.sequence} {self.nbytes} B {meta})".replace(
            " )", ")"
        )

    # -- encoding ----------------------------------------------------------

    def encoded_size(self) -> int:
        """Header plus payload length: the sample size to loan."""
        return HEADER_LEN + self.payload.nbytes

    def _header(self, sequence: int, timestamp_ns: int, payload_len: int) -> bytearray:
        _check_u("sequence", sequence, _U64_MAX)
        _check_u("timestamp_ns", timestamp_ns, _U64_MAX)
        session = _session_bytes(self.session_id)
        h = bytearray(HEADER_LEN)
        kind = self.kind
        _COMMON.pack_into(
            h,
            0,
            MAGIC,
            WIRE_VERSION,
            _KIND_CODES[kind],
            0,
            HEADER_LEN,
            0,
            payload_len,
            int(sequence),
            session,
            int(timestamp_ns),
        )
        if kind == "audio":
            fmt = self.sample_format or ""
            if fmt not in _SAMPLE_FORMAT_CODES:
                raise ValueError(f"unknown sample format {fmt!r}")
            rate, ch = self.sample_rate or 0, self.channels or 0
            _check_u("sample_rate", rate, _U32_MAX, 1)
            _check_u("channels", ch, 0xFFFF, 1)
            frame = ch * _SAMPLE_DTYPES[fmt].itemsize
            if payload_len % frame:
                raise ValueError(
                    f"payload of {payload_len} bytes is not whole {ch}-channel {fmt} frames"
                )
            struct.pack_into("<IHB", h, 56, rate, ch, _SAMPLE_FORMAT_CODES[fmt])
        elif kind == "video":
            pf = self.pixel_format or ""
            if pf not in _PIXEL_FORMAT_CODES:
                raise ValueError(f"unknown pixel format {pf!r}")
            w, hh = self.width or 0, self.height or 0
            _check_u("width", w, _U32_MAX, 1)
            _check_u("height", hh, _U32_MAX, 1)
            _check_u("frame_number", self.frame_number, _U64_MAX)
            _check_u("fps numerator", self.fps[0], _U32_MAX)
            _check_u("fps denominator", self.fps[1], _U32_MAX)
            want = _video_length(w, hh, pf)
            if want != payload_len:
                raise ValueError(f"{pf} {w}x{hh} needs {want} bytes, payload has {payload_len}")
            struct.pack_into("<IIB", h, 56, w, hh, _PIXEL_FORMAT_CODES[pf])
            struct.pack_into("<QII", h, 72, self.frame_number, self.fps[0], self.fps[1])
        elif kind == "text":
            _check_language(self.language)
            if self.language:
                lang = self.language.encode("ascii")
                h[_LANGUAGE_OFFSET : _LANGUAGE_OFFSET + len(lang)] = lang
        elif kind == "tensor":
            name = self.dtype or ""
            if name not in _DTYPE_CODES:
                raise ValueError(f"unknown dtype {name!r}")
            shape = tuple(self.shape or ())
            if len(shape) > _MAX_NDIM:
                raise ValueError(f"ndim {len(shape)} is more than {_MAX_NDIM}")
            count = 1
            for d in shape:
                _check_u("shape entry", d, _SAFE_INT_MAX)
                count *= int(d)
            want = count * _WIRE_DTYPES[name].itemsize
            if want != payload_len:
                raise ValueError(
                    f"{name} shape {list(shape)} needs {want} bytes, payload has {payload_len}"
                )
            struct.pack_into("<BB", h, 56, _DTYPE_CODES[name], len(shape))
            struct.pack_into(f"<{len(shape)}Q", h, 64, *shape)
        return h

    def encode_into(
        self,
        buf: memoryview | bytearray | npt.NDArray[Any],
        *,
        sequence: int | None = None,
        timestamp_ns: int | None = None,
    ) -> None:
        """Writes the message at the start of ``buf`` (at least
        :meth:`encoded_size` writable bytes): the header, then the payload
        with one memmove.

        Args:
            buf: The destination, e.g. a loaned sample.
            sequence: Written instead of ``self.sequence`` when given.
            timestamp_ns: Written instead of ``self.timestamp_ns`` when given.

        Example:
            >>> out = bytearray(RuntimeData.binary(b"abc").encoded_size())
            >>> RuntimeData.binary(b"abc").encode_into(out)
            >>> bytes(out[128:])
            b'abc'
        """
        mv = _byte_view(buf)
        if mv.readonly:
            raise ValueError("the destination buffer is read-only")
        p = self.payload
        n = p.nbytes
        if len(mv) < HEADER_LEN + n:
            raise ValueError(
                f"the destination has {len(mv)} bytes, the message needs {HEADER_LEN + n}"
            )
        header = self._header(
            self.sequence if sequence is None else sequence,
            self.timestamp_ns if timestamp_ns is None else timestamp_ns,
            n,
        )
        mv[:HEADER_LEN] = header
        if n == 0:
            return
        if isinstance(p, np.ndarray):
            wire = _wire_dtype(self)
            dst = np.frombuffer(mv, dtype=wire, count=p.size, offset=HEADER_LEN).reshape(p.shape)
            # One strided-or-contiguous copy done by numpy (a memmove when the
            # source is contiguous little-endian); never a Python loop.
            np.copyto(dst, p, casting="equiv")
        else:
            mv[HEADER_LEN : HEADER_LEN + n] = _byte_view(p)

    def _allocation_header(self) -> tuple[int, bytearray]:
        """Payload length and header of a message shaped like this one, to be
        filled in place. Text and json cannot be: their payload must decode."""
        if self.kind in ("text", "json"):
            raise ValueError(f"cannot allocate {self.kind} in place; build it and publish()")
        n = self.payload.nbytes
        return n, self._header(0, 0, n)

    def _blank(self) -> RuntimeData:
        """A new in-memory message shaped like this one, payload zeroed (what
        an allocation gives where there is no channel)."""
        n, header = self._allocation_header()
        buf = bytearray(HEADER_LEN + n)
        buf[:HEADER_LEN] = header
        return RuntimeData.decode(buf)

    def encode(self) -> bytes:
        """The encoded message as new bytes (for tests and files).

        Example:
            >>> RuntimeData.binary(b"x").encode()[:4]
            b'RMDT'
        """
        out = bytearray(self.encoded_size())
        self.encode_into(out)
        return bytes(out)

    # -- decoding ----------------------------------------------------------

    @classmethod
    def decode(
        cls,
        buf: bytes | bytearray | memoryview | npt.NDArray[Any],
        owner: Any = None,
        on_release: Callable[[], None] | None = None,
    ) -> RuntimeData:
        """Decodes a whole message without copying its payload.

        Checks, in order: ``too_short``, ``bad_magic``, ``bad_version``,
        ``bad_header_len``, ``length_mismatch``, ``unknown_type``,
        ``bad_metadata`` (including invalid UTF-8 text and unparsable JSON).
        Nothing outside ``buf`` is read.

        Args:
            buf: The whole message (header and payload). The payload views
                reference it; a read-only buffer gives read-only arrays.
            owner: Kept alive as long as the message (e.g. the iceoryx2 sample).
            on_release: Called once, by :meth:`release`, the context manager
                exit, or when the message and its views are garbage.

        Raises:
            WireFormatError: With the reason of the first rule broken.

        Example:
            >>> RuntimeData.decode(RuntimeData.text("hi").encode()).text
            'hi'
        """
        mv = _byte_view(buf)
        kind, sequence, session, timestamp_ns = _decode_header(mv)
        rd = cls.__new__(cls)
        _init_decoded(rd, kind, sequence, session, timestamp_ns)
        _DECODERS[kind](rd, mv, len(mv) - HEADER_LEN)
        if owner is not None or on_release is not None:
            rd._lease = _Lease(owner, on_release)
        return rd


def _decode_header(mv: memoryview) -> tuple[Kind, int, bytes, int]:
    """Checks the common header (``too_short`` to ``unknown_type``, in
    order); returns the kind, sequence, session id and timestamp."""
    size = len(mv)
    if size < HEADER_LEN:
        raise _fail("too_short", f"sample has {size} bytes, the header needs {HEADER_LEN}")
    (
        magic,
        version,
        type_code,
        _flags,
        header_len,
        _reserved,
        payload_len,
        sequence,
        session,
        timestamp_ns,
    ) = _COMMON.unpack_from(mv, 0)
    if magic != MAGIC:
        raise _fail("bad_magic", f"magic is 0x{magic:08x}, expected 0x{MAGIC:08x}")
    if version != WIRE_VERSION:
        raise _fail("bad_version", f"version is {version}, expected {WIRE_VERSION}")
    if header_len != HEADER_LEN:
        raise _fail("bad_header_len", f"header_len is {header_len}, expected {HEADER_LEN}")
    if payload_len != size - HEADER_LEN:
        raise _fail(
            "length_mismatch",
            f"header_len + payload_len = {HEADER_LEN + payload_len}, sample has {size} bytes",
        )
    kind = _KINDS.get(type_code)
    if kind is None:
        raise _fail("unknown_type", f"type is {type_code}, expected 1..6")
    return kind, sequence, session, timestamp_ns


def _init_decoded(
    rd: RuntimeData, kind: Kind, sequence: int, session: bytes, timestamp_ns: int
) -> None:
    """Sets every attribute of a message built without ``__init__``."""
    rd.kind = kind
    rd.sequence = sequence
    rd.session_id = session
    rd.timestamp_ns = timestamp_ns
    rd.port = None
    rd.sample_rate = rd.channels = rd.width = rd.height = None
    rd.sample_format = rd.pixel_format = rd.language = rd.dtype = None
    rd.shape = None
    rd.frame_number = 0
    rd.fps = (0, 0)
    rd._text = None
    rd._value = None
    rd._lease = None


def _decode_audio(rd: RuntimeData, mv: memoryview, n: int) -> None:
    rate, channels, fmt_code = struct.unpack_from("<IHB", mv, 56)
    fmt = _SAMPLE_FORMATS.get(fmt_code)
    if fmt is None:
        raise _fail("bad_metadata", f"unknown sample format {fmt_code}")
    if rate == 0:
        raise _fail("bad_metadata", "sample rate is 0")
    if channels == 0:
        raise _fail("bad_metadata", "channel count is 0")
    dtype = _SAMPLE_DTYPES[fmt]
    frame = channels * dtype.itemsize
    if n % frame:
        raise _fail(
            "bad_metadata",
            f"payload length {n} is not a multiple of channels * sample size ({frame})",
        )
    rd.sample_rate, rd.channels, rd.sample_format = rate, channels, fmt
    rd.payload = _view(mv, dtype, n // dtype.itemsize, (n // frame, channels))


def _decode_video(rd: RuntimeData, mv: memoryview, n: int) -> None:
    width, height, pf_code = struct.unpack_from("<IIB", mv, 56)
    frame_number, fps_num, fps_den = struct.unpack_from("<QII", mv, 72)
    pf = _PIXEL_FORMATS.get(pf_code)
    if pf is None:
        raise _fail("bad_metadata", f"unknown pixel format {pf_code}")
    if width == 0 or height == 0:
        raise _fail("bad_metadata", f"size {width}x{height} has a zero side")
    want = _video_length(width, height, pf)
    if want != n:
        raise _fail(
            "bad_metadata",
            f"{pf} {width}x{height} needs {want} bytes, payload has {n}",
        )
    rd.width, rd.height, rd.pixel_format = width, height, pf
    rd.frame_number, rd.fps = frame_number, (fps_num, fps_den)
    rd.payload = _view(mv, _U1, n, _video_shape(width, height, pf))


def _decode_text(rd: RuntimeData, mv: memoryview, _n: int) -> None:
    raw = bytes(mv[_LANGUAGE_OFFSET : _LANGUAGE_OFFSET + _LANGUAGE_MAX])
    end = raw.find(b"\0")
    tag = raw if end < 0 else raw[:end]
    if not tag.isascii():
        raise _fail("bad_metadata", f"language tag bytes {tag.hex()} are not ASCII")
    rd.language = tag.decode("ascii") or None
    payload = mv[HEADER_LEN:]
    try:
        rd._text = str(payload, "utf-8")
    except UnicodeDecodeError as e:
        raise _fail("bad_metadata", f"text is not valid UTF-8 ({e.reason})") from e
    rd.payload = payload


def _decode_tensor(rd: RuntimeData, mv: memoryview, n: int) -> None:
    dtype_code, ndim = struct.unpack_from("<BB", mv, 56)
    name = _DTYPES.get(dtype_code)
    if name is None:
        raise _fail("bad_metadata", f"unknown dtype {dtype_code}")
    if ndim > _MAX_NDIM:
        raise _fail("bad_metadata", f"ndim {ndim} is more than {_MAX_NDIM}")
    shape = struct.unpack_from(f"<{ndim}Q", mv, 64)
    count = 1
    for d in shape:
        count *= d  # exact: Python ints do not wrap
    dtype = _WIRE_DTYPES[name]
    if count * dtype.itemsize != n:
        raise _fail(
            "bad_metadata",
            f"{name} shape {list(shape)} needs {count * dtype.itemsize} bytes, payload has {n}",
        )
    if any(d > _SAFE_INT_MAX for d in shape):
        raise _fail("bad_metadata", "shape entry above 2^53-1")
    rd.dtype, rd.shape = name, tuple(shape)
    rd.payload = _view(mv, dtype, count, tuple(shape))


def _decode_json(rd: RuntimeData, mv: memoryview, _n: int) -> None:
    payload = mv[HEADER_LEN:]
    try:
        text = str(payload, "utf-8")
        rd._value = _parse_json(text)
    except (UnicodeDecodeError, ValueError) as e:
        raise _fail("bad_metadata", f"payload is not UTF-8 JSON ({e})") from e
    rd._text = text
    rd.payload = payload


def _decode_binary(rd: RuntimeData, mv: memoryview, _n: int) -> None:
    rd.payload = mv[HEADER_LEN:]


_DECODERS: dict[Kind, Callable[[RuntimeData, memoryview, int], None]] = {
    "audio": _decode_audio,
    "video": _decode_video,
    "text": _decode_text,
    "tensor": _decode_tensor,
    "json": _decode_json,
    "binary": _decode_binary,
}
"""The payload and metadata checks of each kind (``bad_metadata``)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(text: str) -> Any:
    # NaN/Infinity are not JSON (JSON.parse refuses them too).
    return _json.loads(text, parse_constant=_reject_constant)


def _wire_dtype(rd: RuntimeData) -> np.dtype[Any]:
    if rd.kind == "audio":
        return _SAMPLE_DTYPES[rd.sample_format or ""]
    if rd.kind == "tensor":
        return _WIRE_DTYPES[rd.dtype or ""]
    return _U1
