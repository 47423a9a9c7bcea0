"""The avatar session the app sees: options, lifecycle and events, from ``start()`` to
``aclose()``.

The work is elsewhere: the policy (bring-up, failover, renewal, rescue) in
:mod:`avatarkit.supervisor`, the edits to livekit's audio chain in :mod:`avatarkit.audio_route`,
each remote session in :mod:`avatarkit.remote`.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import enum
import functools
import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, AgentSession
from livekit.agents.job import get_job_context
from livekit.agents.metrics.base import Metadata
from livekit.agents.voice.io import AudioOutput

from ._compat import AvatarSessionHooks
from .audio_route import AudioRoute
from .errors import AvatarClosedError, ConfigurationError
from .events import AvatarkitMetrics, AvatarState, AvatarStateChanged
from .http import HttpClient
from .log import logger
from .options import CORE_OPTIONS, CoreOptions
from .provider import AvatarProvider, CreateRequest, EndReason, RemoteSession
from .relay import AudioRelay
from .remote import RemoteAvatar
from .supervisor import MAX_RECOVERIES, RENEW_AHEAD, Candidate, Supervisor, runtime_cap
from .tokens import LiveKitSettings, mint_avatar_token

__all__ = ["MAX_RECOVERIES", "RENEW_AHEAD", "AvatarkitSession", "Lifecycle"]


class Lifecycle(enum.Enum):
    """Where an :class:`AvatarkitSession` is in its life; it only moves forward."""

    NEW = "new"
    """Built by ``get()``; ``start()`` not called yet."""
    STARTING = "starting"
    """``start()`` is routing the audio and waiting for a remote session to be created."""
    RUNNING = "running"
    """``start()`` returned; the supervisor keeps an avatar (or the room) speaking."""
    STOPPED = "stopped"
    """Supervision stopped without ``aclose()``: the room went away, the AgentSession closed,
    or ``start()`` failed. Every remote session is being ended; ``aclose()`` releases the rest."""
    CLOSING = "closing"
    """``aclose()`` is ending the remote sessions, restoring the audio route, releasing."""
    CLOSED = "closed"
    """``aclose()`` finished."""


_ACTIVE = (Lifecycle.STARTING, Lifecycle.RUNNING)


def _option_names(options_class: type[Any]) -> list[str]:
    return [f.alias for f in attrs.fields(options_class)]


class AvatarkitSession(AvatarSessionHooks):
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
        self._fallback_of: AvatarkitSession | None = None
        """The avatar that took this one as its fallback (and so owns its providers)."""
        if fallback is not None:
            self._candidates += fallback._candidates
            fallback._fallback_of = self
        self._guards: dict[tuple[str, Callable[..., Any]], Callable[..., None]] = {}
        self._lifecycle = Lifecycle.NEW
        self._start_error: BaseException | None = None
        self._avatar_state: AvatarState | None = None
        self._lk_room: rtc.Room | None = None
        self._lk_agent_session: AgentSession[Any] | None = None
        self._settings: list[LiveKitSettings] = []
        self._relay: AudioRelay | None = None
        self._route: AudioRoute | None = None
        self._supervisor: Supervisor[RemoteAvatar, AudioOutput] | None = None
        self._aclose_task: asyncio.Task[None] | None = None

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
        if fallback is not None and (
            not isinstance(fallback, cls) or fallback.lifecycle is not Lifecycle.NEW
        ):
            raise ConfigurationError(
                f"{name}: fallback must be an avatar from avatarkit.get() that was not started, "
                f"e.g. fallback=avatarkit.get('local'); got {type(fallback).__name__}"
            )
        if fallback is not None and fallback._fallback_of is not None:
            # the two avatars would share its provider objects and HTTP clients: closing
            # one would stop the other's avatar
            raise ConfigurationError(
                f"{name}: this fallback ({fallback.provider}) is already the fallback of another "
                "avatar; get() a new fallback for each avatar, e.g. "
                "fallback=avatarkit.get('local') in each call"
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
    def lifecycle(self) -> Lifecycle:
        """Where this session is in its life (see :class:`Lifecycle`)."""
        return self._lifecycle

    @property
    def _active(self) -> RemoteAvatar | None:
        return self._supervisor.active if self._supervisor is not None else None

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
        return self._avatar_state

    @property
    def remote_avatars(self) -> list[RemoteAvatar]:
        """Every remote avatar this session created or tried, oldest first."""
        return self._supervisor.remotes if self._supervisor is not None else []

    @property
    def remote_session(self) -> RemoteSession | None:
        """The most recent remote session created."""
        created = [r.remote for r in self.remote_avatars if r.remote is not None]
        return created[-1] if created else None

    @property
    def end_outcome(self) -> str | None:
        """How the most recent remote session was ended: ``graceful``, ``forced``,
        ``failed`` (it may still run), ``not_created``, or None while it runs."""
        remotes = self.remote_avatars
        if not remotes:
            ending = self._lifecycle in (Lifecycle.CLOSING, Lifecycle.CLOSED) or (
                self._supervisor is not None and self._supervisor.stopped
            )
            return "not_created" if ending else None
        return remotes[-1].end_outcome

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
        if self._lifecycle is not Lifecycle.NEW:
            raise RuntimeError(
                f"this avatar session was already {self._lifecycle.value} when start() was "
                "called again; an avatar starts once: get() a new one"
            )
        if self._fallback_of is not None:
            raise RuntimeError(
                f"this {self._provider.name} avatar is the fallback of a "
                f"{self._fallback_of._provider.name} avatar: start that one, or get() a "
                "separate avatar to start on its own"
            )
        self._lifecycle = Lifecycle.STARTING
        try:
            settings = [
                LiveKitSettings.resolve(
                    livekit_url or opts.livekit_url,
                    livekit_api_key or opts.livekit_api_key,
                    livekit_api_secret or opts.livekit_api_secret,
                )
                for _, opts in self._candidates
            ]
            agent_id = _agent_identity(room)
            for provider, opts in self._candidates:
                identity = opts.avatar_participant_identity or provider.default_identity
                if identity == agent_id:
                    raise ConfigurationError(
                        f"{provider.name}: the avatar's identity {identity!r} is the agent's "
                        "own; LiveKit would disconnect the agent when the avatar joins. "
                        "Pass another avatar_participant_identity to avatarkit.get()"
                    )
        except Exception as exc:  # nothing was created yet; wait_for_join() must say so too
            self._start_error = exc
            self._lifecycle = Lifecycle.STOPPED
            raise

        self._settings = settings
        relay = self._relay = AudioRelay(sample_rate=self._provider.sample_rate)
        self._supervisor = Supervisor(
            [_candidate(provider, options) for provider, options in self._candidates],
            relay,
            make_remote=functools.partial(self._new_remote, room, settings, agent_id),
            on_loss=self._options.on_loss,
            early_audio=self._options.early_audio,
            on_state=self._set_state,
            on_metrics=self._emit,
        )
        await super().start(agent_session, room)
        self._lk_room = room
        self._lk_agent_session = agent_session
        agent_session.on("close", self._on_agent_session_close)
        room.on("disconnected", self._on_room_disconnected)
        self._route = AudioRoute(agent_session, room, relay)
        self._route.install()
        self._supervisor.start(self._route.room_sink)
        try:
            if wait is None:
                await asyncio.shield(self._supervisor.created)
            elif wait > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._supervisor.created), wait)
        except BaseException as exc:
            self._start_error = exc
            self._stop(
                "start_cancelled" if isinstance(exc, asyncio.CancelledError) else "start_failed"
            )
            await asyncio.shield(self.aclose())
            raise
        if self._lifecycle is Lifecycle.STARTING:
            self._lifecycle = Lifecycle.RUNNING

    async def switch(self, other: AvatarkitSession) -> None:
        """Move the agent to ``other`` (a fresh ``avatarkit.get(...)``: another avatar or another
        provider, with its own fallbacks) mid-call.

        The new avatar is brought up while this one keeps talking; the audio moves to it at
        the next utterance boundary, with nothing lost or repeated, and the old session is
        ended. If it does not join, this one stays, an ``avatar_state_changed`` event says
        why, and the error is raised. Later renewals and recoveries use the new provider.
        """
        if self._supervisor is None or self._lifecycle is not Lifecycle.RUNNING:
            raise RuntimeError(
                f"switch() needs a running avatar session; this one is {self._lifecycle.value}"
            )
        if other is self or other._lifecycle is not Lifecycle.NEW or other._fallback_of:
            raise RuntimeError(
                "switch() takes a fresh avatarkit.get(...) that was never started (nor used as "
                "a fallback)"
            )
        settings = [
            LiveKitSettings.resolve(opts.livekit_url, opts.livekit_api_key, opts.livekit_api_secret)
            if opts.livekit_url or opts.livekit_api_key or opts.livekit_api_secret
            else self._settings[0]
            for _, opts in other._candidates
        ]
        other._lifecycle = Lifecycle.CLOSED  # its providers now belong to this session
        self._candidates += other._candidates
        self._settings += settings
        await self._supervisor.switch([_candidate(p, o) for p, o in other._candidates])

    async def wait_for_join(self, *, timeout: float | None = 30.0) -> None:
        """Wait until an avatar has joined and published video; raises
        :class:`~avatarkit.AvatarClosedError` if none could."""
        if self._start_error is not None:
            raise AvatarClosedError(
                f"{self.provider} avatar did not start: {self._start_error!r}"
            ) from self._start_error
        if self._supervisor is None:
            if self._lifecycle is Lifecycle.NEW:
                raise RuntimeError("start() the avatar first")
            raise RuntimeError("this avatar session was closed before it was started")
        await asyncio.wait_for(asyncio.shield(self._supervisor.joined), timeout)

    async def _wait_joined(self) -> None:
        # livekit's base class waits for one identity; ours changes with renewals
        assert self._supervisor is not None
        with contextlib.suppress(Exception):
            await asyncio.shield(self._supervisor.joined)

    async def aclose(self) -> None:
        """End every remote session, put the audio route back, release resources.

        Safe to call any number of times, from any number of tasks.
        """
        if self._lifecycle not in (Lifecycle.CLOSING, Lifecycle.CLOSED):
            self._stop("aclose")
            self._lifecycle = Lifecycle.CLOSING
            self._aclose_task = asyncio.create_task(self._aclose(), name="avatarkit.aclose")
        assert self._aclose_task is not None
        await asyncio.shield(self._aclose_task)

    async def _aclose(self) -> None:
        try:
            if self._supervisor is not None:
                await self._supervisor.finish()
        finally:
            try:
                if self._route is not None:
                    await self._route.restore()
                if self._lk_agent_session is not None:
                    self._lk_agent_session.off("close", self._on_agent_session_close)
                if self._lk_room is not None:
                    self._lk_room.off("disconnected", self._on_room_disconnected)
                if self._supervisor is not None:
                    self._supervisor.cancel_tasks()
                self._set_state("ended", "closed")
                await super().aclose()
                for provider, _ in self._candidates:
                    await provider.aclose()
                    await provider.http.aclose()
                self._lk_room = self._lk_agent_session = None
            finally:
                self._lifecycle = Lifecycle.CLOSED

    def _stop(self, reason: EndReason) -> None:
        """Stop supervising and end every remote session (once; synchronous)."""
        if self._lifecycle not in _ACTIVE:
            return
        self._lifecycle = Lifecycle.STOPPED
        if self._supervisor is not None:
            self._supervisor.stop(reason)

    def _on_agent_session_close(self, _: Any) -> None:
        self._stop("agent_session_closed")

    def _on_room_disconnected(self, *_: Any) -> None:
        self._stop("room_disconnected")

    # -- the app's event handlers ------------------------------------------------------------

    def on(self, event: str, callback: Callable[..., Any] | None = None) -> Callable[..., Any]:
        """Register ``callback`` for ``event``. A handler that raises is logged, with its
        name, and never stops the avatar nor the other handlers."""
        if callback is None:

            def decorator(callback: Callable[..., Any]) -> Callable[..., Any]:
                self.on(event, callback)
                return callback

            return decorator
        if inspect.iscoroutinefunction(callback):
            return super().on(event, callback)  # livekit's error: sync handlers only
        guard = self._guards.get((event, callback))
        if guard is None:
            guard = self._guards[(event, callback)] = _guarded(event, callback)
        super().on(event, guard)
        return callback

    def off(self, event: str, callback: Callable[..., Any]) -> None:
        super().off(event, self._guards.pop((event, callback), callback))

    # -- what the supervisor calls ------------------------------------------------------------

    def _new_remote(
        self,
        room: rtc.Room,
        settings: list[LiveKitSettings],
        agent_id: str,
        index: int,
        identity: str,
        on_lost: Callable[[RemoteAvatar, str], None],
    ) -> RemoteAvatar:
        provider, options = self._candidates[index]
        name = options.avatar_participant_name or identity
        request = CreateRequest(
            room=room,
            room_name=room.name,
            livekit_url=settings[index].url,
            avatar_token=mint_avatar_token(
                settings[index],
                room_name=room.name,
                identity=identity,
                name=name,
                agent_identity=agent_id,
                lifetime=provider.session_lifetime(),
            ),
            agent_identity=agent_id,
            avatar_identity=identity,
            avatar_name=name,
        )
        return RemoteAvatar(provider, request, livekit=settings[index], on_lost=on_lost)

    def _set_state(
        self, state: AvatarState, reason: str, remote: RemoteAvatar | None = None
    ) -> None:
        previous, self._avatar_state = self._avatar_state, state
        provider = remote.name if remote is not None else self.provider
        session_id = remote.session_id if remote is not None else None
        logger.info(
            "avatar %s (%s)", state, reason, extra={"provider": provider, "session_id": session_id}
        )
        self.emit(
            "avatar_state_changed",
            AvatarStateChanged(state, previous, provider, session_id, reason),
        )

    def _emit(self, event: str, remote: RemoteAvatar, fields: Mapping[str, Any]) -> None:
        if self._lk_agent_session is None:
            return
        metrics = AvatarkitMetrics(
            timestamp=time.time(),
            event=event,
            provider=remote.name,
            session_id=remote.session_id,
            metadata=Metadata(model_provider=remote.name),
            audio_without_avatar=self.audio_without_avatar,
            **fields,
        )
        try:
            self._publish_metrics(metrics)
        except Exception:  # an app's AgentSession handler (livekit re-raises its TypeError)
            logger.exception(
                "a metrics_collected handler of the AgentSession raised; the avatar goes on",
                extra={"provider": remote.name, "session_id": remote.session_id},
            )


def _guarded(event: str, callback: Callable[..., Any]) -> Callable[..., None]:
    """``callback`` called as livekit's ``EventEmitter`` would (with as many arguments as it
    takes), but logging what it raises instead of raising it into avatarkit's tasks."""
    try:
        params = list(inspect.signature(callback).parameters.values())
    except (TypeError, ValueError):  # no signature: give it everything
        params = []
        takes: int | None = None
    else:
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
        takes = None if varargs else sum(p.kind in positional for p in params)
    name = getattr(callback, "__qualname__", None) or type(callback).__qualname__

    def guard(*args: Any) -> None:
        try:
            callback(*(args if takes is None else args[:takes]))
        except Exception:
            logger.exception(
                "the app's %r handler %s raised; the avatar goes on without it", event, name
            )

    return guard


def _candidate(provider: AvatarProvider[Any], options: CoreOptions) -> Candidate:
    return Candidate(
        name=provider.name,
        identity=options.avatar_participant_identity or provider.default_identity,
        join_timeout=options.join_timeout,
        ack_timeout=options.ack_timeout,
        renew_after=options.renew_after,
        cap=runtime_cap(provider.limits.runtime_cap, provider.session_lifetime()),
        sample_rate=provider.sample_rate,
        rejoin_grace=options.rejoin_grace,
    )


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
