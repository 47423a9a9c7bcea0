"""Provider doubles: declared in a ProviderSpec, loaded through the registry, and what the
built-in providers' doubles give the command line."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import pytest

import avatarkit
from avatarkit import ConfigurationError, ProviderSpec
from avatarkit.doubles import Offline, ProviderDouble
from avatarkit_providers.local.double import LocalDouble
from avatarkit_providers.runway.double import RunwayDouble
from avatarkit_providers.runway.emulator.emulator import EMULATED_LABEL, face_video


class OfflineOnly(ProviderDouble):
    label = "mirror (here)"

    @contextlib.asynccontextmanager
    async def offline(self, given: Mapping[str, Any], *, size: int) -> AsyncIterator[Offline]:
        yield Offline(self.label, {"width": size, **given})


NotADouble = object


def spec(double: str | None) -> ProviderSpec:
    return ProviderSpec("mirror", "test", "tests.helpers.echo:MirrorProvider", double=double)


def test_a_double_path_is_validated_like_the_others() -> None:
    with pytest.raises(ConfigurationError, match=r"ProviderSpec.double must be 'package.module"):
        spec("tests.core.test_doubles.OfflineOnly")


def test_the_registry_loads_a_declared_double(
    third_party: Callable[[ProviderSpec], None],
) -> None:
    third_party(spec("tests.core.test_doubles:OfflineOnly"))
    double = avatarkit.provider_info("mirror").load_double()
    assert isinstance(double, OfflineOnly)
    assert not double.can_serve()
    with pytest.raises(ConfigurationError, match="no remote API to emulate"):
        double.serve(port=0, runtime_cap=1.0)


def test_no_double_is_none_and_a_wrong_one_says_what_it_must_be(
    third_party: Callable[[ProviderSpec], None],
) -> None:
    third_party(spec(None))
    assert avatarkit.provider_info("mirror").load_double() is None
    third_party(
        ProviderSpec(
            "mirror2", "t", "tests.helpers.echo:MirrorProvider", double=f"{__name__}:NotADouble"
        )
    )
    with pytest.raises(ConfigurationError, match=r"not an avatarkit\.doubles\.ProviderDouble"):
        avatarkit.provider_info("mirror2").load_double()


def test_the_built_in_providers_declare_their_doubles() -> None:
    assert isinstance(avatarkit.provider_info("runway").load_double(), RunwayDouble)
    assert isinstance(avatarkit.provider_info("local").load_double(), LocalDouble)
    assert RunwayDouble.can_serve() and not LocalDouble.can_serve()


async def test_local_runs_as_it_is_at_the_asked_size() -> None:
    async with LocalDouble().offline({"fps": 25}, size=128) as run:
        assert run == Offline("local", {"width": 128, "height": 128, "fps": 25})


async def test_runway_runs_on_its_emulator_unless_given_a_key() -> None:
    async with RunwayDouble().offline({"preset_id": "cat-character"}, size=64) as run:
        assert run.label == "runway (emulated)"
        assert run.options["preset_id"] == "cat-character"  # the user's options win
        url, key = run.options["api_url"], run.options["api_key"]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{url}/v1/realtime_sessions/x", headers={"Authorization": "Bearer no"}) as r,
        ):
            assert r.status == 401  # an emulator is listening there
        assert key != "no"
    async with RunwayDouble().offline({"api_key": "key_users_own"}, size=64) as run:
        assert run == Offline("runway", {"preset_id": "influencer", "api_key": "key_users_own"})
        assert "key_users_own" not in repr(run)  # options may hold credentials


async def test_runway_serves_its_emulator_with_the_variables_an_agent_sets() -> None:
    async with RunwayDouble().serve(port=0, runtime_cap=5.0) as served:
        assert "emulated" in served.title
        assert served.env["RUNWAYML_BASE_URL"] == served.url
        assert served.env["RUNWAYML_API_SECRET"]


def test_the_emulated_avatar_says_so_in_its_video() -> None:
    assert EMULATED_LABEL == "runway (emulated)"
    assert face_video(64)().label == EMULATED_LABEL
