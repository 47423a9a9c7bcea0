"""A text banner drawn into video frames with a built-in 5x7 bitmap font (numpy only), so
a stand-in avatar can say what it is in the picture, e.g. ``runway (emulated)``."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["GLYPHS", "GLYPH_HEIGHT", "GLYPH_WIDTH", "TextBanner", "glyph"]

GLYPH_WIDTH, GLYPH_HEIGHT = 5, 7
_ROWS = {
    "a": (".....", ".....", ".###.", "....#", ".####", "#...#", ".####"),
    "b": ("#....", "#....", "####.", "#...#", "#...#", "#...#", "####."),
    "c": (".....", ".....", ".###.", "#....", "#....", "#...#", ".###."),
    "d": ("....#", "....#", ".####", "#...#", "#...#", "#...#", ".####"),
    "e": (".....", ".....", ".###.", "#...#", "#####", "#....", ".###."),
    "f": ("..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."),
    "g": (".....", ".####", "#...#", "#...#", ".####", "....#", ".###."),
    "h": ("#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"),
    "i": ("..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."),
    "j": ("...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."),
    "k": ("#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."),
    "l": (".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "m": (".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"),
    "n": (".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"),
    "o": (".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."),
    "p": (".....", ".....", "####.", "#...#", "####.", "#....", "#...."),
    "q": (".....", ".....", ".##.#", "#..##", ".####", "....#", "....#"),
    "r": (".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."),
    "s": (".....", ".....", ".###.", "#....", ".###.", "....#", "####."),
    "t": (".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."),
    "u": (".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"),
    "v": (".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "w": (".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."),
    "x": (".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"),
    "y": (".....", ".....", "#...#", "#...#", ".####", "....#", ".###."),
    "z": (".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"),
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    " ": (".....",) * 7,
    "(": ("...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."),
    ")": (".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    ".": (".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
    "?": (".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."),
}
GLYPHS: dict[str, NDArray[np.bool_]] = {
    char: np.array([[c == "#" for c in row] for row in rows], dtype=bool)
    for char, rows in _ROWS.items()
}
"""Each supported character's 7x5 bitmap (True: ink). Letters are lowercase."""

_TEXT = np.array([255, 255, 255, 255], np.uint8)
_SHADE = 0.3  # the banner keeps this much of the picture under it, so the text stands out


def glyph(char: str) -> NDArray[np.bool_]:
    """The bitmap of ``char`` (uppercase drawn as lowercase, anything unknown as ``?``)."""
    return GLYPHS.get(char.lower(), GLYPHS["?"])


class TextBanner:
    """``text`` in white on a darkened strip across the top of ``width`` x ``height``
    frames, scaled with the frame (one font pixel per 128 frame rows, at least one) and
    wrapped at spaces when a line would not fit the width. Build once, :meth:`draw` per
    frame."""

    def __init__(self, text: str, width: int, height: int) -> None:
        if not text.strip():
            raise ValueError("a banner needs some text to show")
        self.text = text
        self.lines, self.scale = _layout(text, width, height)
        s = self.scale
        pitch = (GLYPH_HEIGHT + 2) * s  # a font pixel of space above and below each line
        self.height = min(height, len(self.lines) * pitch + 2 * s)
        """Rows the banner covers, from the top of the frame."""
        mask = np.zeros((self.height, width), dtype=bool)
        for i, line in enumerate(self.lines):
            bitmap = _line_bitmap(line).repeat(s, axis=0).repeat(s, axis=1)
            y = s + i * pitch + s
            x = (width - bitmap.shape[1]) // 2  # _layout made every line fit: x >= 1
            h, w = bitmap.shape
            mask[y : y + h, x : x + w] = bitmap[: max(self.height - y, 0)]
        self.mask = mask
        """Which pixels of the banner are text (True), shaped ``(height, width)``."""

    def draw(self, rgba: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Draw the banner into an ``(H, W, 4)`` RGBA frame, in place; returns the frame."""
        top = rgba[: self.height]
        top[..., :3] = (top[..., :3] * _SHADE).astype(np.uint8)
        top[self.mask] = _TEXT
        return rgba


def _line_bitmap(line: str) -> NDArray[np.bool_]:
    """One line at font scale: glyphs with one blank column between them."""
    gap = np.zeros((GLYPH_HEIGHT, 1), dtype=bool)
    parts: list[NDArray[np.bool_]] = []
    for i, char in enumerate(line):
        if i:
            parts.append(gap)
        parts.append(glyph(char))
    return np.concatenate(parts, axis=1)


def _line_width(chars: int, scale: int) -> int:
    return (chars * (GLYPH_WIDTH + 1) - 1) * scale


def _layout(text: str, width: int, height: int) -> tuple[list[str], int]:
    """Lines and font scale: as big as the height suggests, smaller or wrapped to fit."""
    wanted = max(1, round(height / 128))
    room = width - 2  # a pixel of margin each side
    words = text.split()
    for scale in range(wanted, 0, -1):
        if _line_width(len(text), scale) <= room:
            return [text], scale
    # wrap at spaces (greedy) at the smallest scale; a word too long is cut
    lines: list[str] = []
    for word in words:
        if lines and _line_width(len(lines[-1]) + 1 + len(word), 1) <= room:
            lines[-1] += " " + word
        else:
            lines.append(word)
    fit = max(1, (room + 1) // (GLYPH_WIDTH + 1))
    lines = [line[:fit] for line in lines]
    scale = max(1, min(wanted, *(room // max(_line_width(len(ln), 1), 1) for ln in lines)))
    return lines, scale
