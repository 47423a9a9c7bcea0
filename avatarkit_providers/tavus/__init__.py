"""Tavus for avatarkit: ``avatarkit.get("tavus", face_id=..., pal_id=...)``, the options of
``livekit.plugins.tavus.AvatarSession``. Light: the implementation loads when used."""
