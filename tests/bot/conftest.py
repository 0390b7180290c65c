"""The real application, built by `build_application`, talking to the fake Bot API in-process.

Updates are real `telegram.Update` objects made from dicts shaped exactly like Telegram's and
fed through `Application.process_update`, so filters, handler order, the gatekeeper and the
error handler all run as in production. Every test also uses `error_log`: anything a handler
raised (logged at ERROR by the error handler) fails it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, Update

from bot.app import WenmingApplication, build_application
from bot.config import STANDARDS_DIR
from bot.domain.org import load_org_file
from bot.domain.standards import Item, Standard, load_standards
from bot.render.i18n import t
from bot.services.catalog import StandardCatalog
from bot.services.org_import import import_org
from bot.telegram.context import Deps
from db.models import Answer, Evidence, Inspection, Person
from tests.bot.fakes import JSON, FakeBotAPI
from tests.conftest import DEMO_CITY, ErrorLog, FakeClock, make_settings

Feed = Callable[[Update], Awaitable[None]]


@dataclass(frozen=True)
class TgUser:
    """A Telegram account on the user side."""

    id: int
    first_name: str
    language_code: str | None = "zh-hans"
    username: str | None = None

    def as_dict(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


# People of the demo city (examples/demo-city.yaml), and a stranger who is nobody there.
ZHANG = TgUser(10001, "张督查")  # inspector; his sites include 东岭皇冠假日酒店 (a hotel)
RESIDENT = TgUser(20001, "市民小李")
HOTEL = "东岭皇冠假日酒店"
ZH, EN = "zh-hans", "en"


class UpdateFactory:
    """Real `Update` objects, shaped like Telegram's, with increasing update ids."""

    def __init__(self, bot: Bot, api: FakeBotAPI) -> None:
        self.bot = bot
        self.api = api
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._file_ids = itertools.count(1)

    def _update(self, **payload: JSON) -> Update:
        update = Update.de_json({"update_id": next(self._update_ids), **payload}, self.bot)
        assert update is not None
        return update

    def _message(self, user: TgUser, message_id: int | None = None, **content: object) -> JSON:
        chat = {"id": user.id, "type": "private", "first_name": user.first_name}
        return {
            "message_id": message_id or self.api.next_message_id(user.id),
            "from": user.as_dict(),
            "chat": chat,
            "date": self.api.now(),
            **content,
        }

    def text(self, user: TgUser, text: str) -> Update:
        """Typed text; a leading /command gets its bot_command entity, as Telegram adds it."""
        content: JSON = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(command)}]
        return self._update(message=self._message(user, **content))

    def edited_text(self, user: TgUser, message_id: int, text: str) -> Update:
        """The user edited their earlier text message `message_id`: an edited_message update."""
        return self._update(edited_message=self._message(
            user, message_id, text=text, edit_date=self.api.now()))

    def press(self, user: TgUser, message: JSON, data: str) -> Update:
        """A press of an inline button with `data` on `message` (as the user sees it now)."""
        query_id = f"{user.id}{next(self._query_ids):06d}"
        self.api.open_query(query_id)
        return self._update(callback_query={
            "id": query_id,
            "from": user.as_dict(),
            "chat_instance": f"ci-{user.id}",
            "data": data,
            "message": message,
        })

    def press_old(self, user: TgUser, message_id: int, data: str) -> Update:
        """A press on a message Telegram no longer shows the bot (days old): date 0, no content.

        This is what the Bot API sends then (tdlib/telegram-bot-api#401); PTB parses it into an
        `InaccessibleMessage`.
        """
        chat = {"id": user.id, "type": "private", "first_name": user.first_name}
        return self.press(user, {"chat": chat, "message_id": message_id, "date": 0}, data)

    def photo(self, user: TgUser, data: bytes, width: int, height: int) -> Update:
        """A photo: Telegram's sizes array, the largest being the original upload."""
        n = next(self._file_ids)
        sizes = []
        for suffix, scale in (("s", 8), ("m", 2), ("x", 1)):
            file_id = f"photo-{n}-{suffix}"
            # Only the largest is downloadable: the bot must choose it.
            if scale == 1:
                self.api.add_file(file_id, data, f"photos/file_{n}.jpg")
            sizes.append({"file_id": file_id, "file_unique_id": f"u-{n}-{suffix}",
                          "width": width // scale, "height": height // scale,
                          "file_size": len(data) // (scale * scale)})
        return self._update(message=self._message(user, photo=sizes))

    def document(self, user: TgUser, data: bytes, file_name: str, mime_type: str) -> Update:
        """A file sent as a document (downloadable like a photo)."""
        n = next(self._file_ids)
        # Telegram's paths keep the extension only: documents/file_12.xlsx.
        self.api.add_file(f"doc-{n}", data, f"documents/file_{n}{Path(file_name).suffix}")
        return self._update(message=self._message(user, document={
            "file_id": f"doc-{n}", "file_unique_id": f"u-doc-{n}", "file_name": file_name,
            "mime_type": mime_type, "file_size": len(data)}))

    def location(self, user: TgUser, latitude: float, longitude: float) -> Update:
        return self._update(message=self._message(
            user, location={"latitude": latitude, "longitude": longitude}))

    def sticker(self, user: TgUser) -> Update:
        return self._update(message=self._message(user, sticker={
            "file_id": "sticker-1", "file_unique_id": "u-sticker-1", "type": "regular",
            "width": 512, "height": 512, "is_animated": False, "is_video": False,
            "emoji": "👍",
        }))


class Chat:
    """One person's private chat with the bot, driven the way a person would."""

    def __init__(self, user: TgUser, api: FakeBotAPI, updates: UpdateFactory,
                 feed: Feed) -> None:
        self.user = user
        self.api = api
        self.updates = updates
        self.feed = feed
        self.query_id: str | None = None

    @property
    def id(self) -> int:
        return self.user.id

    def last(self) -> JSON:
        return self.api.last(self.id)

    def transcript(self) -> list[JSON]:
        return self.api.sent(self.id)

    async def say(self, text: str) -> JSON:
        """Send text (or a command); returns the bot's newest message afterwards."""
        await self.feed(self.updates.text(self.user, text))
        return self.last()

    async def send_photo(self, data: bytes, width: int, height: int) -> JSON:
        await self.feed(self.updates.photo(self.user, data, width, height))
        return self.last()

    async def send_sticker(self) -> JSON:
        await self.feed(self.updates.sticker(self.user))
        return self.last()

    async def press(self, message: JSON, data: str) -> JSON:
        """Press a button on `message`; returns that message as it is now.

        The press must be answered exactly once, or the user's client spins.
        """
        current = self.api.message(self.id, message["message_id"])
        update = self.updates.press(self.user, current, data)
        assert update.callback_query is not None
        self.query_id = update.callback_query.id
        await self.feed(update)
        assert self.query_id in self.api.answers, f"press {data!r} was never answered"
        return self.api.message(self.id, message["message_id"])

    async def press_old(self, message: JSON, data: str) -> None:
        """Press a button on a message too old for Telegram to include in the update."""
        update = self.updates.press_old(self.user, message["message_id"], data)
        assert update.callback_query is not None
        self.query_id = update.callback_query.id
        await self.feed(update)
        assert self.query_id in self.api.answers, f"press {data!r} was never answered"

    def answer(self) -> JSON:
        """The answerCallbackQuery parameters for the latest press."""
        assert self.query_id is not None
        return self.api.answers[self.query_id]


def buttons(message: JSON) -> list[tuple[str, str]]:
    markup = message.get("reply_markup") or {}
    return [(b["text"], b.get("callback_data", ""))
            for row in markup.get("inline_keyboard", []) for b in row]


def data_where(message: JSON, predicate: Callable[[str, str], bool]) -> str:
    for text, data in buttons(message):
        if predicate(text, data):
            return data
    raise AssertionError(f"no such button in {buttons(message)!r}")


def verdict(code: str) -> Callable[[str, str], bool]:
    """The verdict button with this code (c, b, n, a); matched by data, never by label."""
    return lambda _text, data: data.startswith("v:") and data.endswith(f":{code}")


def action(name: str) -> Callable[[str, str], bool]:
    return lambda _text, data: data.startswith("i:") and data.split(":")[3] == name


def header(standard: Standard, step: int, lang: str = ZH) -> str:
    """The first lines of the screen for item `step` (1-based) of the hotel checklist."""
    item = standard.items[step - 1]
    return t(lang, "inspect.header", site=HOTEL, standard=standard.name.get(lang), step=step,
             total=len(standard.items), indicator=t(lang, f"indicator.{item.indicator.value}"))


async def open_hotel(chat: Chat) -> JSON:
    """/inspect, then the hotel: returns the message showing item 1."""
    menu = await chat.say("/inspect")
    assert menu["text"] == t(ZH, "inspect.choose_site")
    return await chat.press(menu, data_where(menu, lambda text, _d: text == HOTEL))


def first_index(standard: Standard, wanted: Callable[[Item], bool]) -> int:
    """0-based index of the first hotel item matching `wanted` (looked up, not hard-coded)."""
    for i, item in enumerate(standard.items):
        if wanted(item):
            return i
    raise AssertionError("the hotel standard has no such item")


async def answer_compliant_until(chat: Chat, msg: JSON, standard: Standard, index: int) -> JSON:
    """Press "compliant" until item `index` (0-based) is on screen."""
    for step in range(1, index + 1):
        assert msg["text"].startswith(header(standard, step))
        msg = await chat.press(msg, data_where(msg, verdict("c")))
    assert msg["text"].startswith(header(standard, index + 1))
    return msg


@dataclass
class Record:
    """What the database holds about the one inspection of a test."""

    inspection: Inspection
    answers: dict[str, Answer]
    evidence: int
    person: Person


async def record(db: async_sessionmaker[AsyncSession], person_id: int = ZHANG.id) -> Record:
    async with db() as s:
        inspection = (await s.scalars(select(Inspection))).one()
        answers = {a.item_key: a for a in (await s.scalars(
            select(Answer).where(Answer.inspection_id == inspection.id))).all()}
        evidence = await s.scalar(select(func.count()).select_from(Evidence).where(
            Evidence.inspection_id == inspection.id))
        person = await s.get(Person, person_id)
        assert person is not None
        return Record(inspection, answers, evidence or 0, person)


def jpeg(width: int = 800, height: int = 600) -> bytes:
    """A real photo-like JPEG, big enough to pass the media store's checks."""
    img = Image.new("RGB", (width, height), "#7a9a5a")
    draw = ImageDraw.Draw(img)
    draw.rectangle((width // 5, height // 5, width // 2, height // 2), fill="#30408a")
    draw.ellipse((width // 2, height // 3, width - 40, height - 40), fill="#c04030")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


@pytest.fixture
def api(clock: FakeClock) -> FakeBotAPI:
    return FakeBotAPI(clock)


@pytest.fixture(scope="session")
def standards() -> dict[str, Standard]:
    # Parsed once: Standard objects are immutable, and parsing them per test costs more than
    # the whole conversation a test runs.
    return load_standards(STANDARDS_DIR)


@pytest.fixture
async def app(
    database_url: str, tmp_path: Path, clock: FakeClock, api: FakeBotAPI, error_log: ErrorLog,
    standards: dict[str, Standard],
) -> AsyncIterator[WenmingApplication]:
    """The production application, its database holding the demo city, initialised."""
    settings = make_settings(database_url, tmp_path)
    application = build_application(settings, request=api, clock=clock,
                                    catalog=StandardCatalog(standards))
    org = load_org_file(DEMO_CITY, set(standards))
    await import_org(deps_of(application).uow, org)
    await application.initialize()
    try:
        yield application
    finally:
        await application.shutdown()
        await application.bot_data["engine"].dispose()


def deps_of(application: WenmingApplication) -> Deps:
    deps = application.bot_data["deps"]
    assert isinstance(deps, Deps)
    return deps


@pytest.fixture
def db(app: WenmingApplication) -> async_sessionmaker[AsyncSession]:
    """Sessions on the application's own database, for checking what a flow left behind."""
    return deps_of(app).uow.sessions


@pytest.fixture
def updates(app: WenmingApplication, api: FakeBotAPI) -> UpdateFactory:
    return UpdateFactory(app.bot, api)


@pytest.fixture
def feed(app: WenmingApplication) -> Feed:
    async def feed(update: Update) -> None:
        await app.process_update(update)

    return feed


@pytest.fixture
def hotel_standard(app: WenmingApplication) -> Standard:
    return deps_of(app).catalog.for_site_type("hotel")


@pytest.fixture
def chat_with(api: FakeBotAPI, updates: UpdateFactory, feed: Feed) -> Callable[[TgUser], Chat]:
    def make(user: TgUser) -> Chat:
        return Chat(user, api, updates, feed)

    return make


@pytest.fixture
def zhang(chat_with: Callable[[TgUser], Chat]) -> Chat:
    return chat_with(ZHANG)


@pytest.fixture
def resident(chat_with: Callable[[TgUser], Chat]) -> Chat:
    return chat_with(RESIDENT)

