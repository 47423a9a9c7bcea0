"""avatarkit's conformance kit: the checks every provider passes, run on MyAvatar's double."""

from __future__ import annotations

from avatarkit.testing.conformance import ProviderConformance


class TestMyAvatar(ProviderConformance):
    provider = "myavatar"  # the double (plugin.py) supplies the key, the URL and an avatar
