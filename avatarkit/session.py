"""The avatar session every provider shares: the lifecycle from ``start()`` to ``aclose()``."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Mapping
from typing import Any

import attrs
from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, AgentSession
from livekit.agents.job import get_job_context
from livekit.agents.voice.avatar import AvatarSession
from livekit.agents.voice.io import AudioOutput

from .errors import AvatarClosedError, ConfigurationError
from .http import HttpClient
from .log import logger
from .options import CORE_OPTIONS, CoreOptions
from .provider import (
    AvatarProvider,
    CreateRequest,
    EndReason,
    EndRequest,
    RemoteSession,
    StreamRequest,
)
from .streaming import RoomAudioOutput
from .tokens import LiveKitSettings, mint_avatar_token


def _option_names(options_class: type[Any]) -> list[str]:
    return [f.alias for f in attrs.fields(options_class)]


class AvatarkitSession(AvatarSession[Any]):
    """A LiveKit ``AvatarSession`` driven by an :class:`~avatarkit.AvatarProvider`.

    Get one with :func:`avatarkit.get`. ``start()`` creates the remote avatar, routes the
    agent's audio to it, and arranges for the remote session to be ended exactly once on every
    path: ``aclose()``, the AgentSession closing, job shutdown, the room going away, and a
    start that fails or is cancelled after the remote session was created.
    """

    def __init__(self, provider: AvatarProvider[Any], options: CoreOptions) -> None:
        super().__init__()
        self._provider = provider
        self._options = options
        self._identity = options.avatar_participant_identity or provider.default_identity
        self._name = options.avatar_participant_name or self._identity
        self._lk_room: rtc.Room | None = None
        self._lk_agent_session: AgentSession[Any] | None = None
        self._started = False
        self._start_error: BaseException | None = None
        self._create_task: asyncio.Task[RemoteSession] | None = None
        self._remote: RemoteSession | None = None
        self._end_task: asyncio.Task[None] | None = None
        self._aclose_task: asyncio.Task[None] | None = None
        self._output: AudioOutput | None = None
        self._restore: tuple[Any, AudioOutput | None] | None = None
        self._end_outcome: str | None = None

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
        try:
            provider_options = provider_cls.options_class(
                **{k: v for k, v in options.items() if k not in CORE_OPTIONS}
            )
        except TypeError as exc:  # attrs' own message for a missing mandatory option
            raise ConfigurationError(f"{name}: {exc}") from None
        http = HttpClient(name, core.conn_options or DEFAULT_API_CONNECT_OPTIONS, core.http_session)
        return cls(provider_cls(provider_options, http), core)

    @property
    def avatar_identity(self) -> str:
        return self._identity

    @property
    def provider(self) -> str:
        return self._provider.name

    @property
    def backend(self) -> AvatarProvider[Any]:
        """The provider object, for provider-specific calls (e.g. Runway's ``get_session``)."""
        return self._provider

    @property
    def remote_session(self) -> RemoteSession | None:
        """The remote session this avatar created, once ``create`` returned."""
        return self._remote

    @property
    def end_outcome(self) -> str | None:
        """How the remote session was ended: ``graceful``, ``forced``, ``failed`` (it may
        still run), ``not_created``, or None while it has not been ended."""
        return self._end_outcome

    async def start(
        self,
        agent_session: AgentSession[Any],
        room: rtc.Room,
        *,
        livekit_url: str | None = None,
        livekit_api_key: str | None = None,
        livekit_api_secret: str | None = None,
    ) -> None:
        """Create the remote avatar for ``room`` and route ``agent_session``'s audio to it.

        LiveKit settings come from these arguments, else from ``get()``'s options, else
        from ``LIVEKIT_URL`` / ``LIVEKIT_API_KEY`` / ``LIVEKIT_API_SECRET``.
        """
        if self._started:
            raise RuntimeError("this avatar session was already started; get() a new one")
        self._started = True
        opts = self._options
        try:
            settings = LiveKitSettings.resolve(
                livekit_url or opts.livekit_url,
                livekit_api_key or opts.livekit_api_key,
                livekit_api_secret or opts.livekit_api_secret,
            )
            agent_identity = _agent_identity(room)
            token = mint_avatar_token(
                settings,
                room_name=room.name,
                identity=self._identity,
                name=self._name,
                agent_identity=agent_identity,
                lifetime=self._provider.session_lifetime(),
            )
        except Exception as exc:  # nothing was created yet; wait_for_join() must say so too
            self._start_error = exc
            raise

        await super().start(agent_session, room)
        self._lk_room = room
        self._lk_agent_session = agent_session
        agent_session.on("close", self._on_agent_session_close)
        room.on("disconnected", self._on_room_disconnected)

        request = CreateRequest(
            room=room,
            room_name=room.name,
            livekit_url=settings.url,
            avatar_token=token,
            agent_identity=agent_identity,
            avatar_identity=self._identity,
            avatar_name=self._name,
        )
        try:
            self._create_task = asyncio.create_task(
                self._provider.create(request), name=f"avatarkit.{self.provider}.create"
            )
            # shielded: a cancelled start() must still learn the session id, to end it
            self._remote = await asyncio.shield(self._create_task)
            logger.info(
                "avatar session created",
                extra={"provider": self.provider, "session_id": self._remote.id},
            )
            if self._end_task is not None:
                raise AvatarClosedError(
                    f"{self.provider} avatar was closed while it was starting "
                    f"(its remote session is being ended)"
                )
            output = self._provider.stream(
                StreamRequest(room=room, remote=self._remote, avatar_identity=self._identity)
            )
            self._route_audio(agent_session, output)
        except BaseException as exc:
            self._start_error = exc
            reason: EndReason = (
                "start_cancelled" if isinstance(exc, asyncio.CancelledError) else "start_failed"
            )
            self._ensure_end(reason)
            await asyncio.shield(self.aclose())
            raise

    async def wait_for_join(self, *, timeout: float | None = 30.0) -> None:
        """Wait until the avatar has joined and published video; raises what failed start()."""
        if self._start_error is not None:
            raise AvatarClosedError(
                f"{self.provider} avatar did not start: {self._start_error!r}"
            ) from self._start_error
        await super().wait_for_join(timeout=timeout)

    async def aclose(self) -> None:
        """End the remote session (if any), put the audio route back, release resources.

        Safe to call any number of times, from any number of tasks.
        """
        if self._aclose_task is None:
            self._aclose_task = asyncio.create_task(self._aclose(), name="avatarkit.aclose")
        await asyncio.shield(self._aclose_task)

    async def _aclose(self) -> None:
        try:
            await asyncio.shield(self._ensure_end("aclose"))
        finally:
            self._restore_audio()
            if self._lk_agent_session is not None:
                self._lk_agent_session.off("close", self._on_agent_session_close)
            if self._lk_room is not None:
                self._lk_room.off("disconnected", self._on_room_disconnected)
            await super().aclose()
            await self._provider.aclose()
            await self._provider.http.aclose()
            self._lk_room = self._lk_agent_session = None

    # -- ending the remote session -------------------------------------------------------

    def _ensure_end(self, reason: EndReason) -> asyncio.Task[None]:
        if self._end_task is None:
            self._end_task = asyncio.create_task(
                self._end_remote(reason), name=f"avatarkit.{self.provider}.end"
            )
        return self._end_task

    async def _end_remote(self, reason: EndReason) -> None:
        remote = self._remote
        if remote is None and self._create_task is not None:
            try:
                remote = await asyncio.shield(self._create_task)
            except asyncio.CancelledError:
                if not self._create_task.cancelled():
                    raise  # this end task itself is being cancelled
                remote = None
            except Exception:
                remote = None  # the create failed: nothing was created that we know of
        if remote is None:
            self._end_outcome = "not_created"
            return

        room = self._lk_room
        extra = {"provider": self.provider, "session_id": remote.id, "reason": reason}
        graceful = (
            room is not None and room.isconnected() and self._identity in room.remote_participants
        )
        if graceful:
            try:
                await asyncio.wait_for(
                    self._provider.end(
                        remote, EndRequest(reason, True, room, avatar_identity=self._identity)
                    ),
                    self._provider.http.conn_options.timeout,
                )
                self._end_outcome = "graceful"
                logger.info("avatar session ended", extra={**extra, "outcome": "graceful"})
                return
            except Exception as exc:
                logger.warning(
                    "graceful end failed (%r); ending the session through the API", exc, extra=extra
                )
        try:
            await self._provider.end(
                remote, EndRequest(reason, False, None, avatar_identity=self._identity)
            )
            self._end_outcome = "forced"
            logger.info("avatar session ended", extra={**extra, "outcome": "forced"})
        except Exception as exc:
            self._end_outcome = "failed"
            logger.error(
                "could not end the remote avatar session (%r); it may bill until it times out",
                exc,
                extra=extra,
            )

    def _on_agent_session_close(self, _: Any) -> None:
        self._ensure_end("agent_session_closed")

    def _on_room_disconnected(self, *_: Any) -> None:
        if isinstance(self._output, RoomAudioOutput):
            self._output.retire()
        self._ensure_end("room_disconnected")

    # -- the agent's audio route ---------------------------------------------------------

    def _route_audio(self, agent_session: AgentSession[Any], output: AudioOutput) -> None:
        # Remember exactly what is replaced, so close and failure can put it back.
        proxy = _sink_proxy(agent_session.output.audio)
        if proxy is not None:
            self._restore = (proxy, proxy.next_in_chain)
            proxy.set_next_in_chain(output)
        else:
            self._restore = (None, agent_session.output.audio)
            agent_session.output.audio = output
        self._output = output

    def _restore_audio(self) -> None:
        output, agent_session = self._output, self._lk_agent_session
        if output is None or self._restore is None or agent_session is None:
            return
        proxy, previous = self._restore
        if proxy is not None and proxy.next_in_chain is output and previous is not None:
            proxy.set_next_in_chain(previous)
        elif agent_session.output.audio is output:
            agent_session.output.audio = previous
        if isinstance(output, RoomAudioOutput):
            output.retire()
        self._output = self._restore = None


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
