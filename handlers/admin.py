"""Admin commands: invite links, binding a group to a unit; the bot joining or leaving groups."""

from __future__ import annotations

import re
from datetime import timedelta

from telegram import ChatMemberUpdated, Update
from telegram.ext import BaseHandler, ChatMemberHandler, CommandHandler, filters

from bot.domain.errors import DomainError
from bot.domain.roles import Role, parse_role, require, role_of
from bot.render.i18n import h, local_name
from bot.services.people import bind_group, create_invite, deactivate_group, group_unit
from bot.telegram.context import WenmingContext
from handlers.common import reply

INVITE_ROLES = (Role.INSPECTOR, Role.UNIT_MEMBER, Role.ADMIN)


async def invite(update: Update, context: WenmingContext) -> None:
    """/invite inspector [uses] | /invite unit <unit> [uses] | /invite admin."""
    require(role_of(context.me), Role.ADMIN)  # before the usage: residents learn nothing
    args = list(context.args or [])
    role = parse_role(args.pop(0), short=True) if args else None
    if role not in INVITE_ROLES:
        raise DomainError("invite.usage")
    uses = 1
    if args and re.fullmatch(r"[0-9]{1,4}", args[-1]):
        uses = int(args.pop())
    unit_query = " ".join(args) or None
    deps = context.deps
    async with deps.uow() as uow:
        code, unit = await create_invite(
            uow, context.me, role, unit_query, uses,
            timedelta(hours=deps.settings.invite_ttl_hours), deps.clock(),
        )
        await uow.commit()
    link = f"https://t.me/{context.bot.username}?start={code.code}"
    expires = code.expires_at.astimezone(deps.settings.tz).strftime("%Y-%m-%d %H:%M")
    await reply(update, context.t(
        "invite.created", role=context.t(f"role.{role.key}"),
        unit=local_name(context.lang, unit.name_zh, unit.name_en) if unit else "—", link=link,
        uses=uses, expires=expires,
    ))


async def bind(update: Update, context: WenmingContext) -> None:
    """/bind <unit> in a group: this group now speaks for that unit."""
    chat = update.effective_chat
    assert chat is not None
    if chat.type == "private":
        raise DomainError("bind.in_group_only")
    if not context.args:
        raise DomainError("bind.usage")
    deps = context.deps
    async with deps.uow() as uow:
        binding = await bind_group(uow, context.me, chat.id, chat.title or "",
                                   " ".join(context.args), deps.clock())
        unit = await group_unit(uow, binding.chat_id)
        await uow.commit()
    assert unit is not None
    await reply(update, context.t("bind.done",
                                  unit=local_name(context.lang, unit.name_zh, unit.name_en)))


async def on_membership(update: Update, context: WenmingContext) -> None:
    """The bot was added to or removed from a group."""
    change: ChatMemberUpdated | None = update.my_chat_member
    if change is None or change.chat.type == "private":
        return
    status = change.new_chat_member.status
    deps = context.deps
    if status in ("left", "kicked"):
        async with deps.uow() as uow:
            if await deactivate_group(uow, change.chat.id):
                await uow.commit()
        return
    if status in ("member", "administrator") and change.old_chat_member.status in (
        "left", "kicked"
    ):
        async with deps.uow() as uow:
            unit = await group_unit(uow, change.chat.id)
        if unit is not None:
            await change.chat.send_message(context.t("bind.rejoined", unit=h(unit.name_zh)),
                                           parse_mode="HTML")
        elif role_of(context.me) >= Role.ADMIN:
            await change.chat.send_message(context.t("bind.added_by_admin"), parse_mode="HTML")
        else:
            await change.chat.send_message(context.t("bind.added"), parse_mode="HTML")


HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    CommandHandler("invite", invite, filters=filters.ChatType.PRIVATE),
    CommandHandler("bind", bind, filters=filters.ChatType.GROUPS),
    ChatMemberHandler(on_membership, ChatMemberHandler.MY_CHAT_MEMBER),
]
