"""The user-side /_sandbox/ API and robustness against malformed Bot API requests."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from sandbox.client import SandboxClient, SandboxError, b64
from sandbox.server import SandboxServer
from tests.sandbox.conftest import TOKEN, image_bytes


async def test_users_groups_and_chat_list(client: SandboxClient) -> None:
    u = await client.create_user("张三", user_id=777, username="zhang", last_name="Z")
    assert u == {"id": 777, "is_bot": False, "first_name": "张三", "last_name": "Z",
                 "username": "zhang", "language_code": "zh-hans"}
    with pytest.raises(SandboxError) as info:
        await client.create_user("dup", user_id=777)
    assert info.value.status == 400
    g = await client.create_group("社区", chat_id=-100123, chat_type="supergroup")
    assert g == {"id": -100123, "type": "supergroup", "title": "社区"}
    chats = {c["id"]: c for c in await client.chats()}
    assert chats[777]["first_name"] == "张三" and chats[777]["bot_member"] is True
    assert chats[-100123]["bot_member"] is False and chats[-100123]["last_message_id"] == 0


async def test_command_entities(client: SandboxClient, bot: Bot) -> None:
    u = await client.create_user("A")
    m = await client.send_text(u["id"], "/report@wenming_bot now see https://x.cn @someone")
    assert m["entities"][0] == {"type": "bot_command", "offset": 0, "length": 19}
    assert [e["type"] for e in m["entities"]] == ["bot_command", "url", "mention"]
    updates = await bot.get_updates()
    assert updates[0].message is not None
    assert updates[0].message.text is not None
    assert updates[0].message.parse_entities()  # entities deserialise in PTB


async def test_media_messages(client: SandboxClient, bot: Bot) -> None:
    u = await client.create_user("A")
    photo = await client.send_photo(u["id"], image_bytes(300, 200, "JPEG"), caption="/fix 门口")
    assert [p["width"] for p in photo["photo"]] == [90, 300]
    assert photo["photo"][0]["url"].startswith("/_sandbox/files/")
    assert photo["caption_entities"][0]["type"] == "bot_command"
    as_doc = await client.send_photo(u["id"], image_bytes(50, 50), as_document=True,
                                     filename="x.png", content_type="image/png")
    assert as_doc["document"]["mime_type"] == "image/png"
    assert as_doc["document"]["file_name"] == "x.png"
    doc = await client.send_document(u["id"], b"hello", filename="a.txt",
                                     content_type="text/plain")
    assert doc["document"]["file_size"] == 5
    album = await client.send_album(u["id"], [image_bytes(60, 60), image_bytes(70, 70)],
                                    caption="two")
    assert len(album) == 2 and album[0]["media_group_id"] == album[1]["media_group_id"]
    loc = await client.send_location(u["id"], 30.5, 114.3)
    assert loc["location"] == {"latitude": 30.5, "longitude": 114.3}
    sticker = await client.send_sticker(u["id"])
    assert sticker["sticker"]["width"] == 512
    voice = await client.send_voice(u["id"])
    assert voice["voice"]["mime_type"] == "audio/ogg"
    updates = await bot.get_updates()
    kinds = [u.message.effective_attachment.__class__.__name__
             for u in updates if u.message is not None]
    assert kinds == ["tuple", "Document", "Document", "tuple", "tuple", "Location", "Sticker",
                     "Voice"]
    assert await client.file_bytes(doc["document"]["file_id"]) == b"hello"


async def test_json_uploads(server: SandboxServer, client: SandboxClient) -> None:
    u = await client.create_user("A")
    data = image_bytes(120, 80)
    m = await client.request("POST", "/_sandbox/photos", json={
        "from_user_id": u["id"], "data_base64": b64(data), "caption": "c"})
    assert m["photo"][-1]["width"] == 120
    album = await client.request("POST", "/_sandbox/albums", json={
        "from_user_id": u["id"], "data_base64": [b64(data), b64(data)]})
    assert len(album) == 2
    with pytest.raises(SandboxError):
        await client.request("POST", "/_sandbox/photos", json={
            "from_user_id": u["id"], "data_base64": "!!not base64!!"})


async def test_callbacks(client: SandboxClient, bot: Bot) -> None:
    u = await client.create_user("A")
    await client.send_text(u["id"], "hi")
    msg = await bot.send_message(u["id"], "q", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("yes", callback_data="y")]]))
    with pytest.raises(SandboxError, match="no inline button"):
        await client.press(u["id"], u["id"], msg.message_id, "n")
    cb_id = await client.press(u["id"], u["id"], msg.message_id, "y")
    assert (await client.callback(cb_id))["answered"] is False
    updates = await bot.get_updates()
    query = updates[-1].callback_query
    assert query is not None and query.data == "y" and query.message is not None
    assert await query.answer("收到", show_alert=True)
    status = await client.callback(cb_id)
    assert status["answered"] and status["text"] == "收到" and status["show_alert"]


async def test_events_long_poll(client: SandboxClient, bot: Bot) -> None:
    u = await client.create_user("A")
    start = await client.events()
    poll = asyncio.create_task(client.events(after=start["cursor"], timeout=5, chat_id=u["id"]))
    await asyncio.sleep(0.05)
    await client.send_text(u["id"], "hey")
    got = await poll
    assert [e["type"] for e in got["events"]] == ["message"]
    msg = await bot.send_message(u["id"], "a")
    await bot.edit_message_text("b", u["id"], msg.message_id)
    await bot.delete_message(u["id"], msg.message_id)
    later = await client.events(after=got["cursor"])
    assert [e["type"] for e in later["events"]] == ["message", "edit", "delete"]
    assert later["events"][1]["message"]["text"] == "b"


async def test_wait_for_bot_message_timeout(client: SandboxClient) -> None:
    u = await client.create_user("A")
    with pytest.raises(TimeoutError):
        await client.wait_for_bot_message(u["id"], timeout=0.3)


async def test_config_stats_reset(client: SandboxClient, bot: Bot) -> None:
    cfg = await client.set_config(flood_control=False, latency_ms=0)
    assert cfg["flood_control"] is False
    await bot.get_me()
    stats = await client.stats()
    assert stats["calls"]["getMe"] >= 1
    await client.inject_fault("sendMessage", count=3)
    assert len(await client.request("GET", "/_sandbox/faults")) == 1
    with pytest.raises(SandboxError):
        await client.inject_fault("noSuchMethod")
    await client.create_user("A")
    await client.reset()
    assert await client.users() == [] and await client.chats() == []
    assert await client.request("GET", "/_sandbox/faults") == []


async def test_web_page_is_served(server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/") as r:
            assert r.status == 200 and "text/html" in r.content_type
        async with http.get(server.url + "/web/../server.py") as r:
            assert r.status == 404


MALFORMED: list[tuple[str, dict[str, object]]] = [
    ("sendMessage", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}),
    ("sendMessage", {"data": b"[1,2]", "headers": {"Content-Type": "application/json"}}),
    ("sendMessage", {"json": {"chat_id": {"a": 1}, "text": "x"}}),
    ("sendMessage", {"json": {"chat_id": "abc", "text": ["x"]}}),
    ("sendMessage", {"data": {"chat_id": "1", "text": "x", "reply_markup": "{bad"}}),
    ("sendMessage", {"data": {"chat_id": "1", "text": "x", "reply_markup": "[1]"}}),
    ("sendMessage", {"json": {"chat_id": 1, "text": "x",
                              "reply_markup": {"inline_keyboard": [[1]]}}}),
    ("sendMessage", {"json": {"chat_id": 1, "text": "x",
                              "reply_markup": {"inline_keyboard": "no"}}}),
    ("sendMessage", {"json": {"chat_id": 1, "text": "x", "reply_parameters": "7"}}),
    ("sendMessage", {"data": b"\xff\xfe", "headers": {"Content-Type": "text/plain"}}),
    ("sendMessage", {"data": b"--x\r\nbroken", "headers": {
        "Content-Type": "multipart/form-data; boundary=x"}}),
    ("sendMediaGroup", {"json": {"chat_id": 1, "media": [1, 2]}}),
    ("sendMediaGroup", {"json": {"chat_id": 1, "media": "[{\"type\":\"photo\"},{}]"}}),
    ("sendPhoto", {"json": {"chat_id": 1, "photo": 12345}}),
    ("editMessageText", {"json": {"chat_id": 1, "message_id": "x", "text": "t"}}),
    ("deleteMessages", {"json": {"chat_id": 1, "message_ids": ["a"]}}),
    ("getUpdates", {"json": {"offset": "x", "limit": {}, "timeout": []}}),
    ("setWebhook", {"json": {"url": "ftp://x"}}),
    ("setMyCommands", {"json": {"commands": {"a": 1}}}),
    ("sendLocation", {"json": {"chat_id": 1, "latitude": "north", "longitude": 1}}),
    ("answerCallbackQuery", {"json": {"callback_query_id": 5}}),
    ("getChatMember", {"json": {"chat_id": 1, "user_id": None}}),
    ("noSuchMethod", {}),
]


@pytest.mark.parametrize(("method", "kwargs"), MALFORMED)
async def test_malformed_bodies_never_500(server: SandboxServer, client: SandboxClient,
                                          method: str, kwargs: dict[str, object]) -> None:
    await client.create_user("A", user_id=1, started=True)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.api_base_url}{TOKEN}/{method}", **kwargs) as r:  # type: ignore[arg-type]
            body = json.loads(await r.text())
            assert 400 <= r.status < 500, body
            assert body["ok"] is False and body["error_code"] == r.status
            assert body["description"]


async def test_bad_token_and_unknown_method(server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.api_base_url}nonsense/getMe") as r:
            assert r.status == 401
        async with http.get(f"{server.api_base_url}{TOKEN}/GETME") as r:
            assert r.status == 200 and (await r.json())["result"]["is_bot"] is True
        async with http.post(f"{server.api_base_url}{TOKEN}/frobnicate") as r:
            body = await r.json()
            assert r.status == 404 and "not implemented by the Wenming sandbox" in \
                body["description"]
        async with http.get(f"{server.api_base_url}{TOKEN}/sendMessage",
                            params={"chat_id": "5", "text": "123"}) as r:
            assert r.status == 400  # chat 5 doesn't exist; parsed from the query string


async def test_query_string_and_text_stays_string(server: SandboxServer,
                                                  client: SandboxClient) -> None:
    u = await client.create_user("A", started=True)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.api_base_url}{TOKEN}/sendMessage",
                             data={"chat_id": str(u["id"]), "text": "true"}) as r:
            assert (await r.json())["result"]["text"] == "true"
        async with http.post(f"{server.api_base_url}{TOKEN}/sendMessage",
                             json={"chat_id": u["id"], "text": "456"}) as r:
            assert (await r.json())["result"]["text"] == "456"


async def test_user_api_errors_are_json(server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as http:
        for path, body in [("/_sandbox/messages", {"from_user_id": 99, "text": "x"}),
                           ("/_sandbox/messages", {"from_user_id": "abc"}),
                           ("/_sandbox/callbacks", {}),
                           ("/_sandbox/groups/-5/bot", {"by_user_id": 1})]:
            async with http.post(server.url + path, json=body) as r:
                assert 400 <= r.status < 500
                assert (await r.json())["ok"] is False
        async with http.post(server.url + "/_sandbox/users", data=b"{{{",
                             headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
        async with http.get(server.url + "/_sandbox/chats/x/messages") as r:
            assert r.status == 400


def test_b64_helper() -> None:
    assert base64.b64decode(b64(b"\x00\x01")) == b"\x00\x01"


async def test_the_clock_moves_message_dates_and_tells_the_application(
    server: SandboxServer, client: SandboxClient, bot: Bot
) -> None:
    """Issue 11 item 10: the clock control moves the time the sandbox (and its bot) runs on."""
    moved: list[float] = []
    server.state.clock.on_change(lambda: moved.append(server.state.clock.offset))
    server.state.clock.add_jump("noon", "noon", lambda now: now + 1800)
    u = await client.create_user("张三", user_id=778)
    first = await client.send_text(u["id"], "before")
    cursor = (await client.events(0, 0))["cursor"]
    clock = await client.advance_clock(days=1, hours=2)
    assert clock["offset_seconds"] == 26 * 3600 and moved == [26 * 3600]
    assert [j["name"] for j in clock["jumps"]] == ["noon"]
    later = await client.send_text(u["id"], "after")
    assert later["date"] - first["date"] >= 26 * 3600
    sent = await bot.send_message(u["id"], "from the bot")
    assert sent.date.timestamp() >= first["date"] + 26 * 3600
    assert abs(server.state.clock.now().timestamp() - sent.date.timestamp()) < 5
    jumped = await client.jump_clock("noon")
    assert jumped["offset_seconds"] >= 26 * 3600 + 1799
    events = (await client.events(cursor, 0))["events"]
    assert [e["clock"]["offset_seconds"] for e in events if e["type"] == "clock"] == [
        26 * 3600, jumped["offset_seconds"]]
    for bad in ({"advance_seconds": -3600}, {"advance_seconds": 0}, {"jump": "tomorrow"}):
        with pytest.raises(SandboxError):  # the clock only moves forward, to known jumps
            await client.request("POST", "/_sandbox/clock", json=bad)
    assert (await client.clock())["offset_seconds"] == jumped["offset_seconds"]
