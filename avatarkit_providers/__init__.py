"""avatarkit's built-in providers, one subpackage each (``runway``, ``local``).

Each registers through the ``avatarkit`` entry-point group like a third-party provider, and
imports only the core (:mod:`avatarkit`); the import contract in ``pyproject.toml`` keeps it so.
"""
