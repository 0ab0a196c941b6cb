"""Nodes of the video pipeline (examples/video_faces/).

Import with ``modules: ["video_nodes"], modulePaths: ["examples/video_faces"]``.
Both types register in every environment (the module itself imports only
numpy); ``face_detect`` imports MediaPipe in ``initialize()``, so it must run in
an environment that has it (``env = "mediapipe"``: numpy 1, protobuf 4), while
``draw_boxes`` runs anywhere (the default venv, numpy 2).

- ``face_detect``: MediaPipe's packaged face detector on each rgb24 frame;
  outputs the detections of that frame as JSON ``{"frame", "width", "height",
  "faces": [{"x", "y", "w", "h", "score"}], "detect_ms"}`` (pixels). Config:
  ``model`` (``"full"``, the default: full-range model, faces at any distance;
  ``"short"``: faces within ~2 m), ``min_confidence`` (default 0.75: on the
  test scene the astronaut scores 0.84-0.95 and the full-range model's best
  false positives, on scikit-image's coffee cup and coins, 0.66), and
  ``shard``/``shards`` (default 0/1): the node handles only frames whose number
  is ``shard`` modulo ``shards``, so several detectors can share the frames.
- ``draw_boxes``: inputs ``frame`` and ``detections``; for every frame it
  allocates the output frame in shared memory (``self.allocate``), copies the
  pixels into it and draws the boxes of the newest detections it has received
  for a frame at or before this one (a detector works beside it, not before it,
  so the boxes of frame N usually come from frame N or N-1; the frame number
  they come from is in ``last_drawn``). Config: ``color`` (default
  ``[0, 255, 0]``), ``thickness`` (default 4).

With ``trace: true`` in either node's config, it reports per frame its Python
allocation peak since the previous input (tracemalloc) and whether the input
(and output) payloads lie in shared memory: in the detections JSON, and on the
drawer's ``stats`` output port.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy as np
import numpy.typing as npt
from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData

_MODELS = {"short": 0, "full": 1}


def shm_ranges() -> list[tuple[int, int]]:
    """The address ranges of this process's shared-memory mappings (/dev/shm)."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if "/dev/shm/" in line:
                lo, hi = line.split(" ", 1)[0].split("-")
                ranges.append((int(lo, 16), int(hi, 16)))
    return ranges


def in_shm(array: npt.NDArray[Any]) -> bool:
    """Whether all of ``array``'s bytes lie in one shared-memory mapping."""
    lo = array.ctypes.data
    hi = lo + array.nbytes
    return any(a <= lo and hi <= b for a, b in shm_ranges())


class _Trace:
    """With ``trace: true`` in a node's config: the Python allocation peak
    between two inputs (tracemalloc; it sees numpy's buffers too), so a frame
    copied anywhere in the node's process (receive, process, publish) shows."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self.base = 0
        if on:
            tracemalloc.start()

    def peak(self) -> int:
        """Bytes allocated at the peak since the last call, above what was
        allocated then."""
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        grew = peak - self.base
        self.base, _ = tracemalloc.get_traced_memory()
        return grew


@register_node("face_detect")
class FaceDetect(MultiprocessNode):
    """MediaPipe face detection: rgb24 frames in, JSON detections out."""

    async def initialize(self) -> None:
        model = str(self.config.get("model", "full"))
        if model not in _MODELS:
            raise ValueError(
                f'face_detect: model must be "short" or "full", got {model!r}'
            )
        self.shard = int(self.config.get("shard", 0))
        self.shards = int(self.config.get("shards", 1))
        if self.shards < 1 or not 0 <= self.shard < self.shards:
            raise ValueError(
                f"face_detect: need 0 <= shard < shards, got {self.shard}/{self.shards}"
            )
        self.report_progress(0.1, "importing mediapipe")
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as e:
            raise RuntimeError(
                "face_detect needs MediaPipe: run the node in the mediapipe environment "
                '(env = "mediapipe"; `deno task setup --examples=mediapipe` builds it)'
            ) from e
        self.report_progress(0.6, f"loading the {model}-range face model")
        self.min_confidence = float(self.config.get("min_confidence", 0.75))
        self.detector = face_detection.FaceDetection(
            model_selection=_MODELS[model],
            min_detection_confidence=self.min_confidence,
        )
        # The first inference builds the graph: do it now, not on frame 0.
        self.detector.process(np.zeros((64, 64, 3), np.uint8))
        self.trace = _Trace(bool(self.config.get("trace", False)))
        self.report_progress(1.0, "face model ready")

    def process(self, data: RuntimeData) -> RuntimeData | None:
        if data.kind != "video" or data.pixel_format != "rgb24":
            raise ValueError(f"face_detect takes rgb24 video frames, got {data!r}")
        if data.frame_number % self.shards != self.shard:
            return None
        t0 = time.perf_counter()
        # The payload is the shared-memory frame itself (no copy).
        result = self.detector.process(data.payload)
        detect_ms = (time.perf_counter() - t0) * 1000.0
        faces: list[dict[str, Any]] = []
        for d in result.detections or []:
            # The full-range model lets some below the threshold through.
            if float(d.score[0]) < self.min_confidence:
                continue
            box = d.location_data.relative_bounding_box
            x = max(0, round(box.xmin * data.width))
            y = max(0, round(box.ymin * data.height))
            faces.append(
                {
                    "x": x,
                    "y": y,
                    "w": min(data.width - x, round(box.width * data.width)),
                    "h": min(data.height - y, round(box.height * data.height)),
                    "score": round(float(d.score[0]), 4),
                }
            )
        out: dict[str, Any] = {
            "frame": data.frame_number,
            "width": data.width,
            "height": data.height,
            "faces": faces,
            "detect_ms": round(detect_ms, 3),
        }
        if self.trace.on:
            out["alloc_peak_bytes"] = self.trace.peak()
            out["input_in_shm"] = in_shm(data.payload)
        return RuntimeData.from_json(out)


def draw_box(
    pixels: npt.NDArray[np.uint8],
    face: dict[str, Any],
    color: npt.NDArray[np.uint8],
    thickness: int,
) -> None:
    """Draws one rectangle outline into an (h, w, 3) frame, in place."""
    h, w = pixels.shape[:2]
    x0, y0 = max(0, int(face["x"])), max(0, int(face["y"]))
    x1, y1 = min(w, x0 + int(face["w"])), min(h, y0 + int(face["h"]))
    if x1 <= x0 or y1 <= y0:
        return
    t = max(1, thickness)
    pixels[y0 : min(y1, y0 + t), x0:x1] = color
    pixels[max(y0, y1 - t) : y1, x0:x1] = color
    pixels[y0:y1, x0 : min(x1, x0 + t)] = color
    pixels[y0:y1, max(x0, x1 - t) : x1] = color


@register_node("draw_boxes")
class DrawBoxes(MultiprocessNode):
    """Frames and detections in; each frame with the newest boxes drawn out."""

    # Detections first: the runner polls ports in this order, so the boxes
    # of a frame that has arrived are taken before the next frame is drawn.
    inputs = ("detections", "frame")
    outputs = ("out", "stats")

    async def initialize(self) -> None:
        self.color = np.array(self.config.get("color", [0, 255, 0]), dtype=np.uint8)
        self.thickness = int(self.config.get("thickness", 4))
        self.faces: list[dict[str, Any]] = []
        self.last_frame = -1
        self.last_drawn = -1
        self.trace = _Trace(bool(self.config.get("trace", False)))

    def process(self, data: RuntimeData) -> RuntimeData | dict[str, RuntimeData] | None:
        if data.port == "detections":
            d = data.as_json()
            # Several detectors may answer out of order: keep the newest.
            if int(d["frame"]) > self.last_frame:
                self.last_frame = int(d["frame"])
                self.faces = list(d["faces"])
            return None
        if data.kind != "video" or data.pixel_format not in ("rgb24", "bgr24"):
            raise ValueError(f"draw_boxes takes rgb24 or bgr24 frames, got {data!r}")
        out = self.allocate("out", like=data)  # shared memory, sent in place
        np.copyto(out.payload, data.payload)
        out.frame_number = data.frame_number
        out.timestamp_ns = data.timestamp_ns
        if self.last_frame <= data.frame_number:
            for face in self.faces:
                draw_box(out.payload, face, self.color, self.thickness)
            self.last_drawn = self.last_frame
        if not self.trace.on:
            return out
        stats = {
            "frame": data.frame_number,
            "drawn_from": self.last_drawn,
            "alloc_peak_bytes": self.trace.peak(),
            "input_in_shm": in_shm(data.payload),
            "output_in_shm": in_shm(out.payload),
        }
        return {"out": out, "stats": RuntimeData.from_json(stats)}
