"""Tests for the CPU face renderer and the audio-driven animator (local provider)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray

from avatarkit_providers.local.render import (
    FaceAnimator,
    FaceRenderer,
    FaceState,
    FaceStyle,
    PortraitLayout,
    frame_sample_offset,
)

SR = 16000
FPS = 30.0


def _region(img: NDArray[np.uint8], box: tuple[int, int, int, int]) -> NDArray[np.uint8]:
    x0, y0, x1, y1 = box
    return img[y0:y1, x0:x1]


def _outside(img: NDArray[np.uint8], boxes: list[tuple[int, int, int, int]]) -> NDArray[np.uint8]:
    """The frame with the given boxes blanked, to compare everything else."""
    out: NDArray[np.uint8] = img.copy()
    for x0, y0, x1, y1 in boxes:
        out[y0:y1, x0:x1] = 0
    return out


@pytest.fixture(scope="module")
def renderer() -> FaceRenderer:
    return FaceRenderer(256, 256)


# --------------------------------------------------------------------------- renderer


def test_frame_format(renderer: FaceRenderer) -> None:
    img = renderer.render(FaceState())
    assert img.shape == (256, 256, 4)
    assert img.dtype == np.uint8
    assert img.flags.c_contiguous
    assert (img[..., 3] == 255).all()
    # a face, not a flat fill: skin colour appears, and differs from the background
    assert len(np.unique(img.reshape(-1, 4), axis=0)) > 50


def test_mouth_open_changes_only_the_mouth(renderer: FaceRenderer) -> None:
    closed = renderer.render(FaceState(mouth_open=0.0))
    opened = renderer.render(FaceState(mouth_open=1.0))
    box = renderer.mouth_box
    diff = np.any(_region(closed, box) != _region(opened, box), axis=2)
    assert diff.mean() > 0.1  # a clearly visible change
    np.testing.assert_array_equal(_outside(closed, [box]), _outside(opened, [box]))
    # openness is graded, not on/off
    half = renderer.render(FaceState(mouth_open=0.5))
    assert not np.array_equal(_region(half, box), _region(opened, box))
    assert not np.array_equal(_region(half, box), _region(closed, box))


def test_equal_states_render_identical_pixels(renderer: FaceRenderer) -> None:
    state = FaceState(mouth_open=0.42, eye_open=0.3, offset_x=0.004, offset_y=-0.006)
    a = renderer.render(state)
    b = renderer.render(state)
    assert a is not b
    np.testing.assert_array_equal(a, b)
    # a second renderer built from the same arguments draws the same pixels
    np.testing.assert_array_equal(a, FaceRenderer(256, 256).render(state))
    # the returned frame is the caller's: scribbling on it does not leak into the next
    a[:] = 0
    np.testing.assert_array_equal(b, renderer.render(state))


def test_eyes_closed_vs_open(renderer: FaceRenderer) -> None:
    opened = renderer.render(FaceState(eye_open=1.0))
    closed = renderer.render(FaceState(eye_open=0.0))
    boxes = renderer.eye_boxes
    assert len(boxes) == 2
    for box in boxes:
        diff = np.any(_region(opened, box) != _region(closed, box), axis=2)
        assert diff.mean() > 0.1
    np.testing.assert_array_equal(_outside(opened, boxes), _outside(closed, boxes))


def test_offset_shifts_the_face(renderer: FaceRenderer) -> None:
    rest = renderer.render(FaceState())
    moved = renderer.render(FaceState(offset_x=0.008, offset_y=0.008))
    d = round(0.008 * 256)
    assert d >= 2
    # the interior moved by exactly (d, d) pixels
    np.testing.assert_array_equal(moved[40 + d : 200 + d, 40 + d : 200 + d], rest[40:200, 40:200])
    # offsets beyond the margin are clamped rather than running off the painted scene
    far = renderer.render(FaceState(offset_x=5.0, offset_y=-5.0))
    assert far.shape == rest.shape


def test_style_colours_are_used() -> None:
    style = FaceStyle(background=(10, 200, 30), skin=(200, 100, 50))
    img = FaceRenderer(128, 128, style=style).render(FaceState())
    corner = img[2, 2, :3].astype(int)
    # the backdrop is a soft gradient of the background colour
    assert corner[1] > corner[0] and corner[1] > corner[2]
    centre = img[60, 64, :3]  # forehead
    assert tuple(centre) == (200, 100, 50)


def _write_png(path: Path, rgb: NDArray[np.uint8]) -> None:
    h, w = rgb.shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png")
        stream.width, stream.height = w, h
        stream.pix_fmt = "rgb24"
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_portrait_from_png(tmp_path: Path) -> None:
    # 96x64 portrait: left half red, right half blue, a grey "face" band in the middle
    img = np.zeros((64, 96, 3), np.uint8)
    img[:, :48] = (200, 30, 30)
    img[:, 48:] = (30, 30, 200)
    path = tmp_path / "portrait.png"
    _write_png(path, img)

    r = FaceRenderer(128, 128, portrait=path)
    rest = r.render(FaceState())
    # scaled to cover 128x128 and centre-cropped: red on the left, blue on the right
    assert tuple(rest[64, 8, :3]) == (200, 30, 30)
    assert tuple(rest[64, 120, :3]) == (30, 30, 200)
    assert (rest[..., 3] == 255).all()

    talking = r.render(FaceState(mouth_open=1.0))
    assert np.any(_region(rest, r.mouth_box) != _region(talking, r.mouth_box))
    np.testing.assert_array_equal(_outside(rest, [r.mouth_box]), _outside(talking, [r.mouth_box]))
    blinking = r.render(FaceState(eye_open=0.0))
    for box in r.eye_boxes:
        assert np.any(_region(rest, box) != _region(blinking, box))


def test_portrait_array_with_layout_and_alpha() -> None:
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., :3] = (120, 90, 60)
    rgba[:100, ..., 3] = 255  # top half opaque, bottom half transparent
    layout = PortraitLayout(left_eye=(0.3, 0.3), right_eye=(0.7, 0.3), mouth=(0.5, 0.35))
    style = FaceStyle(background=(0, 255, 0))
    r = FaceRenderer(100, 100, portrait=rgba, layout=layout, style=style)
    rest = r.render(FaceState())
    assert tuple(rest[10, 50, :3]) == (120, 90, 60)
    assert tuple(rest[90, 50, :3]) == (0, 255, 0)  # transparent pixels show the background
    x0, y0, x1, y1 = r.mouth_box
    assert x0 < 50 < x1 and y0 < 35 < y1  # the layout decides where the mouth animates
    assert not np.array_equal(rest, r.render(FaceState(mouth_open=1.0)))


@pytest.mark.parametrize(
    ("width", "height", "needle"),
    [
        (63, 64, "width must be an even number"),
        (64, 65, "height must be an even number"),
        (32, 64, "64..2048"),
        (64, 4096, "64..2048"),
        (64.0, 64, "width must be an int"),
    ],
)
def test_bad_sizes_raise(width: object, height: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        FaceRenderer(width, height)  # type: ignore[arg-type]


def test_bad_size_message_suggests_a_fix() -> None:
    with pytest.raises(ValueError, match=r"use e\.g\. 512"):
        FaceRenderer(511, 512)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"skin": (300, 0, 0)}, r"FaceStyle.skin must hold three integers in 0..255"),
        ({"eye": (1, 2)}, r"FaceStyle.eye must be an \(R, G, B\) tuple"),
        ({"mouth": "red"}, r"FaceStyle.mouth must be an \(R, G, B\) tuple"),
        ({"background": (1.5, 2, 3)}, r"FaceStyle.background must hold three integers"),
        ({"background": (True, 2, 3)}, r"FaceStyle.background must hold three integers"),
    ],
)
def test_bad_colours_raise(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        FaceStyle(**kwargs)  # type: ignore[arg-type]


def test_style_normalises_sequences() -> None:
    assert FaceStyle(skin=[1, 2, 3]).skin == (1, 2, 3)  # type: ignore[arg-type]


def test_bad_portraits_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        FaceRenderer(64, 64, portrait=np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="RGBA"):
        FaceRenderer(64, 64, portrait=np.zeros((64, 64, 5), np.uint8))
    with pytest.raises(ValueError, match="cannot decode portrait"):
        FaceRenderer(64, 64, portrait=tmp_path / "missing.png")
    with pytest.raises(ValueError, match=r"PortraitLayout\.mouth"):
        PortraitLayout(mouth=(0.5, 1.5))


# --------------------------------------------------------------------------- animator


def _speech_test_signal(body: NDArray[np.float32], seed: int = 1) -> NDArray[np.int16]:
    """0.5 s silence, ``body``, 0.5 s silence, over a -45 dBFS noise floor."""
    silence = np.zeros(SR // 2, np.float32)
    x = np.concatenate([silence, body, silence])
    x += np.random.default_rng(seed).normal(0.0, 0.0056, x.size).astype(np.float32)
    out: NDArray[np.int16] = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    return out


def _tone(seconds: float = 1.0) -> NDArray[np.float32]:
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def _syllables(seconds: float = 1.0) -> NDArray[np.float32]:
    """Noise shaped like speech: 4 syllables a second with short gaps between them."""
    t = np.arange(int(SR * seconds)) / SR
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    noise = np.random.default_rng(7).normal(0.0, 0.15, t.size)
    return (noise * envelope).astype(np.float32)


def _frames(states: list[FaceState]) -> NDArray[np.float64]:
    return np.array([s.mouth_open for s in states])


def test_mouth_rests_in_silence_and_opens_for_a_tone() -> None:
    states = FaceAnimator(FPS, SR).animate(_speech_test_signal(_tone()))
    mouth = _frames(states)
    assert len(mouth) == 60
    lead, speech, tail = mouth[:15], mouth[15:45], mouth[45:]
    # the -45 dBFS noise floor stays below the gate: completely closed
    assert (lead == 0.0).all()
    assert np.mean(speech > 0.5) >= 0.9
    # closes within ~150 ms of the end, then stays shut
    assert (tail[5:] < 0.05).all()
    assert tail[-1] == 0.0


def test_mouth_follows_speech_like_energy() -> None:
    states = FaceAnimator(FPS, SR).animate(_speech_test_signal(_syllables()))
    mouth = _frames(states)
    lead, speech, tail = mouth[:15], mouth[15:45], mouth[45:]
    assert (lead == 0.0).all()
    assert np.mean(speech > 0.2) >= 0.6
    # it tracks syllables rather than sticking open
    assert speech.max() > 0.7
    assert speech.std() > 0.1
    assert (tail[5:] < 0.05).all()


def _blink_frames(states: list[FaceState]) -> list[int]:
    return [i for i, s in enumerate(states) if s.eye_open < 0.1]


def test_blinks_are_natural_and_deterministic() -> None:
    silence = np.zeros(SR * 12, np.int16)
    states = FaceAnimator(FPS, SR, seed=3).animate(silence)
    closed = _blink_frames(states)
    assert closed and closed[0] < 4 * FPS  # first blink within a few seconds
    starts = [i for i in closed if i - 1 not in closed]
    assert 2 <= len(starts) <= 8  # roughly every 2-6 s over 12 s
    # a blink is brief: no more than ~4 closed frames in a row
    for s in starts:
        assert all(eye.eye_open >= 0.1 for eye in states[s + 4 : s + 6])
    # same seed, same blinks; another seed, another schedule
    assert _blink_frames(FaceAnimator(FPS, SR, seed=3).animate(silence)) == closed
    assert _blink_frames(FaceAnimator(FPS, SR, seed=4).animate(silence)) != closed


def test_idle_motion_while_silent() -> None:
    states = FaceAnimator(FPS, SR).animate(np.zeros(SR * 4, np.int16))
    ys = np.array([s.offset_y for s in states])
    xs = np.array([s.offset_x for s in states])
    assert np.ptp(ys) > 0.004 and np.ptp(xs) > 0.002
    assert np.abs(ys).max() < 0.012 and np.abs(xs).max() < 0.012
    assert all(s.mouth_open == 0.0 for s in states)


def test_interrupt_closes_the_mouth_and_reset_replays() -> None:
    anim = FaceAnimator(FPS, SR)
    tone = (_tone(0.5) * 32767).astype(np.int16)
    first = [anim.step(tone[i * 533 : (i + 1) * 533]) for i in range(10)]
    assert anim.mouth_open > 0.5
    anim.interrupt()
    assert anim.mouth_open == 0.0
    assert anim.step(None).mouth_open == 0.0
    anim.reset()
    assert anim.time == 0.0
    again = [anim.step(tone[i * 533 : (i + 1) * 533]) for i in range(10)]
    assert again == first


def test_animator_validates_arguments() -> None:
    with pytest.raises(ValueError, match="fps"):
        FaceAnimator(0, SR)
    with pytest.raises(ValueError, match="sample_rate"):
        FaceAnimator(FPS, 100)


def test_frame_sample_offsets_do_not_drift() -> None:
    sizes = {
        frame_sample_offset(i + 1, SR, FPS) - frame_sample_offset(i, SR, FPS) for i in range(30)
    }
    assert sizes == {533, 534}
    assert frame_sample_offset(30, SR, FPS) == SR
    assert frame_sample_offset(30000, 48000, 30000 / 1001) == 48048000
