"""Liveness: `GET /healthz` answers while the process's event loop runs."""

from __future__ import annotations

from aiohttp import web


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def health_routes() -> list[web.RouteDef]:
    return [web.get("/healthz", healthz)]
