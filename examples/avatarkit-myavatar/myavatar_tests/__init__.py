"""Tests of the MyAvatar provider against a double of MyAvatar's API and an in-memory LiveKit.

The folder is not called ``tests``: run from the avatarkit repo, that name is taken.
"""
