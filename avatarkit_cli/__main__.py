"""``python -m avatarkit_cli``."""

from avatarkit_cli import main

main()
