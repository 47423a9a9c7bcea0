"""MyAvatar avatars for LiveKit Agents: ``avatarkit.get("myavatar", ...)`` (entry point: plugin)."""
