"""LiveKit Inference avatars for avatarkit: ``avatarkit.get("inference",
model="lemonslice/<agent_id>")``, the options of ``livekit.agents.inference.AvatarSession``.
Light: the implementation loads when used."""
