"""Domain errors carry the catalogue key of the message the user sees."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal the user should read: `key` names a catalogue message, `values` fill it."""

    def __init__(self, key: str, /, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


class NotAllowed(DomainError):
    """The person's role does not permit this."""


class NotFound(DomainError):
    """What the user refers to does not exist (any more)."""


class StaleAction(DomainError):
    """A button from an earlier step, an earlier inspection, or someone else's message."""
