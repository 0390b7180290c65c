"""`GET /metrics`: the application's registry in Prometheus' text format."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.observability.metrics import Metrics


def metrics_routes(metrics: Metrics) -> list[web.RouteDef]:
    async def scrape(request: web.Request) -> web.Response:
        response = web.Response(body=await metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return [web.get("/metrics", scrape)]
