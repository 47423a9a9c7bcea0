"""Runway Characters for avatarkit: ``avatarkit.get("runway", preset_id="influencer")``.

This module stays light (it is imported to list providers); the implementation lives in
:mod:`avatarkit_providers.runway.provider` and loads when the provider is used.
"""
