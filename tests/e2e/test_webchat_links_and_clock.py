"""The web chat page with the demo city, in headless Chromium: links to the bot and the clock.

Issue 11 item 8: a unit member who never opened the private chat presses 申请延期 on a task card
in the group; the bot answers the press with `https://t.me/<bot>?start=task_<id>`, which the
page used to ignore, so the README's step 2 stalled. Telegram's apps open the private chat with
the bot and send `/start task_<id>`; the page now does the same for answerCallbackQuery's url,
for links in a message's text and for URL buttons (t.me and tg://resolve forms alike).

Issue 11 item 10: the page's 时钟 Clock panel moves the clock the bot runs on; "→ 下次周报"
brings the weekly bulletin into the group.

The world is what `wenming sandbox` starts (sandbox.run.start_demo_bot): the demo city
seeded into the sandbox, the bot on the sandbox's clock.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from bot.config import Settings
from bot.render.i18n import t
from sandbox.client import SandboxClient
from sandbox.run import SANDBOX_TOKEN, start_demo_bot
from sandbox.server import SandboxServer
from tests.e2e.chat import body
from tests.e2e.test_webchat_browser import (  # noqa: F401 (fixtures)
    SandboxInThread,
    bot_bubbles,
    chromium_driver,
    js_errors,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ADMIN = 10000  # 王管理
MEMBER = 10012  # 陈联络, of liaison group 1; never wrote to the bot
LIAISON_GROUP = -1001003
GROUP_TITLE = "第1网络包抓联络小组工作群"
JSON = dict[str, Any]
ASK_PHOTOS = t("zh-hans", "reports.ask_photos", max=5).split("（")[0]  # a report has begun


@asynccontextmanager
async def demo_bot(sandbox: SandboxServer) -> AsyncIterator[list[BaseException]]:
    with tempfile.TemporaryDirectory() as tmp:
        bot = await start_demo_bot(sandbox, Settings(poll_timeout=1), Path(tmp))
        try:
            yield []
        finally:
            await bot.stop()


@pytest.fixture
def demo_world() -> Iterator[SandboxInThread]:
    world = SandboxInThread(bot=demo_bot)
    world.start(timeout=60)
    try:
        yield world
    finally:
        world.stop()


def sandbox_call(url: str, call: Any) -> Any:
    """Run `await call(SandboxClient)` from the (synchronous) test thread."""
    async def go() -> Any:
        async with SandboxClient(url) as sb:
            return await call(sb)

    return asyncio.run(go())


def give_the_unit_a_task(url: str) -> int:
    """王管理 assigns liaison group 1 a task; returns its id once its card is in the group."""
    async def go(sb: SandboxClient) -> int:
        sent = await sb.send_text(ADMIN, "/task 东岭皇冠假日酒店 3 大堂垃圾桶满溢")
        done = await sb.wait_for_bot_message(ADMIN, after_message_id=sent["message_id"],
                                             timeout=20)
        task = int(body(done).split("#", 1)[1].split()[0])
        await sb.wait_for_bot_message(LIAISON_GROUP, timeout=20,
                                      predicate=lambda m: f"整改任务 #{task}" in body(m))
        return task

    result: int = sandbox_call(url, go)
    return result


def bot_posts(url: str, chat_id: int, **params: Any) -> None:
    """Something the bot sends (a link in HTML text, URL buttons), straight to the Bot API."""
    async def go() -> None:
        async with aiohttp.ClientSession() as http, http.post(
                f"{url}/bot{SANDBOX_TOKEN}/sendMessage", json={"chat_id": chat_id, **params}
        ) as resp:
            assert resp.status == 200, await resp.text()

    asyncio.run(go())


def open_page(driver: WebDriver, url: str) -> None:
    driver.get(url + "/")
    wait_for(driver, lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live",
             "the events long-poll to connect")


def open_group_as(driver: WebDriver, title: str, sender: str) -> None:
    entry = f"//ul[@id='group-list']//button[contains(., '{title}')]"
    # The group list is redrawn as chats change (e.g. the clock moves): click it found anew.
    click_fresh(driver, By.XPATH, entry)
    wait_for(driver, lambda d: title in d.find_element(By.ID, "chat-title").text, "the group")

    def choose(d: WebDriver) -> bool:
        # The select is re-rendered as the member list loads: find it afresh each try.
        select = Select(d.find_element(By.ID, "sender-select"))
        option = next((o for o in select.options if sender in o.text), None)
        if option is None:
            return False
        option.click()
        return sender in select.first_selected_option.text

    wait_for(driver, choose, f"{sender} chosen as the sender")


def in_private_chat_with_the_bot(driver: WebDriver, name: str, command: str,
                                 answer: str) -> None:
    """The page switched to `name`'s private chat, sent `command`, and the bot answered."""
    wait_for(driver, lambda d: name in d.find_element(By.ID, "chat-title").text
             and not d.find_element(By.ID, "group-tools").is_displayed(),
             f"{name}'s private chat to open")
    wait_for(driver, lambda d: any(b.text.split("\n")[0] == command for b in
                                   d.find_elements(By.CSS_SELECTOR, "#messages li.msg.from-me")),
             f"{command} sent by {name}")
    wait_for(driver, lambda d: any(answer in b.text for b in bot_bubbles(d)),
             f"the bot's answer to {command}")


def last_bot_bubble_with(driver: WebDriver, text: str) -> WebElement:
    found: WebElement = wait_for(
        driver, lambda d: next((b for b in reversed(bot_bubbles(d)) if text in b.text), None),
        f"a bot message with {text!r}")
    return found


def test_links_to_the_bot_open_its_private_chat_with_start(
    demo_world: SandboxInThread,
    chromium_driver: WebDriver,  # noqa: F811 (the fixture imported above)
) -> None:
    driver, url = chromium_driver, demo_world.url
    task = give_the_unit_a_task(url)
    open_page(driver, url)

    # 1. A button that needs the private chat: the press is answered with t.me/<bot>?start=…
    open_group_as(driver, GROUP_TITLE, "陈联络")
    card = last_bot_bubble_with(driver, f"整改任务 #{task}")
    card.find_element(By.XPATH, ".//button[contains(., '申请延期')]").click()
    in_private_chat_with_the_bot(driver, "陈联络", f"/start task_{task}",
                                 f"申请延期 #{task}")

    # 2. A link in the text of a message in the group (HTML anchor), and 3. its URL button.
    open_group_as(driver, GROUP_TITLE, "陈联络")
    box = driver.find_element(By.ID, "composer-text")
    box.send_keys("/report")
    box.send_keys(Keys.ENTER)
    invite = last_bot_bubble_with(driver, "点这里开始随手拍")
    invite.find_element(By.XPATH, ".//div[@class='text']//a[contains(., '点这里')]").click()
    in_private_chat_with_the_bot(driver, "陈联络", "/start report", ASK_PHOTOS)

    open_group_as(driver, GROUP_TITLE, "陈联络")
    invite = last_bot_bubble_with(driver, "点这里开始随手拍")
    button = invite.find_element(By.CSS_SELECTOR, ".inline-keyboard a.kb-btn")
    assert "随手拍" in button.text
    sent_before = count_sent(driver, "/start report", "陈联络")
    button.click()
    wait_for(driver, lambda d: count_sent(d, "/start report", "陈联络") > sent_before,
             "/start report sent again from the URL button")

    # 4. tg://resolve links, in text and on a button, as another bot might write them.
    bot_posts(url, LIAISON_GROUP, parse_mode="HTML",
              text=f'<a href="tg://resolve?domain=wenming_bot&start=task_{task}">任务</a>',
              reply_markup={"inline_keyboard": [[{
                  "text": "打开 open", "url": f"tg://resolve?domain=wenming_bot&start=task_{task}"}]]})
    open_group_as(driver, GROUP_TITLE, "陈联络")
    tg = last_bot_bubble_with(driver, "任务")
    sent_before = count_sent(driver, f"/start task_{task}", "陈联络")
    tg.find_element(By.CSS_SELECTOR, ".inline-keyboard a.kb-btn").click()
    wait_for(driver, lambda d: count_sent(d, f"/start task_{task}", "陈联络") > sent_before,
             "/start task_<id> from a tg:// button")
    assert js_errors(driver) == [], "the page logged errors"


def count_sent(driver: WebDriver, text: str, name: str) -> int:
    """How many times `name` sent `text` in their private chat (per the sandbox's transcript)."""
    if name not in driver.find_element(By.ID, "chat-title").text:
        return -1
    return sum(1 for b in driver.find_elements(By.CSS_SELECTOR, "#messages li.msg.from-me")
               if b.text.split("\n")[0] == text)


def click_fresh(driver: WebDriver, by: str, selector: str) -> None:
    """Click an element found anew: the clock panel redraws its buttons whenever the clock or
    the bot's jumps change, so a reference found earlier may be gone by the time it is used."""
    def clicked(d: WebDriver) -> bool:
        try:
            d.find_element(by, selector).click()
        except (StaleElementReferenceException, NoSuchElementException):
            return False
        return True

    wait_for(driver, clicked, f"{selector} to be clickable")


def test_the_clock_panel_moves_the_bots_time(
    demo_world: SandboxInThread,
    chromium_driver: WebDriver,  # noqa: F811 (the fixture imported above)
) -> None:
    driver, url = chromium_driver, demo_world.url
    open_page(driver, url)
    panel = driver.find_element(By.ID, "clock-buttons")
    wait_for(driver, lambda d: panel.find_elements(By.CSS_SELECTOR, "[data-jump='bulletin']"),
             "the bot's jump to the next bulletin")
    assert "实时" in driver.find_element(By.ID, "clock-offset").text
    click_fresh(driver, By.XPATH, "//*[@id='clock-buttons']//button[contains(., '+1 天')]")
    wait_for(driver, lambda d: "1 天" in d.find_element(By.ID, "clock-offset").text,
             "the clock to show one day ahead")
    assert sandbox_call(url, lambda sb: sb.clock())["offset_seconds"] == 86400

    open_group_as(driver, GROUP_TITLE, "陈联络")
    click_fresh(driver, By.CSS_SELECTOR, "#clock-buttons [data-jump='bulletin']")
    wait_for(driver, lambda d: any("创文考评通报" in b.text for b in bot_bubbles(d)),
             "the weekly bulletin in the group")
    assert js_errors(driver) == [], "the page logged errors"
