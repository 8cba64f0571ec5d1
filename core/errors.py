"""Errors a person sees: each carries a message fit to show on screen (Korean first)."""

from __future__ import annotations


class ChannelDeskError(Exception):
    """Root of the errors a service raises for a person to read."""


class PermissionDenied(ChannelDeskError):
    """The caller's role may not do this."""


class ValidationFailed(ChannelDeskError):
    """The input is wrong; nothing was written."""


class NotFound(ChannelDeskError):
    pass


class Conflict(ChannelDeskError):
    """The state changed under us (another staff member acted first); nothing was written."""
