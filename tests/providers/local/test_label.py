"""The text banner: an emulated avatar says so in its picture, readably, at any size."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from avatarkit_providers.local.label import GLYPH_HEIGHT, GLYPH_WIDTH, GLYPHS, TextBanner
from avatarkit_providers.local.video import FaceVideoGenerator

LABEL = "runway (emulated)"


def speech(seconds: float = 0.5, rate: int = 16000) -> NDArray[np.float32]:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def frames(size: int, label: str | None) -> list[NDArray[np.uint8]]:
    gen = FaceVideoGenerator(width=size, height=size, fps=30, label=label)
    return [rgba for rgba, _ in gen.render_offline(speech())]


def decode(rgba: NDArray[np.uint8], banner: TextBanner) -> list[str]:
    """Read the banner's text back from the frame's pixels: each character cell of each
    line is matched against every glyph of the font."""
    ink = (rgba[: banner.height, :, :3] == 255).all(axis=2)
    s, width = banner.scale, rgba.shape[1]
    lines = []
    for i, line in enumerate(banner.lines):
        y = s + i * (GLYPH_HEIGHT + 2) * s + s
        x0 = (width - (len(line) * (GLYPH_WIDTH + 1) - 1) * s) // 2
        chars = []
        for k in range(len(line)):
            x = x0 + k * (GLYPH_WIDTH + 1) * s
            cell = ink[y : y + GLYPH_HEIGHT * s : s, x : x + GLYPH_WIDTH * s : s]
            (char,) = [c for c, bitmap in GLYPHS.items() if np.array_equal(cell, bitmap)]
            chars.append(char)
        lines.append("".join(chars))
    return lines


def test_every_glyph_is_distinct_so_text_reads_back_unambiguously() -> None:
    bitmaps = {bitmap.tobytes() for bitmap in GLYPHS.values()}
    assert len(bitmaps) == len(GLYPHS)
    assert all(bitmap.shape == (GLYPH_HEIGHT, GLYPH_WIDTH) for bitmap in GLYPHS.values())
    text = "abcdefghijklmnopqrstuvwxyz 0123456789 ()-."
    banner = TextBanner(text, 1024, 256)
    rgba = banner.draw(np.zeros((256, 1024, 4), np.uint8))
    assert decode(rgba, banner) == [text]
    # nothing but the banner's own text pixels is white
    assert np.array_equal((rgba[: banner.height, :, :3] == 255).all(axis=2), banner.mask)


@pytest.mark.parametrize("size", [64, 128, 256, 512, 1024])
def test_the_label_reads_back_from_the_frames_and_touches_only_the_banner(size: int) -> None:
    plain, labelled = frames(size, None), frames(size, LABEL)
    banner = TextBanner(LABEL, size, size)
    assert len(plain) == len(labelled) > 10
    for a, b in zip(plain, labelled, strict=True):
        assert np.array_equal(a[banner.height :], b[banner.height :])
        assert not np.array_equal(a[: banner.height], b[: banner.height])
        assert " ".join(decode(b, banner)) == LABEL
    # readable: glyphs grow with the frame, and the banner stays a strip at the top, clear
    # of the mouth (whose box starts a little past half the height)
    assert banner.scale >= size // 160
    assert banner.height < 0.35 * size
    assert banner.height < FaceVideoGenerator(width=size, height=size).renderer.mouth_box[1] - 8


def test_a_long_label_wraps_and_still_fits_a_small_frame() -> None:
    banner = TextBanner(LABEL, 64, 64)
    assert banner.lines == ["runway", "(emulated)"]
    rgba = banner.draw(np.zeros((64, 64, 4), np.uint8))
    assert decode(rgba, banner) == ["runway", "(emulated)"]


def test_the_local_provider_draws_no_label_and_an_empty_one_is_refused() -> None:
    assert FaceVideoGenerator(width=64, height=64).label is None
    assert FaceVideoGenerator(width=64, height=64, label=LABEL).label == LABEL
    with pytest.raises(ValueError, match="text"):
        TextBanner("  ", 64, 64)
