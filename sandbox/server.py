"""The sandbox HTTP server: Bot API, file downloads, user-side JSON API and the web page."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from sandbox.botapi import METHODS, BotApi
from sandbox.faults import FaultInjector
from sandbox.state import SandboxState
from sandbox.userapi import setup_user_routes
from sandbox.validation import ApiError, Params, UploadedFile, decode_form_value

log = logging.getLogger("sandbox")

TOKEN_RE = re.compile(r"^(\d+):[A-Za-z0-9_-]{5,}$")
CLIENT_MAX_SIZE = 60 * 1024 * 1024  # Telegram accepts 50 MB uploads; leave room for the rest
WEB_DIR = Path(__file__).parent / "web"
_dumps = partial(json.dumps, ensure_ascii=False)

STATE_KEY = web.AppKey("state", SandboxState)
FAULTS_KEY = web.AppKey("faults", FaultInjector)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


def error_response(state: SandboxState, err: ApiError) -> web.Response:
    state.errors[str(err.status)] += 1
    return json_response(err.envelope(), status=err.status)


async def read_params(request: web.Request) -> dict[str, Any]:
    """Merge query string and body (any encoding PTB or other clients use) into one dict."""
    values: dict[str, Any] = {k: decode_form_value(k, v) for k, v in request.query.items()}
    if not request.can_read_body:
        return values
    ctype = request.content_type
    try:
        if ctype == "application/x-www-form-urlencoded" and (
                await request.read()).lstrip().startswith(b"{"):
            ctype = "application/json"  # `curl -d '{...}'` without a Content-Type header
        if ctype == "application/json":
            body = await request.read()
            if body.strip():
                data = json.loads(body)
                if not isinstance(data, dict):
                    raise ApiError(400, "Bad Request: JSON body must be an object")
                values.update(data)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    values[key] = UploadedFile(value.filename, value.content_type,
                                               value.file.read())
                else:
                    values[key] = decode_form_value(key, str(value))
        else:
            body = await request.read()
            if body.strip():
                # Unlabelled bodies: be generous and try JSON (curl -d '{...}' users).
                data = json.loads(body)
                if isinstance(data, dict):
                    values.update(data)
    except ApiError:
        raise
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, "Request Entity Too Large") from exc
    except Exception as exc:  # any body the parsers choke on is the client's fault
        raise ApiError(400, f"Bad Request: can't parse request body: {exc}") from exc
    return values


class BotApiHandler:
    def __init__(self, state: SandboxState, faults: FaultInjector) -> None:
        self.state = state
        self.faults = faults
        self.api = BotApi(state)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = unquote(request.match_info["token"])
        name = request.match_info["method"]
        m = TOKEN_RE.match(token)
        if not m:
            return error_response(self.state, ApiError(401, "Unauthorized"))
        self.state.bot_id = int(m.group(1))
        entry = METHODS.get(name.lower())
        if entry is None:
            log.warning("Bot API method %r is not implemented by the sandbox", name)
            self.state.calls[name] += 1
            return error_response(self.state, ApiError(
                404, f"Not Found: method '{name}' is not implemented by the Wenming sandbox"))
        canonical, handler = entry
        self.state.calls[canonical] += 1
        try:
            params = await read_params(request)
            if self.state.latency_ms > 0:
                await asyncio.sleep(self.state.latency_ms / 1000)
            fault = self.faults.take(canonical, params.get("chat_id"))
            if fault is not None and fault.drop:
                log.info("fault injection: dropping the connection of %s", canonical)
                if request.transport is not None:
                    request.transport.abort()
                self.state.errors["dropped"] += 1
                raise asyncio.CancelledError  # aiohttp ends the handler without a response
            if fault is not None and fault.hold_ms is None:
                chat = str(params.get("chat_id", ""))
                if fault.status == 429 and chat.lstrip("-").isdigit():
                    self.state.flood.refused_by_fault(int(chat), fault.retry_after or 1)
                raise fault.error()
            result = await handler(self.api, Params(params))
            if fault is not None and fault.hold_ms:
                log.info("fault injection: holding the answer of %s for %d ms", canonical,
                         fault.hold_ms)
                await asyncio.sleep(fault.hold_ms / 1000)
        except ApiError as err:
            if err.status >= 500:
                log.info("%s -> injected %s", canonical, err.status)
            return error_response(self.state, err)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # Almost always malformed input that slipped past the typed accessors.
            log.warning("%s: bad input handled as 400", canonical, exc_info=True)
            return error_response(self.state, ApiError(
                400, f"Bad Request: invalid parameters for {canonical}: {exc}"))
        return json_response({"ok": True, "result": result})


async def handle_file_download(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    token = unquote(request.match_info["token"])
    if not TOKEN_RE.match(token):
        return error_response(state, ApiError(401, "Unauthorized"))
    stored = state.files.by_path(unquote(request.match_info["path"]))
    if stored is None:
        return error_response(state, ApiError(404, "Not Found"))
    return web.Response(body=stored.data, content_type=stored.mime_type)


PLACEHOLDER = ("<!doctype html><meta charset=utf-8><title>Wenming sandbox</title>"
               "<p>Wenming Bot API sandbox is running. The web page (sandbox/web/) is not "
               "installed yet; the user-side API lives under <code>/_sandbox/</code>.</p>")


def make_static_handlers(web_dir: Path) -> tuple[Any, Any]:
    root = web_dir.resolve()

    async def index(request: web.Request) -> web.StreamResponse:
        page = web_dir / "index.html"
        if page.is_file():
            return web.FileResponse(page)
        return web.Response(text=PLACEHOLDER, content_type="text/html")

    async def asset(request: web.Request) -> web.StreamResponse:
        target = (root / request.match_info["name"]).resolve()
        if root not in target.parents:
            raise web.HTTPNotFound()
        return web.FileResponse(target)  # 404s by itself if the file is missing

    return index, asset


@web.middleware
async def safety_net(request: web.Request, handler: Any) -> web.StreamResponse:
    """Nothing may escape as an HTML 500 traceback: answer JSON, log loudly."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as err:
        return error_response(request.app[STATE_KEY], err)
    except web.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("sandbox bug while handling %s %s", request.method, request.path)
        return error_response(request.app[STATE_KEY], ApiError(
            500, "Internal Server Error: sandbox bug, see the sandbox log"))


def build_app(state: SandboxState, faults: FaultInjector, web_dir: Path = WEB_DIR
              ) -> web.Application:
    app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[safety_net])
    app[STATE_KEY] = state
    app[FAULTS_KEY] = faults
    bot = BotApiHandler(state, faults)
    app.router.add_route("*", "/bot{token}/{method}", bot.handle)
    app.router.add_get("/file/bot{token}/{path:.+}", handle_file_download)
    index, asset = make_static_handlers(web_dir)
    app.router.add_get("/", index)
    app.router.add_get("/web/{name:.+}", asset)
    setup_user_routes(app, state, faults)
    return app


class SandboxServer:
    """The emulator, runnable in-process (tests) or standalone (python -m sandbox)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, flood_control: bool = True,
                 bot_username: str = "wenming_bot", bot_first_name: str = "文明督查",
                 web_dir: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.state = SandboxState(bot_username, bot_first_name)
        self.state.flood.enabled = flood_control
        self.faults = FaultInjector()
        self.web_dir = web_dir or WEB_DIR
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base_url(self) -> str:
        return self.url + "/bot"

    @property
    def file_base_url(self) -> str:
        return self.url + "/file/bot"

    async def start(self) -> None:
        app = build_app(self.state, self.faults, self.web_dir)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])  # the port the OS picked
        log.info("Wenming sandbox listening on %s", self.url)

    async def stop(self) -> None:
        await self.state.updates.close()
        self.state.events.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()
