"""Command menus per role and language (setMyCommands with scopes)."""

from __future__ import annotations

import contextlib

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
)
from telegram.error import TelegramError

from bot.domain.roles import Role
from bot.render.i18n import t

COMMANDS: dict[Role, tuple[str, ...]] = {
    Role.RESIDENT: ("report", "myreports", "help", "lang", "cancel"),
    Role.UNIT_MEMBER: ("tasks", "report", "myreports", "help", "lang", "cancel"),
    Role.INSPECTOR: ("inspect", "today", "tasks", "task", "report", "myreports", "help", "lang",
                     "cancel"),
    Role.ADMIN: ("inspect", "today", "plans", "tasks", "task", "invite", "block", "unblock",
                 "reroute", "assessment", "actions", "stats", "help", "lang", "cancel"),
}
GROUP_COMMANDS = ("tasks", "bind", "help")
TELEGRAM_LANGS = {"zh-hans": "zh", "en": "en"}


def commands_for(role: Role, lang: str) -> list[BotCommand]:
    return [BotCommand(name, t(lang, f"command.{name}")) for name in COMMANDS[role]]


async def publish_defaults(bot: Bot) -> None:
    """The menus everyone sees, per language; people with roles get their own below."""
    for lang, code in (("zh-hans", None), ("en", "en"), ("zh-hans", "zh")):
        await bot.set_my_commands(commands_for(Role.RESIDENT, lang),
                                  scope=BotCommandScopeAllPrivateChats(), language_code=code)
        await bot.set_my_commands(
            [BotCommand(n, t(lang, f"command.{n}")) for n in GROUP_COMMANDS],
            scope=BotCommandScopeAllGroupChats(), language_code=code,
        )


async def publish_for(bot: Bot, chat_id: int, role: Role, lang: str) -> None:
    """A person's own menu in their private chat, in the language they chose."""
    with contextlib.suppress(TelegramError):
        await bot.set_my_commands(commands_for(role, lang), scope=BotCommandScopeChat(chat_id))
