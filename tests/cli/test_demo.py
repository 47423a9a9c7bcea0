"""`avatarkit demo`, the README's main job: the whole path to an MP4 a person can play."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from avatarkit import ProviderSpec
from avatarkit_cli.app import app
from avatarkit_cli.clips import bundled_utterances
from avatarkit_providers.local.render import FaceRenderer

SIZE = 128


def mouth_and_audio(path: Path) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Per video frame: how open the mouth looks (dark pixels in its box) and how loud the
    audio is at that moment; plus the file's duration and frame count."""
    x0, y0, x1, y1 = FaceRenderer(SIZE, SIZE).mouth_box
    pad = 4
    with av.open(str(path)) as container:
        duration = (container.duration or 0) / 1e6
        nframes = container.streams.video[0].frames
        times, mouth = [], []
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24").astype(int)
            box = rgb[y0 - pad : y1 + pad, x0 - pad : x1 + pad].sum(axis=2)
            mouth.append(float((box < 250).sum()))
            assert frame.pts is not None and frame.time_base is not None
            times.append(float(frame.pts * frame.time_base))
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.start_time is not None and stream.time_base is not None
        start = float(stream.start_time * stream.time_base)
        rate = stream.rate
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    loud = []
    for t in times:
        i = int((t - start) * rate)
        window = pcm[max(i, 0) : max(i, 0) + rate // 30]
        loud.append(float(np.abs(window).mean()) if i >= 0 and len(window) else 0.0)
    return np.array(mouth), np.array(loud), duration, nframes


@pytest.mark.parametrize("provider", ["runway", "local"])
def test_demo_writes_a_playable_lip_synced_mp4(tmp_path: Path, provider: str) -> None:
    out = tmp_path / "demo.mp4"
    result = CliRunner().invoke(
        app, ["demo", "--provider", provider, "--size", str(SIZE), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = result.output
    for event in ("created", "joined", "utterance 1 played", "utterance 2 played", "ended"):
        assert text.count(f"  {event}  ") == 1, text  # the timeline is printed once, live
    assert "graceful" in text
    # then one summary line (rich may wrap it)
    summary = " ".join(text.split()).partition("remote session")[2]
    assert "joined in" in summary and "first frame in" in summary and "video frames)" in summary
    if provider == "runway":
        assert "runway (emulated)" in text  # never passed off as the real service
        assert "COMPLETED" in text

    speech = sum(u.duration for u in bundled_utterances()) + 1.0  # one pause between
    mouth, loud, duration, nframes = mouth_and_audio(out)
    assert speech - 0.5 <= duration <= speech + 2.5
    assert abs(nframes - 30 * duration) <= 0.1 * 30 * duration  # 30 fps, few drops

    speaking, silent = loud > 0.02, loud < 0.002
    assert speaking.sum() > 100 and silent.sum() > 10  # the pause is in the file
    # The mouth moves with the speech and rests when there is none: measured above the
    # closed mouth's own pixels (the lips), it opens far more in speech than in silence.
    rest = mouth.min()
    opened_in_speech = mouth[speaking].mean() - rest
    opened_in_silence = np.median(mouth[silent]) - rest
    assert opened_in_speech > 3 * max(opened_in_silence, 1.0)


def test_a_provider_without_a_double_is_refused_naming_those_that_have_one(
    third_party: Callable[[ProviderSpec], None],
) -> None:
    third_party(ProviderSpec("mirror", "third-party", "tests.helpers.echo:MirrorProvider"))
    result = CliRunner().invoke(app, ["demo", "--provider", "mirror"])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())  # unwrapped from rich's box
    assert "mirror cannot run here with no account" in said
    assert "declares no double" in said
    choices = said.partition("Choose one of: ")[2].split()
    assert {"local,", "runway,", "tavus"} <= set(choices) and "mirror" not in said.split("Choose")[
        1
    ]


async def test_frames_arriving_in_bursts_still_make_a_valid_mp4(tmp_path: Path) -> None:
    # Video arrival times are irregular on a busy machine: frames 1 ms apart must not
    # collide in the encoder's clock (which once made the muxer refuse the file).
    from avatarkit_cli.recording import AvatarRecorder

    class NoRoom:
        remote_participants: dict[str, object] = {}

        def on(self, *_: object) -> None: ...

        def off(self, *_: object) -> None: ...

    path = tmp_path / "bursty.mp4"
    recorder = AvatarRecorder(NoRoom(), "avatar", path=path)  # type: ignore[arg-type]
    rgb = np.zeros((64, 64, 3), np.uint8)
    t = 0.0
    for i in range(120):
        t += 0.001 if i % 3 else 0.066
        rgb[:] = i
        recorder._encode_video(rgb.copy(), t)
    recorder.recording.audio = [np.zeros(48000, np.int16)]
    recorder.recording.audio_start = 0.0
    await recorder.aclose()
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 120
        assert len(container.streams.audio) == 1
