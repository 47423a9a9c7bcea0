"""Each private livekit-agents API avatarkit relies on (all of them go through
``avatarkit._compat``) is still there, shaped as expected, and still used by livekit as
expected. A failure names what moved, so an upgrade of livekit-agents says what to fix."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from typing import Any

import pytest
from livekit import rtc
from livekit.agents.voice.io import AudioOutput

try:
    from avatarkit._compat import (
        RPC_CLEAR_BUFFER,
        RPC_PLAYBACK_FINISHED,
        RPC_PLAYBACK_STARTED,
        AvatarSessionHooks,
        DataStreamOutputHooks,
        DataStreamReceiverHooks,
        Handler,
        ParticipantAudioOutput,
        pending_playbacks,
        published_track,
        swap_point,
    )
except ImportError as exc:  # a private module or name moved: say which
    pytest.fail(
        f"avatarkit._compat no longer imports against the installed livekit-agents: {exc}",
        pytrace=False,
    )
from avatarkit.events import AvatarkitMetrics
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.outputs import NullOutput

DATASTREAM = "livekit.agents.voice.avatar._datastream_io"
KW = inspect.Parameter.KEYWORD_ONLY
POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
RPC_HOOK = [("room", POS), ("caller_identity", KW), ("handler", KW)]


def private(path: str) -> Any:
    """``module:Attr.attr`` from the installed livekit-agents, or a failure naming it."""
    module_name, _, dotted = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        pytest.fail(
            f"livekit-agents no longer has the module {module_name} ({exc}); "
            "avatarkit._compat imports from it"
        )
    for part in dotted.split(".") if dotted else []:
        if not hasattr(obj, part):
            pytest.fail(
                f"livekit-agents no longer has {path} (no {part!r}); avatarkit._compat relies on it"
            )
        obj = getattr(obj, part)
    return obj


def params(func: Any) -> list[tuple[str, Any]]:
    return [
        (p.name, p.kind) for p in inspect.signature(func).parameters.values() if p.name != "self"
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"{DATASTREAM}:DataStreamAudioOutput._register_playback_finished_rpc", RPC_HOOK),
        (f"{DATASTREAM}:DataStreamAudioOutput._register_playback_started_rpc", RPC_HOOK),
        (f"{DATASTREAM}:DataStreamAudioReceiver._register_clear_buffer_rpc", RPC_HOOK),
        (f"{DATASTREAM}:DataStreamAudioOutput._handle_playback_finished", [("data", POS)]),
        (f"{DATASTREAM}:DataStreamAudioOutput._handle_playback_started", [("data", POS)]),
        ("livekit.agents.voice.io:_AudioSinkProxy.set_next_in_chain", [("new", POS)]),
        ("livekit.agents.voice.avatar._types:AvatarSession._wait_avatar_join", []),
        ("livekit.agents.voice.avatar._types:AvatarSession._emit_metrics", [("metrics", POS)]),
        (
            "livekit.agents.inference._utils:create_access_token",
            [("api_key", POS), ("api_secret", POS), ("ttl", POS)],
        ),
        ("livekit.agents.inference._utils:get_inference_headers", [("inference_class", KW)]),
    ],
)
def test_private_methods_keep_their_signature(path: str, expected: list[tuple[str, Any]]) -> None:
    found = params(private(path))
    assert found == expected, f"livekit-agents changed the signature of {path}: {found}"


def test_rpc_method_names_are_the_wire_protocol() -> None:
    assert private(f"{DATASTREAM}:RPC_PLAYBACK_FINISHED") == RPC_PLAYBACK_FINISHED
    assert (RPC_PLAYBACK_FINISHED, RPC_PLAYBACK_STARTED, RPC_CLEAR_BUFFER) == (
        "lk.playback_finished",
        "lk.playback_started",
        "lk.clear_buffer",
    ), "livekit-agents renamed the playback RPCs: avatars on the wire no longer match"


def test_the_participant_audio_output_is_still_roomio_s() -> None:
    cls = private("livekit.agents.voice.room_io._output:_ParticipantAudioOutput")
    assert issubclass(cls, AudioOutput)
    names = [n for n, _ in params(cls.__init__)]
    assert names[:1] == ["room"] and {
        "sample_rate",
        "num_channels",
        "track_publish_options",
        "track_name",
    } <= set(names), f"_ParticipantAudioOutput.__init__ changed: {names}"
    assert inspect.iscoroutinefunction(cls.start), "_ParticipantAudioOutput.start() changed"


async def test_the_participant_audio_output_keeps_its_publication(agent_room: MemoryRoom) -> None:
    output = ParticipantAudioOutput(
        agent_room,
        sample_rate=16000,
        num_channels=1,
        track_publish_options=rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        track_name="roomio_audio",
    )
    assert published_track(output) is None
    start = asyncio.create_task(output.start())  # publishes, then waits for a subscriber
    try:
        for _ in range(200):
            if published_track(output) is not None:
                break
            await asyncio.sleep(0.01)
        publication = published_track(output)
        assert isinstance(publication, rtc.LocalTrackPublication), (
            "_ParticipantAudioOutput._publication is gone: avatarkit cannot unpublish the "
            "agent's track it published"
        )
        assert publication.name == "roomio_audio"
    finally:
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        await output.aclose()


_Sink = NullOutput


def test_the_swap_point_is_found_below_wrappers_and_only_there() -> None:
    assert not hasattr(AudioOutput, "set_next_in_chain"), (
        "every AudioOutput now has set_next_in_chain: swap_point() can no longer tell "
        "livekit's _AudioSinkProxy by it"
    )
    proxy_cls = private("livekit.agents.voice.io:_AudioSinkProxy")
    assert isinstance(inspect.getattr_static(proxy_cls, "next_in_chain"), property)
    first, second = _Sink(), _Sink()
    proxy = proxy_cls(first)
    wrapper = _Sink(next_in_chain=proxy)
    found = swap_point(wrapper)
    assert found is proxy and found.next_in_chain is first
    found.set_next_in_chain(second)
    assert proxy.next_in_chain is second
    assert swap_point(_Sink()) is None


async def test_pending_playbacks_counts_unfinished_segments() -> None:
    private("livekit.agents.voice.io:AudioOutput._pending_playback_count")
    sink = _Sink()
    assert pending_playbacks(sink) == 0
    await sink.capture_frame(rtc.AudioFrame(b"\0\0" * 160, 16000, 1, 160))
    sink.flush()
    assert pending_playbacks(sink) == 1
    sink.on_playback_finished(playback_position=0.01, interrupted=False)
    assert pending_playbacks(sink) == 0


async def test_the_output_registers_its_playback_rpcs_through_the_hooks(
    agent_room: MemoryRoom,
) -> None:
    routed: list[tuple[Any, str, str, Handler]] = []
    registered = asyncio.Event()

    class Recording(DataStreamOutputHooks):
        def _route_rpc(self, room: rtc.Room, method: str, caller: str, handler: Handler) -> None:
            routed.append((room, method, caller, handler))
            registered.set()

    output = Recording(agent_room, destination_identity="avatar-x", wait_playback_start=True)
    try:
        await asyncio.wait_for(registered.wait(), 5)
        assert output.output_room is agent_room, "DataStreamAudioOutput._room moved"
        assert [r[1:] for r in routed[:2]] == output.playback_routes(), (
            "DataStreamAudioOutput no longer registers its playback RPCs through "
            "_register_playback_*_rpc with _destination_identity and _handle_playback_*"
        )
        assert all(room is agent_room for room, *_ in routed)
        assert isinstance(output.start_task, asyncio.Task), "DataStreamAudioOutput._start_atask"
    finally:
        if output.start_task is not None:
            output.start_task.cancel()
            await asyncio.gather(output.start_task, return_exceptions=True)


async def test_the_receiver_registers_clear_buffer_through_the_hook(
    livekit: MemoryLiveKit, agent_room: MemoryRoom
) -> None:
    avatar_room = await livekit.join("room-1", "avatar-x")
    routed: list[tuple[Any, str, str]] = []

    class Recording(DataStreamReceiverHooks):
        def _route_rpc(self, room: rtc.Room, method: str, caller: str, handler: Handler) -> None:
            routed.append((room, method, caller))

    receiver = Recording(avatar_room, sender_identity="agent-1")
    await asyncio.wait_for(receiver.start(), 5)
    try:
        assert routed == [(avatar_room, RPC_CLEAR_BUFFER, "agent-1")], (
            "DataStreamAudioReceiver no longer registers lk.clear_buffer through "
            "_register_clear_buffer_rpc"
        )
        assert receiver.receiver_room is avatar_room, "DataStreamAudioReceiver._room moved"
    finally:
        await receiver.aclose()


async def test_the_avatar_session_hooks_are_called(agent_room: MemoryRoom) -> None:
    class AgentSessionDouble(rtc.EventEmitter[str]):
        pass

    joined = asyncio.Event()

    class Hooked(AvatarSessionHooks):
        @property
        def avatar_identity(self) -> str:
            return "avatar-x"

        async def _wait_joined(self) -> None:
            joined.set()

    agent_session = AgentSessionDouble()
    seen: list[Any] = []
    agent_session.on("metrics_collected", seen.append)
    session = Hooked()
    on_session: list[Any] = []
    session.on("metrics_collected", on_session.append)
    await session.start(agent_session, agent_room)  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(joined.wait(), 5)  # AvatarSession._wait_avatar_join -> ours
        metrics = AvatarkitMetrics(timestamp=0.0, event="joined", provider="x")
        session._publish_metrics(metrics)  # AvatarSession._emit_metrics
        assert on_session == [metrics]
        assert [ev.metrics for ev in seen] == [metrics]
    finally:
        await session.aclose()
