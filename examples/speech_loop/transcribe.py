"""Transcribes WAV files with the loop's ASR (whisper tiny.en, packaged).

Usage: ``python transcribe.py FILE.wav ...``; prints one JSON line
``{"texts": [...]}``. The tests use it to check that a reply WAV holds speech.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import speech_models as models


def main() -> int:
    asr = models.WhisperAsr()
    texts = [asr.transcribe(models.wav_to_16k(Path(f).read_bytes())) for f in sys.argv[1:]]
    print(json.dumps({"texts": texts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
