"""The ``local`` avatar: a face drawn on the CPU from the agent's speech, no account needed.

This module stays light (it is imported to list providers); the renderer, the worker and
the provider load when the provider is used.
"""
