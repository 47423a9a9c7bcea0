"""Anam for avatarkit: ``avatarkit.get("anam", persona_config=...)``, the options of
``livekit.plugins.anam.AvatarSession`` (its ``PersonaConfig``, or a dict of the same fields).
Light: the implementation loads when used."""
