"""Every built-in provider passes the conformance kit, on its double."""

from __future__ import annotations

from avatarkit.testing.conformance import ProviderConformance


class TestTavus(ProviderConformance):
    provider = "tavus"


class TestRunway(ProviderConformance):
    provider = "runway"


class TestLocal(ProviderConformance):
    provider = "local"


class TestBey(ProviderConformance):
    provider = "bey"


class TestAnam(ProviderConformance):
    provider = "anam"


class TestLemonSlice(ProviderConformance):
    provider = "lemonslice"


class TestInference(ProviderConformance):
    provider = "inference"


class TestSimli(ProviderConformance):
    provider = "simli"


class TestLiveAvatar(ProviderConformance):
    provider = "liveavatar"
