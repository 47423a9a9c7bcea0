"""CPU face renderer and audio-driven face animator for the ``local`` avatar.

Pure numpy (PyAV is used only to decode a portrait file). Nothing here imports LiveKit, so
the renderer can be reused outside a room, e.g. by the Runway emulator or an offline demo.

Speed comes from doing all drawing once: the constructor paints an oversized static scene
plus a small bank of pre-drawn mouth and eye patches (one per quantised openness level).
``render`` then only crops the scene at the idle offset and pastes three patches.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from functools import partial
from typing import Union

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FaceAnimator",
    "FaceRenderer",
    "FaceState",
    "FaceStyle",
    "PortraitLayout",
    "PortraitSource",
    "frame_sample_offset",
]

RGB = tuple[int, int, int]
PortraitSource = Union[NDArray[np.uint8], str, "os.PathLike[str]"]
"""A portrait: an RGB/RGBA/grey ``uint8`` array, or a path to an image PyAV can decode."""

MIN_SIZE = 64
MAX_SIZE = 2048
MOUTH_LEVELS = 32
EYE_LEVELS = 16
# Largest idle offset, as a fraction of the frame height; the scene is painted with this much
# margin so a crop never runs off its edge.
MAX_OFFSET = 0.012

_F32 = NDArray[np.float32]


# --------------------------------------------------------------------------- style & state


def _parse_color(name: str, value: object) -> RGB:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        raise ValueError(f"FaceStyle.{name} must be an (R, G, B) tuple, got {value!r}")
    out: list[int] = []
    for c in value:
        # bool is an int subclass but almost certainly a mistake here
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c <= 255:
            raise ValueError(f"FaceStyle.{name} must hold three integers in 0..255, got {value!r}")
        out.append(int(c))
    return (out[0], out[1], out[2])


@dataclass(frozen=True)
class FaceStyle:
    """Colours of the built-in face, each an ``(R, G, B)`` tuple of ints in 0..255.

    ``mouth`` also tints the lips drawn over a portrait.
    """

    background: RGB = (38, 70, 83)
    skin: RGB = (241, 194, 160)
    eye: RGB = (48, 36, 40)
    mouth: RGB = (176, 62, 78)
    hair: RGB = (74, 48, 36)
    shirt: RGB = (233, 196, 106)

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _parse_color(f.name, getattr(self, f.name)))


@dataclass(frozen=True)
class PortraitLayout:
    """Where the face sits in a portrait, in fractions of the output frame (0..1).

    The defaults suit a centred head-and-shoulders portrait looking at the camera.
    """

    left_eye: tuple[float, float] = (0.405, 0.43)
    right_eye: tuple[float, float] = (0.595, 0.43)
    mouth: tuple[float, float] = (0.5, 0.665)
    eye_width: float = 0.075
    mouth_width: float = 0.13

    def __post_init__(self) -> None:
        for name in ("left_eye", "right_eye", "mouth"):
            point = getattr(self, name)
            if (
                not isinstance(point, Sequence)
                or len(point) != 2
                or not all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in point)
            ):
                raise ValueError(
                    f"PortraitLayout.{name} must be an (x, y) pair of fractions in 0..1, "
                    f"got {point!r}"
                )
            object.__setattr__(self, name, (float(point[0]), float(point[1])))
        for name in ("eye_width", "mouth_width"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.01 <= v <= 0.5:
                raise ValueError(
                    f"PortraitLayout.{name} must be a fraction of the frame width in "
                    f"0.01..0.5, got {v!r}"
                )


@dataclass(frozen=True)
class FaceState:
    """Pose of the face for one video frame.

    ``mouth_open`` and ``eye_open`` are 0..1 (0 = closed); ``offset_x``/``offset_y`` shift
    the face by a fraction of the frame height (clamped to about ±1.2 %).
    """

    mouth_open: float = 0.0
    eye_open: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0


def frame_sample_offset(index: int, sample_rate: int, fps: float | Fraction) -> int:
    """First audio sample of video frame ``index`` (exact, so chunks never drift from video).

    At 16 kHz / 30 fps a frame is 533.33 samples: chunks are 533 or 534 samples long and
    every 30 frames cover exactly 16000 samples.
    """
    f = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
    return index * sample_rate * f.denominator // f.numerator


# --------------------------------------------------------------------------- drawing helpers
#
# Everything below runs once, at construction, in float32 on bounding boxes only.


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    v = int(value)
    if not MIN_SIZE <= v <= MAX_SIZE or v % 2:
        hint = min(MAX_SIZE, max(MIN_SIZE, v + (v % 2)))
        raise ValueError(
            f"{name} must be an even number of pixels in {MIN_SIZE}..{MAX_SIZE} "
            f"(video encoders need even sizes), got {v}; use e.g. {hint}"
        )
    return v


def _sd_ellipse(xx: _F32, yy: _F32, cx: float, cy: float, rx: float, ry: float) -> _F32:
    """Approximate signed distance (px) to an ellipse; exact enough for antialiasing."""
    nx = (xx - cx) / rx
    ny = (yy - cy) / ry
    k = np.sqrt(nx * nx + ny * ny)
    grad = np.sqrt((nx / rx) ** 2 + (ny / ry) ** 2) / np.maximum(k, 1e-6)
    out: _F32 = (k - 1.0) / np.maximum(grad, 1e-6)
    return out


def _sd_polyline(xx: _F32, yy: _F32, pts: NDArray[np.float64], width: float) -> _F32:
    """Signed distance to a stroke of ``width`` px along a polyline, with round caps."""
    best = np.full(xx.shape, np.inf, dtype=np.float32)
    for (ax, ay), (bx, by) in itertools.pairwise(pts.tolist()):
        vx, vy = bx - ax, by - ay
        denom = vx * vx + vy * vy or 1e-9
        t = np.clip(((xx - ax) * vx + (yy - ay) * vy) / denom, 0.0, 1.0)
        d = np.hypot(xx - (ax + t * vx), yy - (ay + t * vy))
        np.minimum(best, d, out=best)
    out: _F32 = best - width / 2.0
    return out


def _curve(
    fn: Callable[[NDArray[np.float64]], NDArray[np.float64]], x0: float, x1: float, n: int = 24
) -> NDArray[np.float64]:
    xs = np.linspace(x0, x1, n)
    return np.stack([xs, fn(xs)], axis=1)


def _coverage(sd: _F32, feather: float = 1.0) -> _F32:
    out: _F32 = np.clip(0.5 - sd / feather, 0.0, 1.0).astype(np.float32)
    return out


class _Canvas:
    """Float RGB painting surface whose coordinates are offset by ``origin`` pixels."""

    def __init__(self, rgb: _F32, origin_x: float, origin_y: float) -> None:
        self.rgb = rgb
        self.ox = origin_x
        self.oy = origin_y

    def grid(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice, _F32, _F32]:
        """Pixel-centre coordinates (in shape space) for the canvas area under a bbox."""
        h, w = self.rgb.shape[:2]
        c0 = max(0, math.floor(x0 + self.ox) - 2)
        c1 = min(w, math.ceil(x1 + self.ox) + 2)
        r0 = max(0, math.floor(y0 + self.oy) - 2)
        r1 = min(h, math.ceil(y1 + self.oy) + 2)
        xs = np.arange(c0, max(c0, c1), dtype=np.float32) + 0.5 - self.ox
        ys = np.arange(r0, max(r0, r1), dtype=np.float32) + 0.5 - self.oy
        xx, yy = np.meshgrid(xs, ys)
        return slice(r0, r1), slice(c0, c1), xx.astype(np.float32), yy.astype(np.float32)

    def fill(
        self,
        bbox: tuple[float, float, float, float],
        sd_fn: Callable[[_F32, _F32], _F32],
        color: Sequence[float] | NDArray[np.float32],
        alpha: float = 1.0,
        feather: float = 1.0,
    ) -> None:
        rows, cols, xx, yy = self.grid(*bbox)
        if xx.size == 0:
            return
        cov = _coverage(sd_fn(xx, yy), feather) * np.float32(alpha)
        region = self.rgb[rows, cols]
        col = np.asarray(color, dtype=np.float32)
        region += (col - region) * cov[..., None]


def _mix(
    a: Sequence[float] | NDArray[np.float32], b: Sequence[float], t: float
) -> NDArray[np.float32]:
    return (np.asarray(a, np.float32) * (1.0 - t) + np.asarray(b, np.float32) * t).astype(
        np.float32
    )


def _to_rgba(rgb: _F32) -> NDArray[np.uint8]:
    h, w = rgb.shape[:2]
    out = np.empty((h, w, 4), dtype=np.uint8)
    out[..., :3] = np.clip(rgb + 0.5, 0.0, 255.0).astype(np.uint8)
    out[..., 3] = 255
    return out


# --------------------------------------------------------------------------- portrait input


def _load_portrait(portrait: PortraitSource) -> NDArray[np.uint8]:
    if isinstance(portrait, np.ndarray):
        img = portrait
    elif isinstance(portrait, (str, os.PathLike)):
        import av  # only needed for files; keeps ``import render`` cheap

        try:
            with av.open(os.fspath(portrait)) as container:
                frame = next(container.decode(video=0))
                img = frame.to_ndarray(format="rgba")
        except (OSError, StopIteration, av.FFmpegError) as e:
            raise ValueError(f"cannot decode portrait image {portrait!r}: {e}") from e
    else:
        raise TypeError(
            f"portrait must be a uint8 numpy array or an image path, got {type(portrait).__name__}"
        )
    if img.dtype != np.uint8:
        raise ValueError(f"portrait array must be uint8 (0..255), got dtype {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or min(img.shape[:2]) < 8:
        raise ValueError(
            f"portrait must be an HxW, HxWx3 (RGB) or HxWx4 (RGBA) array at least 8 px on "
            f"each side, got shape {img.shape}"
        )
    return img


def _resize_cover(img: NDArray[np.uint8], out_h: int, out_w: int) -> _F32:
    """Scale ``img`` to cover ``out_h``x``out_w`` (centre crop), bilinear after box prefilter."""
    src = img.astype(np.float32)
    h, w = src.shape[:2]
    scale = max(out_h / h, out_w / w)
    # box-average first when shrinking a lot; plain bilinear would alias
    factor = int(1.0 / scale) if scale < 0.5 else 1
    if factor > 1:
        h2, w2 = h // factor, w // factor
        src = (
            src[: h2 * factor, : w2 * factor].reshape(h2, factor, w2, factor, -1).mean(axis=(1, 3))
        )
        h, w = h2, w2
        scale = max(out_h / h, out_w / w)
    ys = (np.arange(out_h, dtype=np.float32) + 0.5 - out_h / 2) / scale + h / 2 - 0.5
    xs = (np.arange(out_w, dtype=np.float32) + 0.5 - out_w / 2) / scale + w / 2 - 0.5
    ys = np.clip(ys, 0, h - 1)
    xs = np.clip(xs, 0, w - 1)
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    top = src[y0][:, x0] * (1 - fx) + src[y0][:, x1] * fx
    bot = src[y1][:, x0] * (1 - fx) + src[y1][:, x1] * fx
    out: _F32 = (top * (1 - fy) + bot * fy).astype(np.float32)
    return out


# --------------------------------------------------------------------------- renderer


@dataclass(frozen=True)
class _Box:
    """A patch rectangle in frame coordinates at rest (offset 0)."""

    x0: int
    y0: int
    x1: int
    y1: int


class FaceRenderer:
    """Draws the avatar face for a :class:`FaceState` as an HxWx4 RGBA ``uint8`` frame.

    Without ``portrait`` a friendly cartoon head is drawn in ``style`` colours. With one
    (array or image path), the portrait fills the frame (scaled to cover, centre-cropped)
    and a mouth and eyelids are animated over the positions given by ``layout``.
    ``seed`` only varies small cosmetic details, so equal arguments give equal pixels.
    """

    def __init__(
        self,
        width: int,
        height: int,
        *,
        style: FaceStyle | None = None,
        portrait: PortraitSource | None = None,
        layout: PortraitLayout | None = None,
        seed: int = 0,
    ) -> None:
        self.width = _check_size("width", width)
        self.height = _check_size("height", height)
        if style is not None and not isinstance(style, FaceStyle):
            raise TypeError(f"style must be a FaceStyle, got {type(style).__name__}")
        if layout is not None and not isinstance(layout, PortraitLayout):
            raise TypeError(f"layout must be a PortraitLayout, got {type(layout).__name__}")
        self.style = style or FaceStyle()
        self.seed = int(seed)
        self.margin = max(1, math.ceil(MAX_OFFSET * self.height))
        m = self.margin
        big_h, big_w = self.height + 2 * m, self.width + 2 * m

        self._mouth_patches: list[NDArray[np.uint8]] = []
        self._eye_patches: list[list[NDArray[np.uint8]]] = []
        self._eye_boxes: list[_Box] = []
        if portrait is None:
            canvas = _Canvas(np.empty((big_h, big_w, 3), np.float32), m, m)
            self._paint_builtin_scene(canvas)
            self._build_builtin_patches(canvas)
        else:
            img = _load_portrait(portrait)
            rgb = _resize_cover(img, big_h, big_w)
            if rgb.shape[2] == 4:
                alpha = rgb[..., 3:4] / 255.0
                bg = np.asarray(self.style.background, np.float32)
                rgb = (rgb[..., :3] * alpha + bg * (1.0 - alpha)).astype(np.float32)
            canvas = _Canvas(np.ascontiguousarray(rgb), m, m)
            self._build_portrait_patches(canvas, layout or PortraitLayout())
        self._base = _to_rgba(canvas.rgb)

    # ------------------------------------------------------------------ per-frame path

    def render(self, state: FaceState) -> NDArray[np.uint8]:
        """Return a new C-contiguous HxWx4 RGBA frame for ``state``."""
        m, h, w = self.margin, self.height, self.width
        dx = min(m, max(-m, round(state.offset_x * h)))
        dy = min(m, max(-m, round(state.offset_y * h)))
        out: NDArray[np.uint8] = self._base[m - dy : m - dy + h, m - dx : m - dx + w].copy()
        mouth = min(MOUTH_LEVELS - 1, max(0, round(state.mouth_open * (MOUTH_LEVELS - 1))))
        self._paste(out, self._mouth_patches[mouth], self._mouth_box, dx, dy)
        eye = min(EYE_LEVELS - 1, max(0, round(state.eye_open * (EYE_LEVELS - 1))))
        for box, patches in zip(self._eye_boxes, self._eye_patches, strict=True):
            self._paste(out, patches[eye], box, dx, dy)
        return out

    @staticmethod
    def _paste(
        out: NDArray[np.uint8], patch: NDArray[np.uint8], box: _Box, dx: int, dy: int
    ) -> None:
        h, w = out.shape[:2]
        x0, y0 = box.x0 + dx, box.y0 + dy
        x1, y1 = box.x1 + dx, box.y1 + dy
        cx0, cy0 = max(0, x0), max(0, y0)
        cx1, cy1 = min(w, x1), min(h, y1)
        if cx0 < cx1 and cy0 < cy1:
            out[cy0:cy1, cx0:cx1] = patch[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]

    @property
    def mouth_box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of the animated mouth area at rest, in frame pixels."""
        b = self._mouth_box
        return (b.x0, b.y0, b.x1, b.y1)

    @property
    def eye_boxes(self) -> list[tuple[int, int, int, int]]:
        """``(x0, y0, x1, y1)`` of each animated eye area at rest, in frame pixels."""
        return [(b.x0, b.y0, b.x1, b.y1) for b in self._eye_boxes]

    # ------------------------------------------------------------------ construction

    def _box(self, cx: float, cy: float, half_w: float, top: float, bottom: float) -> _Box:
        # clamped to the frame so the patch always lies inside the painted scene
        w, h = self.width, self.height
        return _Box(
            x0=min(w - 1, max(0, math.floor(cx - half_w))),
            y0=min(h - 1, max(0, math.floor(cy - top))),
            x1=min(w, max(1, math.ceil(cx + half_w))),
            y1=min(h, max(1, math.ceil(cy + bottom))),
        )

    def _patch_bank(
        self, canvas: _Canvas, box: _Box, levels: int, draw: Callable[[_Canvas, float], None]
    ) -> list[NDArray[np.uint8]]:
        m = self.margin
        clean = canvas.rgb[box.y0 + m : box.y1 + m, box.x0 + m : box.x1 + m]
        bank = []
        for i in range(levels):
            # patch pixel (0, 0) is frame pixel (box.x0, box.y0)
            patch = _Canvas(clean.copy(), -box.x0, -box.y0)
            draw(patch, i / (levels - 1))
            bank.append(_to_rgba(patch.rgb))
        return bank

    def _paint_builtin_scene(self, c: _Canvas) -> None:
        st = self.style
        h, w = self.height, self.width
        s = min(w, h)
        bg = np.asarray(st.background, np.float32)
        # soft vertical light falloff: reads as a backdrop, and is invisible when shifted
        rows = np.linspace(-c.oy, h + c.oy, c.rgb.shape[0], dtype=np.float32) / h
        shade = (1.12 - 0.22 * rows)[:, None, None]
        c.rgb[:] = np.clip(bg[None, None, :] * shade, 0, 255)

        cx = w / 2
        hcy = h * 0.46
        hrx, hry = 0.235 * s, 0.285 * s
        skin = st.skin
        skin_shadow = _mix(skin, (60, 30, 30), 0.18)
        hair = st.hair

        # shoulders and neck
        c.fill(
            (cx - 0.5 * s, h - 0.2 * s, cx + 0.5 * s, h + 0.6 * s),
            lambda x, y: _sd_ellipse(x, y, cx, h + 0.23 * s, 0.43 * s, 0.36 * s),
            st.shirt,
        )
        neck_top, neck_bot = hcy + 0.18 * s, h - 0.1 * s
        c.fill(
            (cx - 0.1 * s, neck_top, cx + 0.1 * s, neck_bot + 0.05 * s),
            lambda x, y: _sd_polyline(
                x, y, np.array([[cx, neck_top], [cx, neck_bot]], np.float64), 0.15 * s
            ),
            skin_shadow,
        )
        # U neckline, so the neck runs into the shirt instead of stopping on it
        c.fill(
            (cx - 0.15 * s, neck_bot - 0.1 * s, cx + 0.15 * s, neck_bot + 0.1 * s),
            lambda x, y: _sd_ellipse(x, y, cx, neck_bot - 0.01 * s, 0.1 * s, 0.06 * s),
            skin_shadow,
        )
        collar = _curve(
            lambda xs: (
                neck_bot
                - 0.01 * s
                + 0.06 * s * np.sqrt(np.clip(1.0 - ((xs - cx) / (0.1 * s)) ** 2, 0.0, 1.0))
            ),
            cx - 0.1 * s,
            cx + 0.1 * s,
            n=32,
        )
        c.fill(
            (cx - 0.15 * s, neck_bot - 0.1 * s, cx + 0.15 * s, neck_bot + 0.1 * s),
            lambda x, y: _sd_polyline(x, y, collar, 0.014 * s),
            _mix(st.shirt, (0, 0, 0), 0.2),
        )
        # back hair, ears, head
        c.fill(
            (cx - 0.3 * s, hcy - 0.36 * s, cx + 0.3 * s, hcy + 0.12 * s),
            lambda x, y: _sd_ellipse(x, y, cx, hcy - 0.05 * s, 0.26 * s, 0.29 * s),
            hair,
        )
        for side in (-1.0, 1.0):
            ex = cx + side * hrx * 0.98
            c.fill(
                (ex - 0.06 * s, hcy - 0.07 * s, ex + 0.06 * s, hcy + 0.1 * s),
                partial(_sd_ellipse, cx=ex, cy=hcy + 0.02 * s, rx=0.04 * s, ry=0.065 * s),
                skin_shadow,
            )
        c.fill(
            (cx - hrx, hcy - hry, cx + hrx, hcy + hry),
            lambda x, y: _sd_ellipse(x, y, cx, hcy, hrx, hry),
            skin,
        )
        # fringe: the top of the head, cut by a hairline that dips at the temples
        hairline_y = hcy - 0.15 * s

        def fringe(x: _F32, y: _F32) -> _F32:
            u = (x - cx) / hrx
            line = hairline_y + 0.1 * s * u * u - 0.025 * s * np.cos(u * 7.0 + self.seed % 7)
            cap = _sd_ellipse(x, y, cx, hcy - 0.04 * s, hrx * 1.04, hry * 1.02)
            out: _F32 = np.maximum(cap, (y - line).astype(np.float32))
            return out

        c.fill((cx - hrx * 1.1, hcy - hry * 1.1, cx + hrx * 1.1, hcy), fringe, hair)

        # brows, nose, cheeks (static)
        self._eye_y = hcy - 0.005 * s
        self._eye_dx = 0.092 * s
        self._eye_rx, self._eye_ry = 0.036 * s, 0.047 * s
        for side in (-1.0, 1.0):
            bx = cx + side * self._eye_dx
            by = self._eye_y - 0.085 * s
            xs = np.linspace(bx - 0.045 * s, bx + 0.045 * s, 24)
            pts = np.stack([xs, by + 5.9 * (xs - bx) ** 2 / s], axis=1)
            pts[:, 1] -= side * (pts[:, 0] - bx) * 0.12  # slight outward lift
            c.fill(
                (bx - 0.06 * s, by - 0.04 * s, bx + 0.06 * s, by + 0.04 * s),
                partial(_sd_polyline, pts=pts, width=0.016 * s),
                hair,
            )
            c.fill(
                (bx - 0.08 * s, hcy + 0.03 * s, bx + 0.08 * s, hcy + 0.17 * s),
                partial(
                    _sd_ellipse,
                    cx=bx + side * 0.03 * s,
                    cy=hcy + 0.1 * s,
                    rx=0.045 * s,
                    ry=0.028 * s,
                ),
                _mix(skin, st.mouth, 0.45),
                alpha=0.45,
                feather=0.02 * s,
            )
        nose = _curve(
            lambda xs: hcy + 0.075 * s + 8.0 * (xs - cx) ** 2 / s, cx - 0.022 * s, cx + 0.022 * s
        )
        c.fill(
            (cx - 0.04 * s, hcy + 0.04 * s, cx + 0.04 * s, hcy + 0.1 * s),
            lambda x, y: _sd_polyline(x, y, nose, 0.011 * s),
            skin_shadow,
        )
        self._mouth_cx, self._mouth_cy = cx, hcy + 0.15 * s
        self._scale = s

    def _build_builtin_patches(self, c: _Canvas) -> None:
        s = self._scale
        mcx, mcy = self._mouth_cx, self._mouth_cy
        self._mouth_box = self._box(mcx, mcy, 0.09 * s, 0.045 * s, 0.1 * s)
        self._mouth_patches = self._patch_bank(
            c, self._mouth_box, MOUTH_LEVELS, self._draw_builtin_mouth
        )
        for side in (-1.0, 1.0):
            ex = mcx + side * self._eye_dx
            box = self._box(
                ex, self._eye_y, self._eye_rx * 1.35, self._eye_ry * 1.25, self._eye_ry * 1.35
            )
            self._eye_boxes.append(box)
            self._eye_patches.append(
                self._patch_bank(
                    c,
                    box,
                    EYE_LEVELS,
                    partial(self._draw_builtin_eye, ex=ex, ey=self._eye_y),
                )
            )

    def _draw_builtin_mouth(self, c: _Canvas, o: float) -> None:
        st, s = self.style, self._scale
        cx, cy = self._mouth_cx, self._mouth_cy
        half_w = 0.062 * s * (1.0 - 0.18 * o)
        if o < 0.04:
            # closed: a smile line
            pts = _curve(
                lambda xs: cy + 0.006 * s - 4.0 * (xs - cx) ** 2 / s, cx - half_w, cx + half_w
            )
            c.fill(
                (cx - half_w - 4, cy - 0.03 * s, cx + half_w + 4, cy + 0.05 * s),
                lambda x, y: _sd_polyline(x, y, pts, 0.014 * s),
                _mix(st.mouth, (0, 0, 0), 0.15),
            )
            return
        top = 0.01 * s + 0.02 * s * o
        bottom = 0.012 * s + 0.075 * s * o

        def shape(x: _F32, y: _F32, grow: float = 0.0) -> _F32:
            # flatter upper lip, rounder jaw: two half-ellipses
            ry = np.where(y < cy, top + grow, bottom + grow).astype(np.float32)
            nx = (x - cx) / (half_w + grow)
            ny = (y - cy) / ry
            k = np.sqrt(nx * nx + ny * ny)
            grad = np.sqrt((nx / (half_w + grow)) ** 2 + (ny / ry) ** 2) / np.maximum(k, 1e-6)
            out: _F32 = ((k - 1.0) / np.maximum(grad, 1e-6)).astype(np.float32)
            return out

        bbox = (cx - half_w - 6, cy - top - 6, cx + half_w + 6, cy + bottom + 6)
        lip = 0.008 * s
        c.fill(bbox, lambda x, y: shape(x, y, lip), st.mouth)
        inner = _mix(st.mouth, (20, 5, 10), 0.72)
        c.fill(bbox, shape, inner)
        if o > 0.25:
            # upper teeth, clipped to the mouth opening
            teeth_h = 0.022 * s * min(1.0, (o - 0.25) * 3.0)
            c.fill(
                bbox,
                lambda x, y: np.maximum(shape(x, y), (y - (cy - top + teeth_h)).astype(np.float32)),
                (246, 242, 236),
            )
        # tongue rising from the jaw
        c.fill(
            bbox,
            lambda x, y: np.maximum(
                shape(x, y),
                _sd_ellipse(x, y, cx, cy + bottom, half_w * 0.7, bottom * 0.55),
            ),
            _mix(st.mouth, (255, 160, 170), 0.35),
        )

    def _draw_builtin_eye(self, c: _Canvas, o: float, *, ex: float, ey: float) -> None:
        st, s = self.style, self._scale
        rx, ry = self._eye_rx, self._eye_ry
        bbox = (ex - rx * 1.4, ey - ry * 1.3, ex + rx * 1.4, ey + ry * 1.4)
        lid_y = ey - ry + (1.0 - o) * 2.0 * ry
        if o > 0.0:
            c.fill(
                bbox,
                lambda x, y: np.maximum(
                    _sd_ellipse(x, y, ex, ey, rx, ry), (lid_y - y).astype(np.float32)
                ),
                st.eye,
            )
            hx, hy = ex + 0.35 * rx, ey - 0.35 * ry
            c.fill(
                bbox,
                lambda x, y: np.maximum(
                    _sd_ellipse(x, y, hx, hy, 0.3 * rx, 0.3 * rx), (lid_y - y).astype(np.float32)
                ),
                (255, 255, 255),
                alpha=0.9,
            )
        if o < 0.97:
            # eyelid edge, fading in as the lid drops so a half blink has no hard pop
            ly = min(lid_y, ey + 0.45 * ry)
            t = max(-1.0, min(1.0, (ly - ey) / ry))
            half = rx * math.sqrt(max(0.0, 1.0 - t * t)) + 0.06 * rx
            # a slight U: the lid edge settles onto the lower lid
            pts = _curve(lambda xs: ly - 0.18 * ry * ((xs - ex) / rx) ** 2, ex - half, ex + half)
            c.fill(
                bbox,
                lambda x, y: _sd_polyline(x, y, pts, 0.012 * s),
                _mix(st.eye, st.skin, 0.15),
                alpha=min(1.0, (1.0 - o) * 6.0),
            )

    def _build_portrait_patches(self, c: _Canvas, layout: PortraitLayout) -> None:
        w, h = self.width, self.height
        m = self.margin
        eye_rx = layout.eye_width * w / 2
        eye_ry = eye_rx * 0.55
        mouth_hw = layout.mouth_width * w / 2
        mcx, mcy = layout.mouth[0] * w, layout.mouth[1] * h

        # lid colour: median skin between the eyes and the mouth, sampled from the portrait
        samples = []
        for ex, ey in (layout.left_eye, layout.right_eye):
            sx = ex * w
            sy = (ey * h + mcy) / 2
            r = max(2, round(eye_rx * 0.5))
            y0 = min(max(0, round(sy) - r + m), c.rgb.shape[0] - 1)
            x0 = min(max(0, round(sx) - r + m), c.rgb.shape[1] - 1)
            samples.append(c.rgb[y0 : y0 + 2 * r, x0 : x0 + 2 * r].reshape(-1, 3))
        skin = np.median(np.concatenate(samples), axis=0).astype(np.float32)
        self._portrait_skin = skin

        self._mouth_box = self._box(mcx, mcy, mouth_hw * 1.25, mouth_hw * 0.45, mouth_hw * 0.95)
        self._mouth_patches = self._patch_bank(
            c,
            self._mouth_box,
            MOUTH_LEVELS,
            partial(self._draw_portrait_mouth, cx=mcx, cy=mcy, hw=mouth_hw),
        )
        for ex, ey in (layout.left_eye, layout.right_eye):
            px, py = ex * w, ey * h
            box = self._box(px, py, eye_rx * 1.3, eye_ry * 1.6, eye_ry * 1.6)
            self._eye_boxes.append(box)
            self._eye_patches.append(
                self._patch_bank(
                    c,
                    box,
                    EYE_LEVELS,
                    partial(self._draw_portrait_eye, ex=px, ey=py, rx=eye_rx, ry=eye_ry),
                )
            )

    def _draw_portrait_mouth(
        self, c: _Canvas, o: float, *, cx: float, cy: float, hw: float
    ) -> None:
        if o <= 0.0:
            return  # at rest the portrait's own mouth shows
        half_w = hw * (0.85 - 0.15 * o)
        top = hw * (0.05 + 0.12 * o)
        bottom = hw * (0.06 + 0.55 * o)
        fade = min(1.0, o * 5.0)

        def shape(x: _F32, y: _F32) -> _F32:
            ry = np.where(y < cy, top, bottom).astype(np.float32)
            nx = (x - cx) / half_w
            ny = (y - cy) / ry
            k = np.sqrt(nx * nx + ny * ny)
            grad = np.sqrt((nx / half_w) ** 2 + (ny / ry) ** 2) / np.maximum(k, 1e-6)
            out: _F32 = ((k - 1.0) / np.maximum(grad, 1e-6)).astype(np.float32)
            return out

        bbox = (cx - hw * 1.2, cy - hw * 0.4, cx + hw * 1.2, cy + hw * 0.9)
        soft = max(1.0, hw * 0.06)
        c.fill(
            bbox,
            lambda x, y: shape(x, y) - hw * 0.08,
            self.style.mouth,
            alpha=0.55 * fade,
            feather=soft,
        )
        c.fill(bbox, shape, _mix(self.style.mouth, (15, 4, 8), 0.78), alpha=fade, feather=soft)
        if o > 0.3:
            teeth_h = hw * 0.16 * min(1.0, (o - 0.3) * 3.0)
            c.fill(
                bbox,
                lambda x, y: np.maximum(shape(x, y), (y - (cy - top + teeth_h)).astype(np.float32)),
                (236, 230, 222),
                alpha=0.9,
                feather=soft,
            )

    def _draw_portrait_eye(
        self, c: _Canvas, o: float, *, ex: float, ey: float, rx: float, ry: float
    ) -> None:
        if o >= 1.0:
            return
        lid_y = ey - ry * 1.1 + (1.0 - o) * 2.2 * ry
        soft = max(1.0, rx * 0.12)
        c.fill(
            (ex - rx * 1.3, ey - ry * 1.6, ex + rx * 1.3, ey + ry * 1.6),
            lambda x, y: np.maximum(
                _sd_ellipse(x, y, ex, ey, rx * 1.12, ry * 1.25), (y - lid_y).astype(np.float32)
            ),
            self._portrait_skin,
            feather=soft,
        )
        ly = min(lid_y, ey + 0.55 * ry)
        t = max(-1.0, min(1.0, (ly - ey) / (ry * 1.25)))
        half = rx * 1.05 * math.sqrt(max(0.0, 1.0 - t * t))
        pts = _curve(lambda xs: ly + 0.15 * ry * ((xs - ex) / rx) ** 2, ex - half, ex + half)
        c.fill(
            (ex - rx * 1.3, ey - ry * 1.6, ex + rx * 1.3, ey + ry * 1.6),
            lambda x, y: _sd_polyline(x, y, pts, max(1.0, rx * 0.09)),
            _mix(self._portrait_skin, (20, 12, 12), 0.7),
            alpha=min(1.0, (1.0 - o) * 4.0),
        )


# --------------------------------------------------------------------------- animator


class FaceAnimator:
    """Turns speech audio into one :class:`FaceState` per video frame.

    Call :meth:`step` once per video frame with the audio that frame covers (``None`` or
    an empty array while silent). Mouth openness follows the RMS level of that audio
    through a noise gate and attack/release smoothing; blinks come at seeded random
    intervals; a slow breathing sway runs throughout. Same seed + same input = same states.
    """

    # Level mapping, in dBFS of the frame's RMS. The gate opens above GATE_OPEN_DB and, with
    # hysteresis, shuts only below GATE_CLOSE_DB; openness is 0 at FLOOR_DB (= the opening
    # level, so a noise floor just under it cannot leave the mouth ajar) and 1 at FULL_DB.
    GATE_OPEN_DB = -42.0
    GATE_CLOSE_DB = -48.0
    FLOOR_DB = -42.0
    FULL_DB = -18.0
    ATTACK_S = 0.025
    RELEASE_S = 0.08
    CLOSE_S = 0.04  # faster when the level falls through the floor: silence looks like rest

    def __init__(self, fps: float, sample_rate: int, seed: int = 0) -> None:
        if not isinstance(fps, (int, float)) or not 1.0 <= fps <= 120.0:
            raise ValueError(f"fps must be a number in 1..120, got {fps!r}")
        if (
            isinstance(sample_rate, bool)
            or not isinstance(sample_rate, int)
            or not (8000 <= sample_rate <= 192000)
        ):
            raise ValueError(f"sample_rate must be an int in 8000..192000 Hz, got {sample_rate!r}")
        self.fps = float(fps)
        self.sample_rate = sample_rate
        self.seed = int(seed)
        self._fps_frac = Fraction(fps).limit_denominator(1001)
        self._dt = 1.0 / self.fps
        self._attack = 1.0 - math.exp(-self._dt / self.ATTACK_S)
        self._release = 1.0 - math.exp(-self._dt / self.RELEASE_S)
        self._close = 1.0 - math.exp(-self._dt / self.CLOSE_S)
        self._nod_k = 1.0 - math.exp(-self._dt / 0.3)
        self.reset()

    def reset(self) -> None:
        """Return to the initial seeded state: time 0, mouth closed, same blink schedule."""
        self._rng = np.random.default_rng(self.seed)
        self._frame = 0
        self._mouth = 0.0
        self._gate = False
        self._nod = 0.0
        self._phase = self._rng.uniform(0.0, 2.0 * math.pi, size=3)
        self._next_blink = float(self._rng.uniform(0.8, 3.0))
        self._blink_start: float | None = None

    def interrupt(self) -> None:
        """Close the mouth at once (playback was cut off); blinking and sway carry on."""
        self._mouth = 0.0
        self._gate = False

    @property
    def time(self) -> float:
        """Seconds of video animated so far."""
        return self._frame * self._dt

    @property
    def mouth_open(self) -> float:
        """Current mouth openness (0..1)."""
        return self._mouth

    def level_db(self, audio: NDArray[np.generic] | None) -> float:
        """RMS level of ``audio`` in dBFS (int16 full scale, or floats in -1..1)."""
        if audio is None or audio.size == 0:
            return -120.0
        x = audio.astype(np.float32)
        if np.issubdtype(audio.dtype, np.integer):
            x *= np.float32(1.0 / 32768.0)
        if x.ndim == 2:
            x = x.mean(axis=1)
        x -= x.mean()
        rms = float(np.sqrt(np.mean(x * x)))
        return 20.0 * math.log10(rms + 1e-9)

    def step(self, audio: NDArray[np.generic] | None = None) -> FaceState:
        """Advance one video frame, given the audio that frame covers."""
        t = self._frame * self._dt
        self._frame += 1

        db = self.level_db(audio)
        if self._gate and db < self.GATE_CLOSE_DB:
            self._gate = False
        elif not self._gate and db > self.GATE_OPEN_DB:
            self._gate = True
        target = 0.0
        if self._gate:
            level = (db - self.FLOOR_DB) / (self.FULL_DB - self.FLOOR_DB)
            # the power curve lifts quiet syllables so soft speech still reads as talking
            target = min(1.0, max(0.0, level)) ** 0.7
        if target > self._mouth:
            k = self._attack
        else:
            k = self._release if target > 0.0 else self._close
        self._mouth += (target - self._mouth) * k
        if target == 0.0 and self._mouth < 0.02:
            self._mouth = 0.0

        eye = self._eye_openness(t)
        self._nod += (self._mouth - self._nod) * self._nod_k
        p = self._phase
        off_y = 0.0045 * math.sin(2 * math.pi * t / 3.7 + p[0]) + 0.004 * self._nod
        off_x = 0.003 * math.sin(2 * math.pi * t / 6.3 + p[1]) + 0.0015 * math.sin(
            2 * math.pi * t / 2.3 + p[2]
        )
        return FaceState(mouth_open=self._mouth, eye_open=eye, offset_x=off_x, offset_y=off_y)

    def _eye_openness(self, t: float) -> float:
        if self._blink_start is None and t >= self._next_blink:
            self._blink_start = t
        if self._blink_start is None:
            return 1.0
        # close 70 ms, hold >= one frame (so every blink shows a closed frame), open 140 ms
        close, hold, reopen = 0.07, max(0.04, self._dt), 0.14
        bt = t - self._blink_start + self._dt / 2
        if bt < close:
            v = 1.0 - bt / close
        elif bt < close + hold:
            v = 0.0
        elif bt < close + hold + reopen:
            v = (bt - close - hold) / reopen
        else:
            self._blink_start = None
            # now and then a quick double blink, otherwise every 2-6 s
            if self._rng.random() < 0.12:
                self._next_blink = t + float(self._rng.uniform(0.12, 0.3))
            else:
                self._next_blink = t + float(self._rng.uniform(2.0, 6.0))
            return 1.0
        return v * v * (3.0 - 2.0 * v)  # smoothstep: lids ease in and out

    def animate(self, pcm: NDArray[np.generic]) -> list[FaceState]:
        """Step through a whole PCM array (samples or samplesxchannels) at ``sample_rate``.

        Frame ``i`` gets samples ``[frame_sample_offset(i), frame_sample_offset(i + 1))``,
        the same split the video generator uses.
        """
        n = pcm.shape[0]
        states = []
        i = 0
        while (start := frame_sample_offset(i, self.sample_rate, self._fps_frac)) < n:
            end = frame_sample_offset(i + 1, self.sample_rate, self._fps_frac)
            states.append(self.step(pcm[start:end]))
            i += 1
        return states
