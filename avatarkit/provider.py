"""The provider interface: what a backend implements, and what the core hands it.

A provider implements three hooks and nothing else:

- :meth:`AvatarProvider.create` provisions the remote avatar for a room (the provider's API call),
- :meth:`AvatarProvider.stream` says where and how the agent's audio reaches the avatar,
- :meth:`AvatarProvider.end` ends the remote session, gracefully or by force.

The core (:mod:`avatarkit.session` and the modules it drives) owns the rest: options,
LiveKit settings and the avatar's token, the HTTP session and retries, routing the agent's
audio, close and shutdown wiring, ending exactly once on every path, cleanup of failed
starts, errors and metrics.
See ``docs/architecture.md`` for why the interface has this shape.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import attrs

from .secret import Secret

if TYPE_CHECKING:
    from livekit import rtc
    from livekit.agents.voice.io import AudioOutput

    from .http import HttpClient

OptionsT = TypeVar("OptionsT")

EndReason = Literal[
    "aclose",  # the app (or the job's shutdown callback) closed the avatar
    "agent_session_closed",  # the AgentSession closed
    "room_disconnected",  # the room went away under the avatar
    "start_failed",  # start() raised after the remote session was created
    "start_cancelled",  # start() was cancelled after the remote session was created
    "join_timeout",  # the avatar did not join (with video) in time
    "renewed",  # a newer session took over before this one's runtime cap
    "switched",  # the app switched to another avatar, which took over
    "avatar_lost",  # the avatar left, failed or stopped playing; the core moved on
]


@attrs.frozen
class SessionLimits:
    """How long a provider lets one remote session live, in seconds (None: no limit known)."""

    max_duration: float | None = None
    """The longest duration its API accepts when asked."""
    runtime_cap: float | None = None
    """When it really ends a session, whatever it was asked (Runway: about 300 s)."""


@attrs.frozen
class CreateRequest:
    """Everything :meth:`AvatarProvider.create` needs to bring an avatar into a room."""

    room: rtc.Room = attrs.field(repr=False)
    room_name: str
    livekit_url: str
    avatar_token: Secret
    """A LiveKit token for the avatar worker: kind ``agent``, this room only, publishing on
    behalf of ``agent_identity``, valid for the session's lifetime."""
    agent_identity: str
    avatar_identity: str
    avatar_name: str


@attrs.frozen
class RemoteSession:
    """A remote avatar session that a provider created and the core must end."""

    provider: str
    id: str
    details: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    """Provider-specific data the provider wants back in :meth:`AvatarProvider.end`."""


@attrs.frozen
class RemoteStatus:
    """A remote session's state as its provider reports it."""

    status: str
    """The provider's own word for it (Runway: NOT_READY, READY, RUNNING, COMPLETED, ...)."""
    active: bool
    """Still provisioning or running (and, for a paid service, billing)."""
    detail: str | None = None
    """Why it failed, when it did."""


@attrs.frozen
class StreamRequest:
    """What :meth:`AvatarProvider.stream` needs to build the agent's audio output."""

    room: rtc.Room = attrs.field(repr=False)
    remote: RemoteSession
    avatar_identity: str


@attrs.frozen
class EndRequest:
    """How the core asks :meth:`AvatarProvider.end` to end a remote session.

    ``graceful`` is True only while the room is connected and the avatar is in it, so a
    message over the room can reach it; otherwise the provider must end the session by force
    (its API). If a graceful end raises, the core asks again with ``graceful=False``.
    """

    reason: EndReason
    graceful: bool
    room: rtc.Room | None = attrs.field(repr=False)
    avatar_identity: str


class AvatarProvider(ABC, Generic[OptionsT]):
    """Base class of avatar backends. Subclass it, implement the hooks, register a
    :class:`~avatarkit.ProviderSpec` pointing at the subclass."""

    name: ClassVar[str]
    """The name apps pass to :func:`avatarkit.get`."""
    options_class: ClassVar[type[Any]]
    """An attrs class; :func:`avatarkit.get` builds it from the provider's options, so its
    validators run there and raise :class:`~avatarkit.ConfigurationError`."""
    default_identity: str
    """The avatar participant's identity (and name) unless the app sets one. A class
    attribute, or set in ``__init__`` when it depends on the options."""
    sample_rate: int = 16000
    """The sample rate of the agent's audio that the default :meth:`stream` sends (a class
    attribute, or set in ``__init__`` when an option chooses it)."""
    limits: ClassVar[SessionLimits] = SessionLimits()
    end_api: ClassVar[bool] = True
    """Whether the service can end a session (an API call, or a message over the room). When
    False, the core ends it the only way left: it takes the avatar participant out of the room
    (RoomService ``RemoveParticipant``), and :meth:`end` is never called."""
    reports_playback_start: ClassVar[bool] = False
    """Whether the avatar calls ``lk.playback_started`` when it starts speaking. If so, the
    default :meth:`stream` takes the start from it instead of estimating it."""

    def __init__(self, options: OptionsT, http: HttpClient) -> None:
        self.options = options
        self.http = http

    @abstractmethod
    async def create(self, request: CreateRequest) -> RemoteSession:
        """Provision the remote avatar for ``request.room`` and return its session.

        Raise on failure (``http`` errors already carry status and message). If this is
        cancelled, the core lets it finish and ends whatever it created.
        """

    def stream(self, request: StreamRequest) -> AudioOutput:
        """Return the ``AudioOutput`` that carries the agent's audio to the avatar.

        The default streams it over LiveKit byte streams (topic ``lk.audio_stream``) to the
        avatar participant at :attr:`sample_rate`, held until the avatar publishes video, with
        ``lk.clear_buffer`` / ``lk.playback_finished`` RPCs for interruptions and playback.
        Override it for another transport (a WebSocket, an in-process renderer).
        """
        from livekit import rtc

        from .streaming import RoomAudioOutput

        return RoomAudioOutput(
            request.room,
            destination_identity=request.avatar_identity,
            sample_rate=self.sample_rate,
            wait_remote_track=rtc.TrackKind.KIND_VIDEO,
            wait_playback_start=self.reports_playback_start,
        )

    async def end(self, remote: RemoteSession, request: EndRequest) -> None:
        """End ``remote``: over the room when ``request.graceful``, else through the API.

        Called at most once with ``graceful=True`` and at most once with ``graceful=False``
        per remote session. Raise if the session could not be ended. A service with no way
        to end a session sets :attr:`end_api` to False instead of implementing this.
        """
        raise NotImplementedError(
            f"{type(self).__name__} implements no end(): implement it, or set end_api = False "
            "if the service has no way to end a session"
        )

    def session_lifetime(self) -> float | None:
        """The longest this provider's sessions can live with these options (seconds), which
        bounds the avatar token's lifetime. Defaults to :attr:`limits`."""
        return self.limits.max_duration

    async def status(self, remote: RemoteSession) -> RemoteStatus | None:
        """Ask the provider how ``remote`` is doing; None if it has no way to tell."""
        return None

    async def check(self) -> str:
        """Check the configuration against the provider without creating anything billable.

        Return what was verified (one line); raise an error that says what to fix.
        Used by ``avatarkit doctor``. The default has nothing remote to check.
        """
        return "nothing remote to check"

    async def aclose(self) -> None:
        """Release what the provider holds beyond the core's HTTP session (default: nothing)."""
