"""`POST <path of WENMING_WEBHOOK_URL>`: Telegram's updates in webhook mode.

Thin: the secret, the size and the JSON are checked here; taking the update in (durably, once)
is bot/telegram/webhook_intake.py's. Nothing is read or stored before the secret matched.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web

from bot.telegram.webhook_intake import Verdict, WebhookIntake
from web.server import MAX_BODY

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_routes(path: str, secret: str, intake: WebhookIntake) -> list[web.RouteDef]:
    expected = secret.encode()

    async def post_update(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            log.warning("webhook post without the right secret token refused")
            return web.Response(status=403, text="forbidden")
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text="too large")
        try:
            data = json.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:  # chunked, no Content-Length
            return web.Response(status=413, text="too large")
        except ValueError:  # not JSON, or not UTF-8
            return web.Response(status=400, text="malformed JSON")
        verdict = await intake.receive(data)
        if verdict is Verdict.MALFORMED:
            return web.Response(status=400, text="not an Update")
        return web.Response(status=verdict.value)

    return [web.post(path, post_update)]
