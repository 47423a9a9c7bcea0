"""LiveAvatar for avatarkit: ``avatarkit.get("liveavatar", avatar_id=...)``, the options of
``livekit.plugins.liveavatar.AvatarSession``. Light: the implementation loads when used."""
