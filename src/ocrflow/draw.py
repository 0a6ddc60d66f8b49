"""OCR result visualisation: the PaddleX "General OCR" side-by-side picture.

Left half: the input blended 50% with every box filled in a random colour.
Right half: white canvas with each recognised text drawn inside its box and
the box outlined in the same colour. Chinese needs a CJK font; see find_font.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_ENV = "OCRFLOW_FONT"
# Files installed by Debian/Ubuntu font packages, best coverage first.
KNOWN_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # fonts-noto-cjk
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",  # fonts-arphic-uming
    "/usr/share/fonts/truetype/arphic/ukai.ttc",  # fonts-arphic-ukai
)

FontT = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _covers_cjk(path: str) -> bool:
    """True if the font has real glyphs for CJK: two distinct hanzi must render
    differently (a font without them draws the same .notdef box, or nothing)."""
    try:
        font = ImageFont.truetype(path, 32)
    except OSError:
        return False
    a, b = (_render(ch, font) for ch in "中国")
    return any(a) and a != b


def _render(ch: str, font: FontT) -> bytes:
    img = Image.new("L", (48, 48))
    ImageDraw.Draw(img).text((0, 0), ch, fill=255, font=font)
    return img.tobytes()


@lru_cache(maxsize=1)
def _fc_match_cjk() -> str | None:
    # Cached: spawning fc-match on every draw would be slow, and fonts rarely change.
    if shutil.which("fc-match") is None:
        return None
    # ':lang=zh' alone can match DejaVu (fontconfig has no plain "zh" orthography).
    for lang in ("zh-cn", "zh"):
        try:
            out = subprocess.run(
                ["fc-match", "-f", "%{file}", f":lang={lang}"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        # fc-match always answers something, so verify real CJK coverage.
        if out and os.path.isfile(out) and _covers_cjk(out):
            return out
    return None


def find_font(path: str | None = None) -> str | None:
    """Font file to draw with: explicit path, $OCRFLOW_FONT, a known Debian CJK
    font, then fontconfig. None if no CJK font is available.

    Raises FileNotFoundError if an explicitly requested font is missing, since
    silently falling back would hide a configuration mistake."""
    for origin, candidate in (
        ("font_path", path),
        (FONT_ENV, os.environ.get(FONT_ENV)),
    ):
        if candidate:
            if not os.path.isfile(candidate):
                raise FileNotFoundError(f"{origin}: font file not found: {candidate}")
            return candidate
    for known in KNOWN_CJK_FONTS:
        if os.path.isfile(known):
            return known
    return _fc_match_cjk()


@lru_cache(maxsize=256)
def _load_font(path: str | None, size: int) -> FontT:
    size = max(1, size)
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size, encoding="utf-8")


@lru_cache(maxsize=1)
def _warn_no_cjk_font() -> None:
    # lru_cache makes this fire once per process, not once per image.
    warnings.warn(
        "No CJK font found: Chinese text will render as boxes. Install one "
        "(apt-get install fonts-wqy-microhei) or set OCRFLOW_FONT=/path/to/font.ttf",
        stacklevel=3,
    )


def _text_tile(txt: str, w: int, h: int, font_path: str | None) -> Image.Image:
    """White w x h tile with txt in black, sized to fit (PaddleX create_font)."""
    tile = Image.new("RGB", (w, h), (255, 255, 255))
    if not txt:
        return tile
    draw = ImageDraw.Draw(tile)
    if h > 2 * w and h > 30:  # vertical text: one character per line
        chars = [c for c in txt if not c.isspace()] or [txt[0]]
        size = max(1, min(int(w * 0.8), h // len(chars)))
        font = _load_font(font_path, size)
        for i, ch in enumerate(chars):
            draw.text(
                ((w - font.getlength(ch)) / 2, i * size), ch, fill=(0, 0, 0), font=font
            )
        return tile
    size = int(h * 0.8)
    font = _load_font(font_path, size)
    length = font.getlength(txt)
    if length > w:  # proportional shrink, then step down for hinting rounding
        size = int(size * w / length)
        font = _load_font(font_path, size)
        while size > 1 and font.getlength(txt) > w:
            size -= 1
            font = _load_font(font_path, size)
    draw.text((0, 0), txt, fill=(0, 0, 0), font=font)
    return tile


def draw_ocr(
    image: np.ndarray,
    polys: np.ndarray | Sequence,
    texts: Sequence[str],
    font_path: str | None = None,
) -> np.ndarray:
    """Side-by-side OCR visualisation. image: BGR uint8 HxWx3; polys: N x 4 x 2
    quads (clockwise from top-left); texts: N strings. Returns BGR H x 2W x 3."""
    quads = np.asarray(polys, dtype=np.float32).reshape(-1, 4, 2)
    if len(quads) != len(texts):
        raise ValueError(f"{len(quads)} boxes but {len(texts)} texts")
    font_path = find_font(font_path)
    if font_path is None:
        _warn_no_cjk_font()

    h, w = image.shape[:2]
    # Work in RGB throughout (PIL colours), convert back to BGR at the end.
    rgb = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    left = rgb.copy()
    left_draw = ImageDraw.Draw(left)
    right = np.full((h, w, 3), 255, dtype=np.uint8)
    rng = random.Random(0)  # deterministic colours, same sequence as PaddleX

    for quad, txt in zip(quads, texts):
        color = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
        pts = np.round(quad).astype(np.int32)
        left_draw.polygon([tuple(p) for p in pts.tolist()], fill=color)
        box_w = int(np.linalg.norm(quad[0] - quad[1]))
        box_h = int(np.linalg.norm(quad[0] - quad[3]))
        # Work in the box's bounding rectangle only: the warped text and the outline never leave it,
        # and white is neutral for the AND, so the rest of the canvas needs no per-box pass.
        corners = np.vstack([quad, pts])
        x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [w, h])
        x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 1, 0, [w, h])
        if x1 <= x0 or y1 <= y0:
            continue
        tile = np.full((y1 - y0, x1 - x0, 3), 255, dtype=np.uint8)
        # Zero-area quads give a singular transform; draw only their outline.
        if txt and box_w >= 1 and box_h >= 1 and abs(cv2.contourArea(quad)) >= 1:
            src = np.float32([[0, 0], [box_w, 0], [box_w, box_h], [0, box_h]])
            m = cv2.getPerspectiveTransform(src, quad)
            if np.all(np.isfinite(m)) and abs(np.linalg.det(m)) > 1e-9:
                shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64)
                tile = cv2.warpPerspective(
                    np.asarray(_text_tile(txt, box_w, box_h, font_path)),
                    shift @ m,
                    (x1 - x0, y1 - y0),
                    flags=cv2.INTER_NEAREST,
                    borderMode=cv2.BORDER_CONSTANT,
                    borderValue=(255, 255, 255),
                )
        cv2.polylines(tile, [(pts - [x0, y0]).reshape(-1, 1, 2).astype(np.int32)], True, color, 1)
        region = right[y0:y1, x0:x1]
        cv2.bitwise_and(region, tile, dst=region)

    show = np.empty((h, 2 * w, 3), dtype=np.uint8)
    show[:, :w] = np.asarray(Image.blend(rgb, left, 0.5))
    show[:, w:] = right
    return cv2.cvtColor(show, cv2.COLOR_RGB2BGR)
