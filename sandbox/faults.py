"""Fault injection: the next N calls of a method fail, lose their connection, or answer late."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sandbox.validation import ApiError

DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected fault",
    403: "Forbidden: injected fault",
    409: "Conflict: injected fault",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error: injected fault",
    502: "Bad Gateway",
}


@dataclass
class Fault:
    method: str  # lowercase method name, or "*" for any method
    remaining: int
    status: int
    description: str
    retry_after: int | None
    drop: bool
    # Carried out at once (the message is there for everyone to see), but the answer reaches
    # the bot only this many milliseconds later: a slow or congested network.
    hold_ms: int | None = None
    chat_id: int | None = None  # only calls aimed at this chat (None: any)

    def error(self) -> ApiError:
        params: dict[str, Any] | None = None
        if self.retry_after is not None:
            params = {"retry_after": self.retry_after}
        return ApiError(self.status, self.description, params)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, method: str, *, count: int = 1, status: int | None = None,
            description: str | None = None, retry_after: int | None = None,
            drop: bool = False, hold_ms: int | None = None,
            chat_id: int | None = None) -> Fault:
        if hold_ms is not None:
            fault = Fault(method.lower(), max(1, count), 200, "", None, False, max(0, hold_ms),
                          chat_id)
            self._faults.append(fault)
            return fault
        if status is None:
            status = 429 if retry_after is not None else 500
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            template = DEFAULT_DESCRIPTIONS.get(status, f"Error {status}: injected fault")
            description = template.format(retry_after=retry_after)
        fault = Fault(method.lower(), max(1, count), status, description, retry_after, drop,
                      None, chat_id)
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self._faults]

    def take(self, method: str, chat_id: object = None) -> Fault | None:
        """Consume one charge of the first fault matching this call, if any."""
        name = method.lower()
        for fault in self._faults:
            if fault.chat_id is not None and str(fault.chat_id) != str(chat_id):
                continue
            if fault.method in (name, "*"):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None
