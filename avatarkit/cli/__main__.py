"""``python -m avatarkit.cli``."""

from avatarkit.cli import main

main()
