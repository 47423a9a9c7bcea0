"""LiveAvatar (HeyGen) provider tests."""
