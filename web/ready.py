"""Readiness: `GET /readyz` is 200 only when every check passes, else 503 naming each failing
check and why. The checks are given by the composition root (bot/app.py): each returns None
when fine, or the reason it is not; each is bounded in time, and they run at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

Check = Callable[[], Awaitable[str | None]]
CHECK_TIMEOUT = 4.0  # below a typical probe timeout (5 s)


async def _run(check: Check) -> str | None:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:.0f} s"
    except Exception as exc:  # a failing check is an answer, never a 500
        return _first_line(f"{type(exc).__name__}: {exc}")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else text


async def evaluate(checks: Mapping[str, Check]) -> tuple[bool, dict[str, dict[str, str]]]:
    reasons = await asyncio.gather(*(_run(check) for check in checks.values()))
    report = {name: ({"status": "ok"} if reason is None
                     else {"status": "failing", "reason": _first_line(reason)})
              for name, reason in zip(checks, reasons, strict=True)}
    return all(reason is None for reason in reasons), report


def ready_routes(checks: Mapping[str, Check]) -> list[web.RouteDef]:
    async def readyz(request: web.Request) -> web.Response:
        ready, report = await evaluate(checks)
        return web.json_response({"status": "ready" if ready else "unready", "checks": report},
                                 status=200 if ready else 503)

    return [web.get("/readyz", readyz)]
