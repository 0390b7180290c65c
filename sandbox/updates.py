"""The bot's update queue: getUpdates long polling and webhook delivery."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sandbox.validation import ApiError

log = logging.getLogger("sandbox.updates")

Update = dict[str, Any]
# Telegram's default when allowed_updates is empty: everything except these.
DEFAULT_EXCLUDED = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
WEBHOOK_TIMEOUT = 60.0
WEBHOOK_MAX_BACKOFF = 5.0


def update_type(update: Update) -> str:
    return next(k for k in update if k != "update_id")


def webhook_queue(update: Update) -> object:
    """Telegram's webhook_queue_id: the chat for messages, the user (and a type tag) for
    callback queries and the like; one update of a queue is delivered at a time."""
    utype = update_type(update)
    body = update[utype]
    chat = body.get("chat") or (body.get("message") or {}).get("chat")
    if utype != "callback_query" and chat:
        return chat["id"]
    return (utype, (body.get("from") or {}).get("id"))


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = field(default=0)


class UpdateQueue:
    def __init__(self) -> None:
        self._pending: list[Update] = []
        self._next_id = 1
        self._changed = asyncio.Event()
        self._poll_token: object | None = None
        self._closing = False
        self.allowed: list[str] | None = None
        self.webhook: Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self.listeners: list[Callable[[Update], None]] = []

    # ------------------------------------------------------------------------------ queue

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def push(self, utype: str, payload: dict[str, Any]) -> Update:
        update: Update = {"update_id": self._next_id, utype: payload}
        self._next_id += 1
        self._pending.append(update)
        for listener in list(self.listeners):
            listener(update)
        self._notify()
        return update

    @property
    def next_id(self) -> int:
        return self._next_id

    def continue_from(self, next_id: int) -> None:
        """Number the next update `next_id` or above: ids never go back (Telegram's keep
        growing, so a bot that remembers the ones it handled ignores a repeated one)."""
        self._next_id = max(self._next_id, next_id)

    def pending_count(self) -> int:
        return len(self._pending)

    def pending(self) -> list[Update]:
        return list(self._pending)

    def clear(self) -> None:
        self._pending.clear()
        self._notify()

    def _allowed(self, update: Update) -> bool:
        utype = update_type(update)
        if not self.allowed:
            return utype not in DEFAULT_EXCLUDED
        return utype in self.allowed

    def confirm(self, offset: int | None) -> None:
        if not offset:
            return
        if offset < 0:
            # "Negative offset ... All previous updates will be forgotten."
            keep = -offset
            if len(self._pending) > keep:
                del self._pending[: len(self._pending) - keep]
        else:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]

    def _select(self, limit: int) -> list[Update]:
        # Updates of types the bot opted out of are dropped, as Telegram never stores them.
        self._pending = [u for u in self._pending if self._allowed(u)]
        return self._pending[:limit]

    # ------------------------------------------------------------------------------ polling

    async def get_updates(self, offset: int | None, limit: int, wait_s: float,
                          allowed_updates: list[str] | None) -> list[Update]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        if allowed_updates is not None:
            self.allowed = [str(a) for a in allowed_updates]
        self.confirm(offset)
        token = object()
        self._poll_token = token
        self._notify()  # wakes an older poll so it can answer 409
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait_s)
        while True:
            changed = self._changed
            batch = self._select(limit)
            if batch or self._closing:
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass
            if self._poll_token is not token:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; make sure "
                                    "that only one bot instance is running")

    # ------------------------------------------------------------------------------ webhook

    def set_webhook(self, url: str, secret_token: str | None, allowed: list[str] | None,
                    drop_pending: bool, max_connections: int) -> None:
        if drop_pending:
            self._pending.clear()
        if allowed is not None:
            self.allowed = [str(a) for a in allowed]
        self._stop_webhook_task()
        self.webhook = Webhook(url, secret_token, max_connections)
        self._webhook_task = asyncio.create_task(self._deliver_loop(self.webhook))
        self._notify()  # a long poll in flight now answers 409

    def delete_webhook(self, drop_pending: bool) -> None:
        if drop_pending:
            self._pending.clear()
        self._stop_webhook_task()
        self.webhook = None

    def _stop_webhook_task(self) -> None:
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None

    def webhook_info(self) -> dict[str, Any]:
        hook = self.webhook
        info: dict[str, Any] = {"url": hook.url if hook else "", "has_custom_certificate": False,
                                "pending_update_count": len(self._pending)}
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.last_error_date:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
            if self.allowed:
                info["allowed_updates"] = self.allowed
        return info

    async def _deliver_loop(self, hook: Webhook) -> None:
        """Deliver as Telegram does: only the head of each queue (a chat's messages, a user's
        callback queries) is in flight, retried until the receiver says 2xx; different queues
        go in parallel, up to max_connections."""
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT)
        in_flight: dict[object, asyncio.Task[None]] = {}
        backoff: dict[object, float] = {}

        async def deliver(update: Update, key: object) -> None:
            error: str | None
            try:
                async with session.post(hook.url, json=update, headers=headers) as resp:
                    await resp.read()
                    error = None if 200 <= resp.status < 300 else (
                        f"Wrong response from the webhook: {resp.status} {resp.reason}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any network failure is a failed delivery
                error = f"Connection failed: {type(exc).__name__}: {exc}"
            try:
                if error is None:
                    self._pending = [u for u in self._pending if u is not update]
                    hook.delivered += 1
                    backoff.pop(key, None)
                    return
                hook.last_error_date = int(time.time())
                hook.last_error_message = error
                delay = backoff.get(key, 0.1)
                backoff[key] = min(delay * 2, WEBHOOK_MAX_BACKOFF)
                log.info("webhook delivery of update %s failed (%s); retrying in %.1fs",
                         update["update_id"], error, delay)
                await asyncio.sleep(delay)
            finally:
                del in_flight[key]
                self._notify()

        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                while True:
                    changed = self._changed
                    self._select(len(self._pending))
                    heads: set[object] = set()
                    for update in list(self._pending):
                        key = webhook_queue(update)
                        if key in heads:
                            continue  # not the head of its queue
                        heads.add(key)
                        if key in in_flight or len(in_flight) >= hook.max_connections:
                            continue
                        in_flight[key] = asyncio.create_task(deliver(update, key))
                    await changed.wait()
            finally:
                for task in list(in_flight.values()):
                    task.cancel()

    async def close(self) -> None:
        self._closing = True
        task = self._webhook_task
        self._stop_webhook_task()
        self._notify()
        if task is not None:
            try:
                await task
            except asyncio.CancelledError:
                pass

    def reset(self) -> None:
        self._pending.clear()
        self.allowed = None
        self._stop_webhook_task()
        self.webhook = None
        self._notify()
