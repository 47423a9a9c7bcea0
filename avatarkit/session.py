"""The avatar session every provider shares: the lifecycle from ``start()`` to ``aclose()``."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import math
import time
from collections.abc import Mapping
from typing import Any

import attrs
from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, AgentSession
from livekit.agents.job import get_job_context
from livekit.agents.metrics.base import Metadata
from livekit.agents.voice.avatar import AvatarSession
from livekit.agents.voice.io import AudioOutput

from .errors import AvatarClosedError, ConfigurationError
from .events import AvatarkitMetrics, AvatarState, AvatarStateChanged
from .http import HttpClient
from .log import logger
from .options import CORE_OPTIONS, CoreOptions
from .provider import AvatarProvider, CreateRequest, EndReason, RemoteSession
from .relay import AudioRelay
from .remote import RemoteAvatar
from .room_audio import room_audio_output
from .tokens import LiveKitSettings, mint_avatar_token

MAX_RECOVERIES = 3  # unplanned losses recovered from, before staying audio-only
RENEW_AHEAD = 60.0  # seconds before a provider's runtime cap to bring in the next session


def _option_names(options_class: type[Any]) -> list[str]:
    return [f.alias for f in attrs.fields(options_class)]


class AvatarkitSession(AvatarSession[Any]):
    """A LiveKit ``AvatarSession`` driven by an :class:`~avatarkit.AvatarProvider`.

    Get one with :func:`avatarkit.get`. ``start()`` routes the agent's audio through a relay
    that never loses it, then brings up the remote avatar (trying each ``fallback`` in turn),
    renews it before its provider's runtime cap, and moves the audio to the room (or the next
    avatar) when it is lost. Every remote session it creates is ended exactly once, on every
    path. Emits ``avatar_state_changed`` (:class:`~avatarkit.events.AvatarStateChanged`) and
    ``metrics_collected`` (:class:`~avatarkit.events.AvatarkitMetrics`).
    """

    def __init__(
        self,
        provider: AvatarProvider[Any],
        options: CoreOptions,
        fallback: AvatarkitSession | None = None,
    ) -> None:
        super().__init__()
        self._provider = provider
        self._options = options
        self._candidates: list[tuple[AvatarProvider[Any], CoreOptions]] = [(provider, options)]
        if fallback is not None:
            self._candidates += fallback._candidates
        self._index = 0
        self._lk_room: rtc.Room | None = None
        self._lk_agent_session: AgentSession[Any] | None = None
        self._started = False
        self._closing = False
        self._start_error: BaseException | None = None
        self._settings: list[LiveKitSettings] = []
        self._agent_id = ""
        self._remotes: list[RemoteAvatar] = []
        self._active: RemoteAvatar | None = None
        self._standby: RemoteAvatar | None = None
        self._lost: dict[RemoteAvatar, asyncio.Future[str]] = {}
        self._rescues: dict[RemoteAvatar, asyncio.Task[Any]] = {}
        self._relay: AudioRelay | None = None
        self._room_sink: AudioOutput | None = None
        self._own_room_sink = False
        self._restore: tuple[Any, AudioOutput | None] | None = None
        self._switch_lock = asyncio.Lock()
        self._run_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._aclose_task: asyncio.Task[None] | None = None
        self._created: asyncio.Future[None] | None = None
        self._joined: asyncio.Future[None] | None = None
        self._ack_timer: asyncio.TimerHandle | None = None
        self._state: AvatarState | None = None
        self._agent_session_closed = False

    @classmethod
    def from_options(
        cls, name: str, provider_cls: type[AvatarProvider[Any]], options: Mapping[str, Any]
    ) -> AvatarkitSession:
        """Validate ``options`` (core's and the provider's) and build the session."""
        provider_names = _option_names(provider_cls.options_class)
        valid = [*CORE_OPTIONS, *provider_names]
        for key in options:
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigurationError(
                    f"{name}: unknown option {key!r}.{hint} "
                    f"Valid options: {', '.join(sorted(valid))}"
                )
        core = CoreOptions(**{k: v for k, v in options.items() if k in CORE_OPTIONS})
        fallback = core.fallback
        if fallback is not None and (not isinstance(fallback, cls) or fallback._started):
            raise ConfigurationError(
                f"{name}: fallback must be an avatar from avatarkit.get() that was not started, "
                f"e.g. fallback=avatarkit.get('local'); got {type(fallback).__name__}"
            )
        try:
            provider_options = provider_cls.options_class(
                **{k: v for k, v in options.items() if k not in CORE_OPTIONS}
            )
        except TypeError as exc:  # attrs' own message for a missing mandatory option
            raise ConfigurationError(f"{name}: {exc}") from None
        http = HttpClient(name, core.conn_options or DEFAULT_API_CONNECT_OPTIONS, core.http_session)
        return cls(provider_cls(provider_options, http), core, fallback)

    # -- what the app sees ------------------------------------------------------------------

    @property
    def avatar_identity(self) -> str:
        """The identity of the avatar now speaking (or about to)."""
        if self._active is not None:
            return self._active.identity
        return self._options.avatar_participant_identity or self._provider.default_identity

    @property
    def provider(self) -> str:
        """The provider now in use (the first one until another takes over)."""
        return self._active.name if self._active is not None else self._provider.name

    @property
    def backend(self) -> AvatarProvider[Any]:
        """The provider object, for provider-specific calls (e.g. Runway's ``get_session``)."""
        return self._active.provider if self._active is not None else self._provider

    @property
    def state(self) -> AvatarState | None:
        return self._state

    @property
    def remote_avatars(self) -> list[RemoteAvatar]:
        """Every remote avatar this session created or tried, oldest first."""
        return list(self._remotes)

    @property
    def remote_session(self) -> RemoteSession | None:
        """The most recent remote session created."""
        created = [r.remote for r in self._remotes if r.remote is not None]
        return created[-1] if created else None

    @property
    def end_outcome(self) -> str | None:
        """How the most recent remote session was ended: ``graceful``, ``forced``,
        ``failed`` (it may still run), ``not_created``, or None while it runs."""
        if not self._remotes:
            return "not_created" if self._closing else None
        return self._remotes[-1].end_outcome

    @property
    def audio_without_avatar(self) -> float:
        """Seconds of the agent's audio played by the room because no avatar could."""
        return self._relay.room_seconds if self._relay is not None else 0.0

    async def start(
        self,
        agent_session: AgentSession[Any],
        room: rtc.Room,
        *,
        livekit_url: str | None = None,
        livekit_api_key: str | None = None,
        livekit_api_secret: str | None = None,
        wait: float | None = None,
    ) -> None:
        """Route ``agent_session``'s audio through avatarkit and bring up the avatar in ``room``.

        Returns once a remote session is created, or after ``wait`` seconds if given
        (``wait=0``: at once; provisioning goes on in the background and failures arrive as
        events and from :meth:`wait_for_join`). The agent's audio waits for the avatar at most
        ``join_timeout``, then plays through the room. Raises if every provider failed within
        the wait, after putting the audio route back.

        LiveKit settings come from these arguments, else from ``get()``'s options, else from
        ``LIVEKIT_URL`` / ``LIVEKIT_API_KEY`` / ``LIVEKIT_API_SECRET``.
        """
        if self._started:
            raise RuntimeError("this avatar session was already started; get() a new one")
        self._started = True
        try:
            self._settings = [
                LiveKitSettings.resolve(
                    livekit_url or opts.livekit_url,
                    livekit_api_key or opts.livekit_api_key,
                    livekit_api_secret or opts.livekit_api_secret,
                )
                for _, opts in self._candidates
            ]
            self._agent_id = _agent_identity(room)
        except Exception as exc:  # nothing was created yet; wait_for_join() must say so too
            self._start_error = exc
            raise

        loop = asyncio.get_running_loop()
        self._created, self._joined = loop.create_future(), loop.create_future()
        for fut in (self._created, self._joined):
            fut.add_done_callback(_retrieve)
        await super().start(agent_session, room)
        self._lk_room = room
        self._lk_agent_session = agent_session
        agent_session.on("close", self._on_agent_session_close)
        room.on("disconnected", self._on_room_disconnected)
        self._relay = AudioRelay(sample_rate=self._provider.sample_rate)
        self._relay.on_flushed = self._on_segment_flushed
        self._route_audio(agent_session, room, self._relay)
        self._run_task = asyncio.create_task(self._run(), name="avatarkit.supervisor")
        try:
            if wait is None:
                await asyncio.shield(self._created)
            elif wait > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._created), wait)
        except BaseException as exc:
            self._start_error = exc
            self._shutdown(
                "start_cancelled" if isinstance(exc, asyncio.CancelledError) else "start_failed"
            )
            await asyncio.shield(self.aclose())
            raise

    async def wait_for_join(self, *, timeout: float | None = 30.0) -> None:
        """Wait until an avatar has joined and published video; raises
        :class:`~avatarkit.AvatarClosedError` if none could."""
        if self._start_error is not None:
            raise AvatarClosedError(
                f"{self.provider} avatar did not start: {self._start_error!r}"
            ) from self._start_error
        if self._joined is None:
            raise RuntimeError("start() the avatar first")
        await asyncio.wait_for(asyncio.shield(self._joined), timeout)

    async def _wait_avatar_join(self) -> None:
        # livekit's base class waits for one identity; ours changes with renewals
        assert self._joined is not None
        with contextlib.suppress(Exception):
            await asyncio.shield(self._joined)

    async def aclose(self) -> None:
        """End every remote session, put the audio route back, release resources.

        Safe to call any number of times, from any number of tasks.
        """
        if self._aclose_task is None:
            self._aclose_task = asyncio.create_task(self._aclose(), name="avatarkit.aclose")
        await asyncio.shield(self._aclose_task)

    async def _aclose(self) -> None:
        self._shutdown("aclose")
        try:
            if self._run_task is not None:
                await asyncio.gather(self._run_task, return_exceptions=True)
            await asyncio.gather(*(r.end("aclose") for r in self._remotes), return_exceptions=True)
        finally:
            await self._restore_audio()
            if self._lk_agent_session is not None:
                self._lk_agent_session.off("close", self._on_agent_session_close)
            if self._lk_room is not None:
                self._lk_room.off("disconnected", self._on_room_disconnected)
            for task in list(self._tasks):
                task.cancel()
            self._set_state("ended", "closed")
            await super().aclose()
            for provider, _ in self._candidates:
                await provider.aclose()
                await provider.http.aclose()
            self._lk_room = self._lk_agent_session = None

    def _shutdown(self, reason: EndReason) -> None:
        """Stop supervising and end every remote session (idempotent, synchronous)."""
        if self._closing:
            return
        self._closing = True
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        if self._run_task is not None:
            self._run_task.cancel()
        for remote in self._remotes:
            remote.end(reason)
        for fut in (self._created, self._joined):
            if fut is not None and not fut.done():
                fut.set_exception(
                    AvatarClosedError(f"{self.provider} avatar was closed ({reason})")
                )

    def _on_agent_session_close(self, _: Any) -> None:
        self._agent_session_closed = True
        self._shutdown("agent_session_closed")

    def _on_room_disconnected(self, *_: Any) -> None:
        self._shutdown("room_disconnected")

    # -- supervision --------------------------------------------------------------------------

    async def _run(self) -> None:
        recoveries = 0
        while True:
            remote = await self._bring_up("start" if not self._remotes else "recovery")
            if remote is None:
                self._set_state("degraded", "no avatar could start")
                await self._to_room()
                return
            await self._hand_over(remote, None)
            while True:
                lost = self._lost[remote]
                renew_in = self._renew_at(remote) - time.monotonic()
                try:
                    await asyncio.wait_for(asyncio.shield(lost), max(renew_in, 0.0))
                    await self._rescues[remote]  # the audio moves off it first
                    break
                except asyncio.TimeoutError:
                    pass
                self._set_state("renewing", "runtime cap ahead", remote)
                fresh = await self._bring_up("renewal")
                if fresh is None:
                    logger.warning("could not renew the avatar; keeping it until it ends")
                    await asyncio.shield(lost)
                    await self._rescues[remote]
                    break
                await self._hand_over(fresh, remote)
                remote = fresh
            if self._options.on_loss == "audio_only" or recoveries >= MAX_RECOVERIES:
                return
            recoveries += 1

    async def _bring_up(self, why: str) -> RemoteAvatar | None:
        """Create and join a remote avatar, trying each provider from the current one."""
        assert self._lk_room is not None and self._created is not None
        error: BaseException | None = None
        for i in range(self._index, len(self._candidates)):
            provider, options = self._candidates[i]
            remote = self._new_remote(i)
            self._set_state("starting", why, remote)
            try:
                await asyncio.wait_for(self._create_and_join(remote), options.join_timeout)
            except (Exception, asyncio.TimeoutError) as exc:
                timed_out = isinstance(exc, asyncio.TimeoutError)
                error = exc
                if timed_out:
                    error = AvatarClosedError(
                        f"{provider.name} avatar did not join within {options.join_timeout} s"
                    )
                logger.warning("%s avatar failed to start: %r", provider.name, error)
                remote.end("join_timeout" if timed_out else "start_failed")
                if i + 1 < len(self._candidates):
                    self._set_state("failed_over", f"{provider.name}: {error}", remote)
                continue
            self._index = i
            if self._joined is not None and not self._joined.done():
                self._joined.set_result(None)
            self._emit(
                "joined",
                remote,
                session_started_time=time.time() - (time.monotonic() - remote.started_at),
                avatar_joined_time=time.time(),
                join_latency=_since(remote.started_at, remote.joined_at),
                first_frame_latency=_since(remote.started_at, remote.first_frame_at),
            )
            return remote
        if not self._created.done():
            self._created.set_exception(error or AvatarClosedError("no avatar provider"))
        if self._joined is not None and not self._joined.done():
            self._joined.set_exception(AvatarClosedError(f"no avatar could start: {error!r}"))
        return None

    async def _create_and_join(self, remote: RemoteAvatar) -> None:
        assert self._created is not None
        await remote.create()
        if not self._created.done():
            self._created.set_result(None)
        await remote.join()

    def _new_remote(self, index: int) -> RemoteAvatar:
        assert self._lk_room is not None
        provider, options = self._candidates[index]
        base = options.avatar_participant_identity or provider.default_identity
        # two avatars overlap during a renewal, so each remote session gets its own identity
        taken = {r.identity for r in self._remotes}
        identity, n = base, 1
        while identity in taken:
            identity, n = f"{base}-{n}", n + 1
        settings = self._settings[index]
        request = CreateRequest(
            room=self._lk_room,
            room_name=self._lk_room.name,
            livekit_url=settings.url,
            avatar_token=mint_avatar_token(
                settings,
                room_name=self._lk_room.name,
                identity=identity,
                name=options.avatar_participant_name or identity,
                agent_identity=self._agent_id,
                lifetime=provider.session_lifetime(),
            ),
            agent_identity=self._agent_id,
            avatar_identity=identity,
            avatar_name=options.avatar_participant_name or identity,
        )
        remote = RemoteAvatar(provider, request, on_lost=self._on_lost)
        self._lost[remote] = asyncio.get_running_loop().create_future()
        self._remotes.append(remote)
        return remote

    def _renew_at(self, remote: RemoteAvatar) -> float:
        start = remote.created_at or remote.started_at
        options = self._candidates[self._index][1]
        if options.renew_after is not None:
            return start + options.renew_after
        cap = _cap(remote.provider)
        if cap is None:
            return math.inf
        return start + max(cap - RENEW_AHEAD, cap / 2)

    async def _hand_over(self, fresh: RemoteAvatar, old: RemoteAvatar | None) -> None:
        """Move the agent's audio to ``fresh`` at an utterance boundary, then end ``old``."""
        relay = self._relay
        assert relay is not None and fresh.output is not None
        self._standby = fresh
        if relay.sink is not None and relay.busy:
            waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(relay.wait_idle())]
            if old is not None:
                waits.append(asyncio.ensure_future(asyncio.shield(self._lost[old])))
                cap = _cap(old.provider)
                deadline = (old.created_at or old.started_at) + cap - 1.0 if cap else None
            else:
                deadline = None
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            _, pending = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for w in pending:
                w.cancel()
        async with self._switch_lock:
            self._standby = None
            if relay.sink is not fresh.output:
                heard = None
                if relay.busy and old is not None and relay.sink is old.output:
                    # the old one's cap is here and the agent is still speaking
                    heard = await self._detach(old)
                relay.switch(fresh.output, heard=heard)
            self._active = fresh
        if old is not None:
            self._spawn(self._retire(old, fresh))
        self._set_state("joined", "renewed" if old is not None else "joined", fresh)

    async def _retire(self, old: RemoteAvatar, fresh: RemoteAvatar) -> None:
        """End the session a renewal replaced; report how long the agent had no avatar video
        (the old one gone before the new one's first frame)."""
        await old.end("renewed" if old.lost_reason is None else "avatar_lost")
        gone = old.lost_at or time.monotonic()
        first = fresh.first_frame_at or fresh.joined_at or gone
        self._emit("renewed", fresh, renewal_gap=max(0.0, first - gone))

    def _on_lost(self, remote: RemoteAvatar, reason: str) -> None:
        remote.lost_at = time.monotonic()
        fut = self._lost.get(remote)
        if fut is not None and not fut.done():
            fut.set_result(reason)
        if not self._closing:
            self._rescues[remote] = self._spawn(self._rescue(remote, reason))

    async def _rescue(self, remote: RemoteAvatar, reason: str) -> None:
        """Move the audio off a lost avatar, replaying what the user did not hear."""
        relay = self._relay
        assert relay is not None
        async with self._switch_lock:
            if remote.output is None or relay.sink is not remote.output:
                remote.end("avatar_lost")
                return
            lost_at = time.monotonic()
            heard = await self._detach(remote)
            if self._closing:  # aclose() ends the utterance; nothing to move it to
                remote.end("avatar_lost")
                return
            standby = self._standby
            if standby is not None and standby.lost_reason is None and standby.output is not None:
                relay.switch(standby.output, heard=heard)
            else:
                relay.switch(self._room_sink, heard=heard, room=True)
                self._active = None
                self._set_state("degraded", reason, remote)
            self._emit("lost", remote, loss_to_audible=time.monotonic() - lost_at)
        remote.end("avatar_lost")

    async def _detach(self, remote: RemoteAvatar) -> int:
        """Stop sending to ``remote`` and return how much of the current utterance it played:
        measured from its audio track when possible, else estimated from the clock."""
        relay = self._relay
        assert relay is not None and remote.output is not None
        lo, hi, sent_at = relay.base, relay.sent, relay.sent_at
        pcm = relay.segment_pcm()[:hi]
        relay.switch(None)  # hold the audio; the avatar's late events no longer count
        if remote.identity in remote.room.remote_participants:
            # still there (frozen, or slow to acknowledge): make it stop talking, so that
            # what it played is final when we measure it
            remote.output.clear_buffer()
        tracker = remote.tracker
        if tracker is None or tracker.last_frame_at is None:
            # nothing known of its audio: estimate from the clock
            elapsed = 0.0 if sent_at is None else time.monotonic() - sent_at
            return min(lo + int(elapsed * remote.provider.sample_rate), hi)
        await tracker.settle()  # its last audio may still be on its way to us
        measured = tracker.heard(pcm, sent_at)
        # unrecognisable audio: repeating some of the utterance beats dropping some
        return lo if measured is None else min(max(measured, lo), hi)

    def _on_segment_flushed(self, segment: int, remaining: float) -> None:
        relay, remote = self._relay, self._active
        if relay is None or remote is None or relay.sink is not remote.output:
            return
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        timeout = remaining + self._candidates[self._index][1].ack_timeout

        def check() -> None:
            if relay.busy and relay.segment_id == segment and relay.sink is remote.output:
                remote.lose(f"no playback_finished {timeout:.1f} s after the utterance was sent")

        self._ack_timer = asyncio.get_running_loop().call_later(timeout, check)

    async def _to_room(self) -> None:
        async with self._switch_lock:
            assert self._relay is not None
            self._relay.switch(self._room_sink, room=True)
            self._active = None

    def _set_state(
        self, state: AvatarState, reason: str, remote: RemoteAvatar | None = None
    ) -> None:
        previous, self._state = self._state, state
        provider = remote.name if remote is not None else self.provider
        session_id = remote.session_id if remote is not None else None
        logger.info(
            "avatar %s (%s)", state, reason, extra={"provider": provider, "session_id": session_id}
        )
        self.emit(
            "avatar_state_changed",
            AvatarStateChanged(state, previous, provider, session_id, reason),
        )

    def _emit(self, event: str, remote: RemoteAvatar, **fields: Any) -> None:
        if self._lk_agent_session is None:
            return
        now = time.time()
        self._emit_metrics(
            AvatarkitMetrics(
                timestamp=now,
                event=event,
                provider=remote.name,
                session_id=remote.session_id,
                metadata=Metadata(model_provider=remote.name),
                audio_without_avatar=self.audio_without_avatar,
                **fields,
            )
        )

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the agent's audio route ---------------------------------------------------------

    def _route_audio(
        self, agent_session: AgentSession[Any], room: rtc.Room, relay: AudioRelay
    ) -> None:
        # Remember exactly what is replaced, so close and failure can put it back.
        proxy = _sink_proxy(agent_session.output.audio)
        if proxy is not None:
            previous = proxy.next_in_chain
            self._restore = (proxy, previous)
            proxy.set_next_in_chain(relay)
        else:
            previous = agent_session.output.audio
            self._restore = (None, previous)
            agent_session.output.audio = relay
        if previous is None:
            # livekit's RoomIO will not publish the agent's audio now that an output is set,
            # so the fallback to room audio needs one of our own, published ahead of need
            previous = room_audio_output(room, sample_rate=relay.sample_rate or 24000)
            self._own_room_sink = True
        self._room_sink = previous

    async def _restore_audio(self) -> None:
        relay, agent_session = self._relay, self._lk_agent_session
        if relay is None or self._restore is None or agent_session is None:
            return
        proxy, previous = self._restore
        previous = previous or self._room_sink
        if proxy is not None and proxy.next_in_chain is relay and previous is not None:
            proxy.set_next_in_chain(previous)
        elif agent_session.output.audio is relay:
            agent_session.output.audio = previous
        await relay.aclose()
        if self._own_room_sink and self._room_sink is not None:
            # it now carries the agent's audio; it goes when the AgentSession does
            sink = self._room_sink
            if self._agent_session_closed:
                await _aclose_sink(sink)
            else:
                agent_session.once("close", lambda _: self._spawn(_aclose_sink(sink)))
        self._restore = None


def _sink_proxy(sink: AudioOutput | None) -> Any:
    # The AgentSession puts a swap point (livekit's _AudioSinkProxy) at the bottom of its
    # wrapper chain once started; replace_audio_tail() swaps below it, and so do we.
    while sink is not None:
        if hasattr(sink, "set_next_in_chain"):
            return sink
        sink = sink.next_in_chain
    return None


def _agent_identity(room: rtc.Room) -> str:
    job_ctx = get_job_context(required=False)
    if job_ctx is not None:
        return job_ctx.local_participant_identity
    if room.isconnected():
        return room.local_participant.identity
    raise ConfigurationError(
        "outside a LiveKit job, connect the room before starting the avatar: "
        "its local participant's identity is the agent identity the avatar speaks for"
    )


def _cap(provider: AvatarProvider[Any]) -> float | None:
    caps = [c for c in (provider.limits.runtime_cap, provider.session_lifetime()) if c]
    return min(caps) if caps else None


def _since(start: float, end: float | None) -> float | None:
    return None if end is None else end - start


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # failures reach the app through wait_for_join() and events


async def _aclose_sink(sink: AudioOutput) -> None:
    aclose = getattr(sink, "aclose", None)
    if aclose is not None:
        await aclose()
