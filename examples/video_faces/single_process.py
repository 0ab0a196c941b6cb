"""The video pipeline's work in one Python process, in turn (the baseline of
``deno task bench:video``): per frame, render the same moving scene
(scikit-image's astronaut sliding over the same background), run the same
MediaPipe detector, draw the boxes into an output frame. Prints one JSON line:
``{"frames", "seconds", "fps", "latency_ms": [...], "model_ms": [...],
"faces": <frames with a face>, "cpu_ms": <CPU time of the loop>}``; latency is from the start of a frame's
rendering to the end of its drawing.

Run it in the mediapipe environment::

    .venvs/mediapipe/bin/python examples/video_faces/single_process.py --seconds 10
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).parent))
from video_nodes import draw_box

WIDTH, HEIGHT, PERIOD = 1280, 720, 120


def _sample(name: str) -> npt.NDArray[np.uint8]:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-image is not installed in this environment")
    path = Path(spec.submodule_search_locations[0]) / "data" / name
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    w = round(rgb.shape[1] * HEIGHT / rgb.shape[0])
    return np.ascontiguousarray(
        cv2.resize(rgb, (w, HEIGHT), interpolation=cv2.INTER_LINEAR)
    )


def _background() -> npt.NDArray[np.uint8]:
    """The same background as scene.ts: a colour ramp with a soft grid."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    grid = np.where((x % 80 < 2) | (y % 80 < 2), 30, 0)
    bg = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    bg[..., 0] = 30 + np.round(60 * x / WIDTH) + grid
    bg[..., 1] = 70 + np.round(50 * y / HEIGHT) + grid
    bg[..., 2] = 110 + grid
    return bg


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument(
        "--frames", type=int, default=0, help="stop after this many (0: --seconds)"
    )
    args = ap.parse_args()

    from mediapipe.python.solutions import face_detection

    detector = face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=0.5
    )
    detector.process(np.zeros((64, 64, 3), np.uint8))
    bg, sprite = _background(), _sample("astronaut.png")
    free = WIDTH - sprite.shape[1]
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    out = np.empty_like(frame)
    color = np.array([0, 255, 0], np.uint8)
    latency: list[float] = []
    model: list[float] = []
    with_face = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    until = start + args.seconds
    n = 0
    while (n < args.frames) if args.frames else (time.perf_counter() < until):
        t0 = time.perf_counter()
        # Source: the scene (what Deno renders into shared memory).
        np.copyto(frame, bg)
        x = round(free * (0.5 - 0.5 * math.cos(2 * math.pi * n / PERIOD)))
        frame[:, x : x + sprite.shape[1]] = sprite
        # Detect.
        t1 = time.perf_counter()
        result = detector.process(frame)
        model.append((time.perf_counter() - t1) * 1000.0)
        faces = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            faces.append(
                {
                    "x": round(b.xmin * WIDTH),
                    "y": round(b.ymin * HEIGHT),
                    "w": round(b.width * WIDTH),
                    "h": round(b.height * HEIGHT),
                }
            )
        with_face += bool(faces)
        # Draw into the output frame.
        np.copyto(out, frame)
        for f in faces:
            draw_box(out, f, color, 4)
        latency.append((time.perf_counter() - t0) * 1000.0)
        n += 1
    seconds = time.perf_counter() - start
    cpu_ms = (time.process_time() - cpu_start) * 1000.0
    print(
        json.dumps(
            {
                "frames": n,
                "seconds": seconds,
                "fps": n / seconds,
                "latency_ms": latency,
                "model_ms": model,
                "faces": with_face,
                "cpu_ms": cpu_ms,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
