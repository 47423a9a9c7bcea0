import logging

logger = logging.getLogger("avatarkit.runway")
