"""``avatarkit doctor``: check a provider's configuration as the user has it.

It creates nothing billable and never prints a secret (only whether one is set, and its
length). Steps, each a ✓/!/✗ (ok/warning/failure) line with a fix hint:

1. the provider is installed;
2. its options (``-o key=value`` plus the environment) pass ``avatarkit.get()`` validation;
   each option is validated on its own first, so every bad one is reported in one run;
3. LiveKit settings: URL, key pair, a token can be minted, and the server accepts the key
   pair (a ``ListRooms`` call; ``--skip-livekit-server`` skips it). None of them set is a
   warning, not a failure: nothing here needs a server, only ``start()`` does (``--strict``
   makes warnings fail);
4. the provider's own credential check, :meth:`avatarkit.AvatarProvider.check`.

Without a provider it checks every installed provider's environment and options, and the
LiveKit settings. Heavy imports (livekit-agents, provider code) happen inside the command.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import urllib.parse
import warnings
from typing import TYPE_CHECKING, Annotated, Any

import typer

import avatarkit
from avatarkit.errors import ConfigurationError, UnknownProviderError
from avatarkit.secret import Secret

from . import _options
from ._output import Checks, console, describe_secret, env_secrets

if TYPE_CHECKING:
    from avatarkit.session import AvatarkitSession

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LIVEKIT = (
    ("livekit_url", "LIVEKIT_URL"),
    ("livekit_api_key", "LIVEKIT_API_KEY"),
    ("livekit_api_secret", "LIVEKIT_API_SECRET"),
)
_LIVEKIT_OPTIONS = frozenset(name for name, _ in _LIVEKIT)
_DOCTOR_ROOM = "avatarkit-doctor"

_OPTION_HELP = (
    "An option as your code passes it to avatarkit.get(), e.g. -o preset_id=influencer. Repeatable."
)


_HELP = "\n\n".join(
    (
        "Check a provider's configuration (options, credentials, LiveKit) and say what to fix.",
        "Creates nothing billable and never prints a secret. Exits 1 if a check fails. "
        "Unset LiveKit settings are a warning (start() needs them, this check does not); "
        "--strict makes warnings fail too.",
        "-o values are converted by the option's declared type: numbers for int and float, "
        "true/false (yes/no, on/off, 1/0) for bool, none or null for an optional option, "
        "JSON for list and dict options; anything else stays a string. "
        "-o livekit_url=..., livekit_api_key=... and livekit_api_secret=... "
        "replace the LIVEKIT_* variables.",
    )
)


def register(app: typer.Typer) -> None:
    app.command("doctor", help=_HELP)(doctor)


def doctor(
    provider: str | None = typer.Argument(
        None,
        metavar="PROVIDER",
        help="The provider to check (default: every installed provider, without credentials).",
    ),
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", metavar="KEY=VALUE", help=_OPTION_HELP),
    ] = None,
    skip_livekit_server: bool = typer.Option(
        False,
        "--skip-livekit-server",
        help="Check the LiveKit settings without contacting the LiveKit server.",
    ),
    timeout: float = typer.Option(
        5.0, "--timeout", min=0.1, help="Seconds to wait for each remote check."
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Fail on warnings too, e.g. unset LiveKit settings (for CI before a deploy).",
    ),
) -> None:
    """Check a provider's configuration (options, credentials, LiveKit) and say what to fix."""
    given = _parse_options(option or [])
    if provider is None and set(given) - _LIVEKIT_OPTIONS:
        extra = ", ".join(sorted(set(given) - _LIVEKIT_OPTIONS))
        raise typer.BadParameter(
            f"{extra}: a provider's options need the provider, e.g. "
            "avatarkit doctor runway -o preset_id=influencer",
            param_hint="'-o'",
        )
    checks = Checks(console(), env_secrets(), strict=strict)
    for key, value in given.items():
        if _options.is_secret_name(key):
            checks.add_secret(value)
    if provider is None:
        asyncio.run(_doctor_all(checks, given, skip_livekit_server, timeout))
    else:
        asyncio.run(_doctor_one(checks, provider, given, skip_livekit_server, timeout))
    checks.summary()
    if checks.failures:
        raise typer.Exit(1)


def _parse_options(items: list[str]) -> dict[str, str]:
    given: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            # never echo the item: it may be a credential
            raise typer.BadParameter(
                f"expected KEY=VALUE with KEY an option name, got {key!r}"
                if sep
                else "expected KEY=VALUE, got an item without '='",
                param_hint="'-o'",
            )
        given[key] = value
    return given


# -- one provider ------------------------------------------------------------------------


async def _doctor_one(
    checks: Checks, name: str, given: dict[str, str], skip_server: bool, timeout: float
) -> None:
    checks.section(f"Provider {name}")
    try:
        info = avatarkit.provider_info(name)
    except UnknownProviderError as exc:
        checks.fail(
            str(exc),
            fix="fix the name, or install the package that provides it "
            "(avatarkit providers lists what is installed)",
        )
        return
    _installed(checks, info)
    docs = _option_docs(checks, info)
    avatar = await _build(checks, info, docs, given, timeout, strict=True)
    try:
        await _check_livekit(checks, given, skip_server, timeout)
        if avatar is not None:
            checks.section(f"Provider {name}: credentials (nothing billable is created)")
            await _check_provider(checks, info, docs, avatar, timeout)
    finally:
        if avatar is not None:
            await _close(avatar)


async def _doctor_all(
    checks: Checks, given: dict[str, str], skip_server: bool, timeout: float
) -> None:
    installed = avatarkit.providers()
    if not installed:
        checks.section("Providers")
        checks.fail(
            "no avatar provider is installed",
            fix="install avatarkit with its providers (pip install avatarkit)",
        )
    for info in installed:
        checks.section(f"Provider {info.name}")
        _installed(checks, info)
        docs = _option_docs(checks, info)
        if unset := _unconfigured(docs):
            # nine providers ship together: one this machine has no key for is not a problem
            checks.note(
                f"not configured here ({' / '.join(unset)} not set): "
                f"check it with avatarkit doctor {info.name} -o KEY=VALUE"
            )
            continue
        avatar = await _build(checks, info, docs, given, timeout, strict=False)
        if avatar is not None:
            await _close(avatar)
    await _check_livekit(checks, given, skip_server, timeout)
    checks.note("credentials are checked against a provider with: avatarkit doctor PROVIDER")


def _unconfigured(docs: list[_options.OptionDoc]) -> list[str]:
    """The variables of a provider's credentials, if the environment sets none of them."""
    names = [name for doc in docs if doc.secret for name in doc.env]
    return [] if not names or any(os.environ.get(n) for n in names) else names


def _installed(checks: Checks, info: avatarkit.ProviderInfo) -> None:
    where = (
        f"{info.distribution} {info.version}"
        if info.distribution
        else f"registered at run time ({info.spec.provider})"
    )
    checks.ok(f"installed: {where}")


def _option_docs(checks: Checks, info: avatarkit.ProviderInfo) -> list[_options.OptionDoc]:
    try:
        return _options.describe(info.options_class())
    except Exception as exc:
        checks.fail(
            f"could not import {info.name}'s options class {info.spec.options}: "
            f"{type(exc).__name__}: {exc}",
            fix=f"reinstall the package that provides {info.name!r}",
        )
        return []


def _values(docs: list[_options.OptionDoc], given: dict[str, str]) -> dict[str, Any]:
    types = {doc.name: doc.type for doc in [*docs, *_core_docs()]}
    return {
        key: _options.convert(types[key], raw) if key in types else raw
        for key, raw in given.items()
    }


def _core_docs() -> list[_options.OptionDoc]:
    from avatarkit.options import CoreOptions

    return _options.describe(CoreOptions)


async def _build(
    checks: Checks,
    info: avatarkit.ProviderInfo,
    docs: list[_options.OptionDoc],
    given: dict[str, str],
    timeout: float,
    *,
    strict: bool,
) -> AvatarkitSession | None:
    """Validate the options with ``avatarkit.get()``; the avatar, or None if they fail.

    Each option given with -o, and each read from the environment, is validated on its own
    first, so every bad one is reported at once; ``get()`` then checks how they combine.
    ``strict=False`` (no provider named): an error that the environment does not cause,
    such as a missing preset the app passes in code, is a note, not a failure.
    """
    from livekit.agents import APIConnectOptions

    # the LiveKit options are checked (and reported) in their own section
    given = {k: v for k, v in given.items() if k not in _LIVEKIT_OPTIONS}
    values = _values(docs, given)
    problems = _given_problems(info.name, docs, values) + [
        (message, _env_fix(doc)) for doc, message in _env_problems(docs, given)
    ]
    for message, fix in problems:
        checks.fail(message, fix=fix)
    if problems:
        return None
    # a doctor answers quickly: one attempt per remote check, bounded by --timeout
    values.setdefault("conn_options", APIConnectOptions(max_retry=0, timeout=timeout))
    try:
        avatar = avatarkit.get(info.name, **values)
    except ConfigurationError as exc:
        if strict:
            checks.fail(
                f"options: {exc}",
                fix=f"change the options named above with -o KEY=VALUE or in your code "
                f"(avatarkit providers {info.name} lists them)",
            )
        else:
            _env_details(checks, docs, given)
            checks.note(
                f"{exc}; your code passes these options: check them with "
                f"avatarkit doctor {info.name} -o KEY=VALUE"
            )
        return None
    except Exception as exc:  # a provider that cannot even be loaded
        checks.fail(
            f"could not load provider {info.name} ({info.spec.provider}): "
            f"{type(exc).__name__}: {exc}",
            fix=f"reinstall the package that provides {info.name!r}",
        )
        return None
    for doc in docs:
        if doc.secret:
            checks.add_secret(_secret_value(getattr(avatar.backend.options, doc.field.name, None)))
    described = _describe_values(docs, given, avatar.backend.options)
    checks.ok("options valid" + (f": {described}" if described else ""))
    return avatar


def _describe_values(docs: list[_options.OptionDoc], given: dict[str, str], options: Any) -> str:
    """The options given with -o or read from the environment; credentials by length only."""
    parts = []
    for doc in docs:
        value = getattr(options, doc.field.name, None)
        if doc.name in given:
            if doc.secret:
                secret = _secret_value(value) or ""
                parts.append(describe_secret(f"{doc.name} (-o)", secret))
            else:
                parts.append(f"{doc.name}={_show(value)} (-o)")
        elif doc.from_factory:
            parts.append(_describe_env_value(doc, value))
    return "; ".join(parts)


def _describe_env_value(doc: _options.OptionDoc, value: Any) -> str:
    source = next((name for name in doc.env if os.environ.get(name)), None)
    if doc.secret:
        secret = _secret_value(value)
        if not secret:
            unset = " or ".join(doc.env) or "its variable"
            return f"{doc.name} not set ({unset} not set)"
        return describe_secret(f"{doc.name}: {source}" if source else doc.name, secret)
    if source:
        return f"{doc.name}={_show(value)} (from {source})"
    unset = " or ".join(doc.env)
    return f"{doc.name}={_show(value)} (default{'; ' + unset + ' not set' if unset else ''})"


def _env_details(checks: Checks, docs: list[_options.OptionDoc], given: dict[str, str]) -> None:
    """The environment-read options of a provider whose other options the app passes."""
    parts = []
    for doc in docs:
        if doc.from_factory and doc.name not in given:
            try:
                value = doc.env_default()
            except Exception:
                continue
            parts.append(_describe_env_value(doc, value))
            if doc.secret:
                checks.add_secret(_secret_value(value))
    if parts:
        checks.ok("environment: " + "; ".join(parts))


def _given_problems(
    name: str, docs: list[_options.OptionDoc], values: dict[str, Any]
) -> list[tuple[str, str]]:
    """Every option given with -o that is unknown or fails its own validator, as
    (message, fix); checks that need several options together are left to ``get()``."""
    fields = {doc.name: doc.field for doc in [*_core_docs(), *docs]}
    listing = f"avatarkit providers {name} lists {name}'s options and the core's"
    problems = []
    for key, value in values.items():
        field = fields.get(key)
        if field is None:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            fix = f"-o {close[0]}=..." if close else "another option name"
            problems.append(
                (f"options: {name}: unknown option {key!r}.{hint}", f"use {fix} ({listing})")
            )
            continue
        try:
            _options.check_value(field, value)
        except (ConfigurationError, ValueError, TypeError) as exc:
            message = str(exc) if str(exc).startswith(f"{name}: ") else f"{name}: {exc}"
            problems.append(
                (
                    f"options: {message}",
                    f"change {key}: -o {key}=... here, or where your code passes it",
                )
            )
        except Exception:  # needs the instance or other options: get() reports it
            continue
    return problems


def _env_problems(
    docs: list[_options.OptionDoc], given: dict[str, str]
) -> list[tuple[_options.OptionDoc, str]]:
    """The environment-read options (not given with -o) that fail their own validator."""
    problems = []
    for doc in docs:
        field = doc.field
        if not doc.from_factory or doc.name in given:
            continue
        try:
            value = doc.env_default()
            if field.validator is not None:
                field.validator(None, field, value)
        except _options.CannotEvaluate:
            continue
        except (ConfigurationError, ValueError, TypeError) as exc:
            problems.append((doc, str(exc)))
        except Exception:  # a validator that needs the instance: get() reports it
            continue
    return problems


def _env_fix(doc: _options.OptionDoc) -> str:
    if doc.env:
        return f"set {' or '.join(doc.env)} (or pass -o {doc.name}=...)"
    return f"pass -o {doc.name}=... (or set the variable it reads)"


def _secret_value(value: Any) -> str | None:
    if isinstance(value, Secret):
        return value.reveal()
    return value if isinstance(value, str) and value else None


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _close(avatar: AvatarkitSession) -> None:
    try:
        await avatar.backend.aclose()
    finally:
        await avatar.backend.http.aclose()


# -- the provider's own check ---------------------------------------------------------------


async def _check_provider(
    checks: Checks,
    info: avatarkit.ProviderInfo,
    docs: list[_options.OptionDoc],
    avatar: AvatarkitSession,
    timeout: float,
) -> None:
    from avatarkit.http import ProviderAPIError, ProviderConnectionError

    secrets = [doc for doc in docs if doc.secret]
    key_fix = (
        "; ".join(
            f"check {doc.name}" + (f" (-o) or {' or '.join(doc.env)}" if doc.env else "")
            for doc in secrets
        )
        or "check the provider's credentials"
    )
    limit = 3 * timeout  # a check may take a few requests, each bounded by --timeout
    try:
        verified = await asyncio.wait_for(avatar.backend.check(), limit)
    except asyncio.TimeoutError:
        checks.fail(
            f"{info.name} check did not finish within {limit:g}s",
            fix="check the API URL option and your network, or raise --timeout",
        )
    except ConfigurationError as exc:
        checks.fail(str(exc), fix=key_fix)
    except ProviderConnectionError as exc:
        checks.fail(
            f"{info.name} API unreachable: {exc}",
            fix="check the API URL option and your network",
        )
    except ProviderAPIError as exc:
        checks.fail(f"{info.name} API answered an error: {exc}", fix=key_fix)
    except Exception as exc:
        checks.fail(f"{info.name} check failed: {type(exc).__name__}: {exc}", fix=key_fix)
    else:
        checks.ok(f"{info.name}: {verified}")


# -- LiveKit -------------------------------------------------------------------------------


async def _check_livekit(
    checks: Checks, given: dict[str, str], skip_server: bool, timeout: float
) -> None:
    from avatarkit.tokens import LiveKitSettings, check_livekit_url, mint_avatar_token

    checks.section("LiveKit")
    found = {option: given.get(option) or os.environ.get(env) for option, env in _LIVEKIT}
    if not any(found.values()):
        # nothing checked here needs a server; start() does, unless the app passes them
        checks.warn(
            "LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET not set: not needed for this "
            "check, but needed when the avatar joins a real LiveKit server (start() reads them "
            "from its arguments, get()'s options, or these variables)",
            fix="export LIVEKIT_URL=wss://<project>.livekit.cloud LIVEKIT_API_KEY=... "
            "LIVEKIT_API_SECRET=... (or pass -o livekit_url=... -o livekit_api_key=... "
            "-o livekit_api_secret=...); LiveKit Cloud lists them under Settings > API keys",
        )
        return
    values: dict[str, str] = {}
    for option, env in _LIVEKIT:
        value = found[option]
        label = f"{option} (-o)" if given.get(option) else env
        if not value:
            # a half-set configuration is a mistake, not a choice: the token cannot be signed
            others = " and ".join(e for o, e in _LIVEKIT if found[o])
            example = "wss://<project>.livekit.cloud" if option == "livekit_url" else "..."
            checks.fail(
                f"{env} not set, though {others} {'are' if ' and ' in others else 'is'}: "
                "the avatar needs all three to join",
                fix=f"export {env}={example} (or pass -o {option}=...); "
                "LiveKit Cloud lists the URL and key pairs under Settings > API keys",
            )
            continue
        if option == "livekit_url":
            try:
                check_livekit_url(value)
            except ConfigurationError:
                checks.fail(
                    f"{label} = {_display_url(value)}: not a LiveKit URL",
                    fix="use your LiveKit server's URL, starting with wss:// "
                    "(or ws://, https://, http://), e.g. wss://<project>.livekit.cloud",
                )
                continue
            checks.ok(f"{label} = {_display_url(value)}")
        else:
            checks.ok(describe_secret(label, value))
        values[option] = value
    if len(values) < len(_LIVEKIT):
        return

    settings = LiveKitSettings.resolve(
        values["livekit_url"], values["livekit_api_key"], values["livekit_api_secret"]
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            token = mint_avatar_token(
                settings,
                room_name=_DOCTOR_ROOM,
                identity="avatarkit-doctor-avatar",
                name="avatarkit doctor",
                agent_identity="avatarkit-doctor-agent",
                lifetime=60.0,
            )
    except Exception as exc:
        checks.fail(
            f"could not mint an avatar token: {type(exc).__name__}: {exc}",
            fix="check LIVEKIT_API_KEY and LIVEKIT_API_SECRET",
        )
        return
    checks.add_secret(token)
    checks.ok("avatar token minted (kind agent, one room)")
    for warning in caught:  # e.g. PyJWT on a short LIVEKIT_API_SECRET
        checks.note(f"token: {warning.message}")

    if skip_server:
        checks.note("LiveKit server not contacted (--skip-livekit-server)")
        return
    await _ping_livekit(checks, settings.url, values, timeout)


async def _ping_livekit(checks: Checks, url: str, values: dict[str, str], timeout: float) -> None:
    import aiohttp
    from livekit import api

    shown = _display_url(url)
    kwargs: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=timeout)}
    key, secret = values["livekit_api_key"], values["livekit_api_secret"]
    try:
        lkapi = api.LiveKitAPI(url, key, secret, failover=False, **kwargs)
    except TypeError:  # livekit-api before region failover
        lkapi = api.LiveKitAPI(url, key, secret, **kwargs)
    try:
        rooms = await lkapi.room.list_rooms(api.ListRoomsRequest())
    except api.TwirpError as exc:
        if exc.status in (401, 403) or exc.code in ("unauthenticated", "permission_denied"):
            checks.fail(
                f"LiveKit server at {shown} rejected the API key pair "
                f"({exc.status} {exc.code}: {exc.message})",
                fix="LIVEKIT_API_KEY and LIVEKIT_API_SECRET must be a key pair of this server "
                "(LiveKit Cloud: Settings > API keys)",
            )
        else:
            checks.fail(
                f"LiveKit server at {shown} answered {exc.status} {exc.code}: {exc.message}",
                fix="check LIVEKIT_URL points at a LiveKit server",
            )
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        reason = str(exc) or f"no answer within {timeout:g}s"
        checks.fail(
            f"LiveKit server at {shown} unreachable: {type(exc).__name__}: {reason}",
            fix="check LIVEKIT_URL and that the server is up and reachable from here "
            "(--skip-livekit-server skips this check)",
        )
    else:
        n = len(rooms.rooms)
        checks.ok(
            f"LiveKit server at {shown} accepted the API key pair "
            f"({n} active room{'' if n == 1 else 's'})"
        )
    finally:
        await lkapi.aclose()


def _display_url(url: str) -> str:
    """The URL without userinfo, query or fragment (they may carry credentials)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    netloc = parts.netloc.rpartition("@")[2]
    extra = "?…" if parts.query or parts.fragment else ""
    if not parts.scheme and not netloc:
        return url.split("?")[0].split("@")[-1] + extra
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")) + extra


__all__ = ["doctor", "register"]
