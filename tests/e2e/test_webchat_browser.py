"""The sandbox web chat page, driven in headless Chromium as a newcomer would use it.

The sandbox and a real PTB bot run on their own asyncio loop in a background thread
(`SandboxInThread`); selenium is synchronous and drives the browser from the test thread.
`run_bot` is the one place that decides which bot talks to the sandbox.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from bot.app import Wenming, build_application
from bot.config import Secret, Settings, sqlite_url
from bot.domain.org import load_org_file
from bot.domain.standards import load_standards
from bot.render.i18n import t
from bot.services.org_import import import_org
from db.migrate import upgrade_async
from db.session import create_engine, create_sessionmaker
from db.uow import UnitOfWorkFactory
from sandbox.server import SandboxServer
from tests.conftest import DEMO_CITY, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TOKEN = "123456:TESTtokenWebChat"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = (
    "Headless Chromium is needed for the web chat test. Install it with:\n"
    "    sudo apt-get update && sudo apt-get install -y chromium chromium-driver\n"
    "(Debian/Ubuntu packages; CI installs them.)"
)
LEAD_SCREENSHOT = Path("/tmp/webchat.png")
WAIT_S = 10


# --------------------------------------------------------------------------- the bot under test


@asynccontextmanager
async def run_bot(sandbox: SandboxServer) -> AsyncIterator[list[BaseException]]:
    """Run the real Wenming bot (demo city, fresh SQLite) against `sandbox` until the block exits.

    Yields the errors its handlers raised (collected from the error handler's log records).
    """
    errors: list[BaseException] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                errors.append(record.exc_info[1])
            else:
                errors.append(RuntimeError(record.getMessage()))

    handler = Collect(level=logging.ERROR)
    logging.getLogger().addHandler(handler)
    with tempfile.TemporaryDirectory() as tmp:
        url = sqlite_url(Path(tmp) / "webchat.db")
        await upgrade_async(url)
        org = load_org_file(DEMO_CITY, set(load_standards(ROOT / "standards")))
        engine = create_engine(url)
        await import_org(UnitOfWorkFactory(create_sessionmaker(engine)), org)
        await engine.dispose()
        settings = Settings(
            bot_token=Secret(TOKEN), api_base_url=sandbox.api_base_url,
            file_base_url=sandbox.file_base_url, database_url=Secret(url),
            media_dir=Path(tmp) / "media", poll_timeout=1,
        )
        bot = Wenming(build_application(settings))
        await bot.start(migrate=False)
        try:
            yield errors
        finally:
            await bot.stop()
            logging.getLogger().removeHandler(handler)


BotRunner = Callable[[SandboxServer], AbstractAsyncContextManager[list[BaseException]]]


class SandboxInThread:
    """The sandbox plus a bot, on a private event loop in a daemon thread."""

    def __init__(self, bot: BotRunner = run_bot) -> None:
        self._bot = bot
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-loop", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.url = ""
        self.bot_errors: list[BaseException] = []

    def start(self, timeout: float = 20) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("sandbox + bot did not start in time")
        if self._failure is not None:
            raise RuntimeError("sandbox + bot failed to start") from self._failure

    def stop(self, timeout: float = 15) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._failure is not None:
            raise RuntimeError("sandbox + bot failed while running") from self._failure

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with SandboxServer(flood_control=False) as sandbox:
                async with self._bot(sandbox) as errors:
                    self.url = sandbox.url
                    self.bot_errors = errors
                    self._ready.set()
                    await self._stop.wait()
        except BaseException as exc:  # reported to the test thread by start()/stop()
            self._failure = exc
        finally:
            self._ready.set()


@pytest.fixture
def sandbox_with_bot() -> Iterator[SandboxInThread]:
    world = SandboxInThread()
    world.start()
    try:
        yield world
    finally:
        world.stop()
    assert not world.bot_errors, f"bot handlers raised: {world.bot_errors!r}"


# ----------------------------------------------------------------------------------- the browser


@pytest.fixture
def chromium_driver(tmp_path: Path) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        # Deliberately a failure, not a skip: a silently skipped UI test protects nothing.
        pytest.fail(f"missing {', '.join(missing)}.\n{INSTALL_HINT}", pytrace=False)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--window-size=1280,900",
        "--lang=zh-CN",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    try:
        # Edits re-render a bubble, so an element found a moment ago may be gone: poll again.
        return WebDriverWait(
            driver,
            WAIT_S,
            poll_frequency=0.1,
            ignored_exceptions=(StaleElementReferenceException,),
        ).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}") from None


def bot_bubbles(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#messages li.msg.from-bot")


def js_errors(driver: WebDriver) -> list[str]:
    assert isinstance(driver, webdriver.Chrome)  # get_log is Chromium-only
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [e["message"] for e in entries if e["level"] == "SEVERE"]


def make_png(path: Path) -> Path:
    image = Image.new("RGB", (64, 48), (220, 40, 40))
    for x in range(64):
        image.putpixel((x, 24), (255, 255, 255))
    image.save(path, "PNG")
    return path


# ------------------------------------------------------------------------------------- the test


def test_newcomer_talks_to_the_bot_in_the_web_chat(
    sandbox_with_bot: SandboxInThread, chromium_driver: WebDriver, tmp_path: Path
) -> None:
    driver = chromium_driver
    driver.get(sandbox_with_bot.url + "/")
    wait_for(
        driver,
        lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live",
        "the events long-poll to connect",
    )

    # Become a resident through the quick-create button.
    driver.find_element(By.CSS_SELECTOR, 'button[data-preset="resident"]').click()
    wait_for(
        driver,
        lambda d: "居民" in d.find_element(By.ID, "chat-title").text,
        "the resident's private chat to open",
    )

    # /start + Enter, as a person types it.
    box = driver.find_element(By.ID, "composer-text")
    box.send_keys("/start")
    box.send_keys(Keys.ENTER)
    wait_for(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#messages li.msg.from-me"),
        "the user's own bubble",
    )
    greeting = t("zh-hans", "start.greeting.resident", name="赵居民")
    wait_for(driver, lambda d: any(greeting in b.text for b in bot_bubbles(d)),
             "the bot's greeting for a resident")

    # /lang answers with buttons; pressing one edits that message in place.
    box.send_keys("/lang")
    box.send_keys(Keys.ENTER)
    choose = wait_for(
        driver,
        lambda d: next((b for b in bot_bubbles(d) if b.find_elements(
            By.XPATH, ".//button[normalize-space()='English']")), None),
        "the language buttons",
    )
    bubbles_before = len(bot_bubbles(driver))
    choose.find_element(By.XPATH, ".//button[normalize-space()='English']").click()
    done = t("en", "lang.set")
    wait_for(driver, lambda d: any(done in b.text for b in bot_bubbles(d)), "the edited message")
    edited = next(b for b in bot_bubbles(driver) if done in b.text)
    assert "已编辑" in edited.find_element(By.CSS_SELECTOR, ".meta").text
    assert not edited.find_elements(By.CSS_SELECTOR, ".inline-keyboard"), "edit drops the keyboard"
    assert len(bot_bubbles(driver)) == bubbles_before, "the edit replaces the message"

    # A photo through the (hidden) file input behind the 🖼 button.
    driver.find_element(By.ID, "photo-input").send_keys(str(make_png(tmp_path / "red.png")))
    wait_for(
        driver,
        lambda d: d.execute_script(
            "const img = document.querySelector('#messages li.msg.from-me img');"
            "return !!img && img.complete && img.naturalWidth > 0;"
        ),
        "the uploaded photo to render as a loaded <img>",
    )

    # A location via the demo preset.
    driver.find_element(By.ID, "location-btn").click()
    driver.find_element(By.ID, "demo-location-btn").click()
    driver.find_element(By.CSS_SELECTOR, "#location-form button[type=submit]").click()
    wait_for(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .location a[href*='openstreetmap']"),
        "the location bubble",
    )

    driver.save_screenshot(str(tmp_path / "webchat.png"))
    shutil.copyfile(tmp_path / "webchat.png", LEAD_SCREENSHOT)

    # The persona is remembered: a reload reopens the same chat with its history.
    driver.refresh()
    wait_for(
        driver,
        lambda d: (
            "居民" in d.find_element(By.ID, "chat-title").text
            and any(t("en", "lang.set") in b.text for b in bot_bubbles(d))
        ),
        "the remembered persona + history",
    )

    # Phone-sized layout, for the lead to look at: the persona list slides away as a drawer.
    driver.set_window_size(390, 844)
    wait_for(
        driver,
        lambda d: d.execute_script(
            "const i = document.querySelector('#messages img');"
            "return !!i && i.naturalWidth > 0"
            "  && document.getElementById('sidebar').getBoundingClientRect().right <= 0;"
        ),
        "the photo after reload, with the drawer closed",
    )
    driver.save_screenshot(str(tmp_path / "webchat-mobile.png"))
    shutil.copyfile(
        tmp_path / "webchat-mobile.png", LEAD_SCREENSHOT.with_name("webchat-mobile.png")
    )

    assert js_errors(driver) == [], "the page logged errors"


def test_unit_group_is_created_with_members_and_a_chosen_sender(
    sandbox_with_bot: SandboxInThread, chromium_driver: WebDriver
) -> None:
    driver = chromium_driver
    driver.get(sandbox_with_bot.url + "/")
    wait_for(
        driver,
        lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live",
        "the events long-poll to connect",
    )

    # From an empty sandbox the unit-group preset offers the preset people as members.
    driver.find_element(By.CSS_SELECTOR, 'button[data-preset="unit_group"]').click()
    dialog = driver.find_element(By.ID, "group-dialog")
    wait_for(driver, lambda d: dialog.is_displayed(), "the group dialog")
    boxes = dialog.find_elements(By.CSS_SELECTOR, 'input[name="member"]')
    assert len(boxes) == 3 and all(b.is_selected() for b in boxes)
    dialog.find_element(By.ID, "group-submit").click()

    wait_for(
        driver,
        lambda d: "责任单位群" in d.find_element(By.ID, "chat-title").text,
        "the group chat to open",
    )
    wait_for(
        driver,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#messages li.service")) >= 3,
        "the join messages (bot + two members)",
    )
    wait_for(
        driver,
        lambda d: "机器人在群" in d.find_element(By.ID, "chat-subtitle").text,
        "the bot to be a member",
    )

    # Speak as the inspector, a member chosen in the sender select.
    sender = driver.find_element(By.ID, "sender-select")
    wait_for(
        driver,
        lambda d: len(sender.find_elements(By.TAG_NAME, "option")) == 3,
        "three members in the sender select",
    )
    sender.find_element(By.XPATH, "./option[contains(., '督查')]").click()
    box = driver.find_element(By.ID, "composer-text")
    box.send_keys("/help")
    box.send_keys(Keys.ENTER)
    group_help = t("zh-hans", "help.group").replace("&lt;", "<").replace("&gt;", ">")
    wait_for(
        driver,
        lambda d: any(group_help in b.text for b in bot_bubbles(d)),
        "the bot's reply in the group",
    )
    mine = driver.find_elements(By.CSS_SELECTOR, "#messages li.msg.from-me")
    assert [m.text.split("\n")[0] for m in mine] == ["/help"]
    # In a group the bot's bubble is labelled with its name.
    assert bot_bubbles(driver)[-1].find_element(By.CSS_SELECTOR, ".sender").text
    driver.save_screenshot(str(LEAD_SCREENSHOT.with_name("webchat-group.png")))
    assert js_errors(driver) == [], "the page logged errors"


HOSTILE_HTML = (
    '<b>bold</b><script>window.pwned=1</script><img src=x onerror="window.pwned=1">'
    '<a href="javascript:window.pwned=1">js</a><a href="https://example.org/">ok</a>'
    '<i onclick="window.pwned=1">it</i><tg-spoiler>secret</tg-spoiler>'
    '<pre><code class="language-python">x &lt; 1</code></pre><blink>plain</blink>'
)


def test_formatting_renders_only_telegrams_tags(
    sandbox_with_bot: SandboxInThread, chromium_driver: WebDriver
) -> None:
    driver = chromium_driver
    driver.get(sandbox_with_bot.url + "/")
    result = driver.execute_async_script(
        """
        const [html, done] = arguments;
        import("/web/format.js").then((f) => {
          const box = document.createElement("div");
          box.append(f.renderTelegramHtml(html));
          // "😀 bold": the emoji is two UTF-16 units, so bold starts at offset 3.
          const ents = document.createElement("div");
          ents.append(f.renderEntities("😀 bold <i>", [{type: "bold", offset: 3, length: 4},
                                                     {type: "text_link", offset: 8, length: 3,
                                                      url: "javascript:alert(1)"}]));
          const typed = document.createElement("div");
          typed.append(f.renderMessageText({text: "<b>hi</b>", from: {is_bot: false}}, "text"));
          done({html: box.innerHTML, ents: ents.innerHTML, typed: typed.innerHTML,
                pwned: window.pwned === 1});
        }, (e) => done({error: String(e)}));
        """,
        HOSTILE_HTML,
    )
    assert "error" not in result, result
    html = result["html"]
    assert "<b>bold</b>" in html
    link = '<a href="https://example.org/" target="_blank" rel="noopener noreferrer">ok</a>'
    assert link in html
    assert "<i>it</i>" in html
    assert 'class="spoiler"' in html and "secret" in html
    assert '<pre><code class="language-python">x &lt; 1</code></pre>' in html
    for bad in ("<script", "<img", "onerror", "onclick", "javascript:", "<blink"):
        assert bad not in html, f"{bad!r} survived: {html}"
    assert result["ents"] == "😀 <b>bold</b> &lt;i&gt;"
    assert result["typed"] == "&lt;b&gt;hi&lt;/b&gt;", "what a person typed is shown literally"
    assert result["pwned"] is False
