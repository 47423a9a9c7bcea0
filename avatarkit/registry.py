"""Provider discovery (pluggy entry points, group ``avatarkit``) and :func:`get`.

Nothing here imports livekit-agents or a provider's implementation: listing providers reads
only the light plugin modules; :func:`get` loads the one provider it is asked for.
"""

from __future__ import annotations

import difflib
import importlib
import re
import threading
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from . import hookspecs
from .errors import ConfigurationError, UnknownProviderError

if TYPE_CHECKING:
    from .doubles import ProviderDouble
    from .provider import AvatarProvider
    from .session import AvatarkitSession

ENTRY_POINT_GROUP = "avatarkit"

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
_PATH_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _check_name(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not _NAME_RE.match(value):
        raise ConfigurationError(
            f"provider name {value!r} must be lowercase letters, digits, '-' or '_', "
            "starting with a letter"
        )


def _check_path(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not _PATH_RE.match(value):
        raise ConfigurationError(
            f"ProviderSpec.{attribute.name} must be 'package.module:Name', got {value!r}"
        )


@attrs.frozen
class ProviderSpec:
    """What a plugin registers: a provider's name, a summary, and where its code lives."""

    name: str = attrs.field(validator=_check_name)
    summary: str
    provider: str = attrs.field(validator=_check_path)
    """Import path of the :class:`~avatarkit.AvatarProvider` subclass, ``"pkg.mod:Class"``."""
    options: str | None = attrs.field(default=None, validator=_check_path)
    """Import path of the provider's options class (light: no livekit import), if any."""
    double: str | None = attrs.field(default=None, validator=_check_path)
    """Import path of the provider's :class:`~avatarkit.doubles.ProviderDouble` subclass, if
    any: what lets ``avatarkit demo``/``compare`` run it here and ``emulate`` serve its API."""


@attrs.frozen
class ProviderInfo:
    """An installed provider, as :func:`providers` describes it."""

    name: str
    summary: str
    distribution: str | None
    version: str | None
    spec: ProviderSpec = attrs.field(repr=False)

    def load(self) -> type[AvatarProvider[Any]]:
        """Import and return the provider class (this imports livekit-agents)."""
        from .provider import AvatarProvider

        cls = _import_path(self.spec.provider)
        if not (isinstance(cls, type) and issubclass(cls, AvatarProvider)):
            raise ConfigurationError(
                f"provider {self.name!r} points at {self.spec.provider}, "
                "which is not an avatarkit.AvatarProvider subclass"
            )
        return cls

    def options_class(self) -> type | None:
        """The provider's options class, imported from its light module, or None."""
        return None if self.spec.options is None else _import_path(self.spec.options)

    def load_double(self) -> ProviderDouble | None:
        """A new instance of the provider's double (see :mod:`avatarkit.doubles`), or None if
        it declares none."""
        if self.spec.double is None:
            return None
        from .doubles import ProviderDouble

        cls = _import_path(self.spec.double)
        if not (isinstance(cls, type) and issubclass(cls, ProviderDouble)):
            raise ConfigurationError(
                f"provider {self.name!r} names {self.spec.double} as its double, "
                "which is not an avatarkit.doubles.ProviderDouble subclass"
            )
        return cls()


def _import_path(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _refuse_core_option_names(spec: ProviderSpec) -> None:
    """Refuse a provider option named like a core option: get() would give it to the core."""
    if spec.options is None:
        return
    from .options import CORE_OPTIONS  # light: attrs only

    try:
        cls = _import_path(spec.options)
        fields = attrs.fields(cls) if attrs.has(cls) else ()
    except Exception:  # a broken options module is reported where it is used, per provider
        return
    for field in fields:
        name = field.alias or field.name
        if name in CORE_OPTIONS:
            raise ConfigurationError(
                f"avatar provider {spec.name!r}: its option {name!r} ({spec.options}) has the "
                f"name of a core option every provider accepts, so avatarkit.get() would never "
                f"pass it to the provider; rename the provider's option (e.g. "
                f"{spec.name.replace('-', '_')}_{name})"
            )


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pm: pluggy.PluginManager | None = None
        self._providers: dict[str, ProviderInfo] | None = None

    def plugin_manager(self) -> pluggy.PluginManager:
        with self._lock:
            if self._pm is None:
                pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
                pm.add_hookspecs(hookspecs)
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
                self._pm = pm
            return self._pm

    def providers(self) -> dict[str, ProviderInfo]:
        pm = self.plugin_manager()
        with self._lock:
            if self._providers is None:
                self._providers = self._collect(pm)
            return self._providers

    def invalidate(self) -> None:
        """Forget the collected providers, e.g. after registering a plugin at run time."""
        with self._lock:
            self._providers = None

    @staticmethod
    def _collect(pm: pluggy.PluginManager) -> dict[str, ProviderInfo]:
        # A provider's distribution is the one whose entry-point plugin shares its top-level
        # package; providers registered by hand (tests, apps) have none.
        dists: dict[str, tuple[str, str]] = {}
        for plugin, dist in pm.list_plugin_distinfo():
            top = getattr(plugin, "__name__", "").partition(".")[0]
            dists[top] = (dist.metadata["name"], dist.version)

        found: dict[str, ProviderInfo] = {}

        def register(spec: ProviderSpec) -> None:
            if not isinstance(spec, ProviderSpec):
                raise ConfigurationError(
                    f"register() takes an avatarkit.ProviderSpec, got {type(spec).__name__}"
                )
            dist, version = dists.get(spec.provider.partition(".")[0], (None, None))
            if spec.name in found:
                other = found[spec.name]
                raise ConfigurationError(
                    f"avatar provider {spec.name!r} is registered twice: by "
                    f"{other.distribution or other.spec.provider} and by "
                    f"{dist or spec.provider}; uninstall one of them"
                )
            _refuse_core_option_names(spec)
            found[spec.name] = ProviderInfo(spec.name, spec.summary, dist, version, spec)

        pm.hook.register_providers(register=register)
        return dict(sorted(found.items()))


_registry = _Registry()


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide pluggy manager; ``register()`` a plugin object on it to add providers
    without packaging them (then call :func:`refresh`)."""
    return _registry.plugin_manager()


def refresh() -> None:
    """Collect providers again on the next :func:`providers` or :func:`get` call."""
    _registry.invalidate()


def providers() -> list[ProviderInfo]:
    """Every installed provider, sorted by name. Imports no provider code and no livekit."""
    return list(_registry.providers().values())


def provider_info(name: str) -> ProviderInfo:
    """The installed provider called ``name``; raises :class:`UnknownProviderError`."""
    installed = _registry.providers()
    if not isinstance(name, str):
        raise ConfigurationError(f"provider name must be a str, got {type(name).__name__}")
    try:
        return installed[name]
    except KeyError:
        close = difflib.get_close_matches(name.lower(), list(installed), n=1, cutoff=0.5)
        raise UnknownProviderError(name, list(installed), close[0] if close else None) from None


def get(name: str, **options: Any) -> AvatarkitSession:
    """Return a LiveKit ``AvatarSession`` for provider ``name``, configured by ``options``.

    Options are validated here: a wrong, missing or unknown option raises
    :class:`ConfigurationError` saying what to change, before anything touches the network.
    """
    info = provider_info(name)
    from .session import AvatarkitSession

    return AvatarkitSession.from_options(info.name, info.load(), options)
