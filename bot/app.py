"""The one composition root: settings in, a running bot out."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, ExtBot
from telegram.request import BaseRequest

from bot.config import Settings
from bot.domain.errors import DomainError
from bot.domain.plans import load_plans
from bot.domain.reports import load_reporting
from bot.domain.schedule import ScheduleConfig, load_schedule
from bot.media.store import MediaStore
from bot.observability.metrics import Metrics
from bot.observability.scope import ERROR, REFUSED, note_outcome
from bot.services import plans, tasks
from bot.services.assessment import AssessmentSetup, load_setup
from bot.services.catalog import StandardCatalog
from bot.services.events import EventBus
from bot.services.inspections import InspectionService
from bot.services.press import PressService
from bot.services.reports import ReportContext, followup
from bot.telegram.api_watch import BotApiWatch
from bot.telegram.commands import publish_defaults
from bot.telegram.context import Deps, WenmingContext
from bot.telegram.flood import (
    REPLY_MAX_WAIT,
    UPLOAD_MAX_WAIT,
    ChatDeadlines,
    ChatLimiter,
    ReplyQueued,
)
from bot.telegram.inbox import UpdateIntake
from bot.telegram.outbox import OutboxSender, broadcast_rate_limiter
from bot.telegram.transport import build_request
from bot.telegram.webhook_intake import WebhookIntake
from db import health as db_health
from db.caches import PersonCache, ProgressCache
from db.chat_locks import ChatLocks
from db.group_commit import GroupCommitter
from db.leader import AdvisoryLeader, keep_role
from db.migrate import head_revision, upgrade_async
from db.repositories import OutboxRepository
from db.repositories.press import PressRepository
from db.session import create_engine, create_read_sessionmaker, create_sessionmaker
from db.single_process import SQLiteOwner
from db.types import utcnow
from db.uow import UnitOfWorkFactory, within_session
from handlers import register
from web.health import health_routes
from web.metrics import metrics_routes
from web.ready import Check, ready_routes
from web.server import HttpServer
from web.webhook import webhook_routes

log = logging.getLogger(__name__)
WenmingApplication = Application[Any, WenmingContext, Any, Any, Any, Any]
DB_CHECK_TIMEOUT = 2.0  # /readyz: the database must answer SELECT 1 within this


@dataclass(frozen=True)
class Core:
    """What every entry point shares (the bot, the CLI, the sandbox runner, benchmarks, tests):
    the database, units of work publishing on this application's event bus, and the caches
    that follow its commits. Built only by build_core, so there is one way to wire them."""

    settings: Settings
    engine: AsyncEngine
    uow: UnitOfWorkFactory
    events: EventBus
    media: MediaStore
    reports: ReportContext
    people: PersonCache
    progress: ProgressCache
    # The assessment's weights and the special actions (assessment.yaml, special_actions.yaml).
    assessment: AssessmentSetup | None = None

    async def close(self) -> None:
        await self.engine.dispose()


def build_core(settings: Settings) -> Core:
    """The engine, sessions, unit-of-work factory and event bus, wired explicitly: the report
    side hears "task.changed" from this bus only, and the caches follow these sessions only."""
    engine = create_engine(settings.database_url.reveal())
    sessions = create_sessionmaker(engine)
    events = EventBus()
    uow = UnitOfWorkFactory(sessions, create_read_sessionmaker(engine),
                            serialize_writes=engine.dialect.name == "sqlite", events=events)
    media = MediaStore(settings.media_dir)
    # reporting.yaml is validated here: a bad file stops the bot at start.
    reports = ReportContext(load_reporting(settings.reporting_file), media, settings.tz,
                            settings.default_language)
    # Residents hear what happens to the task their report became, in the task's transaction.
    events.subscribe("task.changed", functools.partial(followup.on_task_changed, reports))
    # A submitted inspection ticks its site off the day's supervision lists.
    events.subscribe("inspection.submitted",
                     functools.partial(plans.on_inspection_submitted, tz=settings.tz,
                                       default_lang=settings.default_language))
    # Replicas may share a PostgreSQL database: people are not cached across transactions
    # there (db/caches.py). Inspections' snapshots are, when one replica handles all updates
    # (polling: one poller), as their writes are guarded by the row's version; in webhook
    # mode consecutive presses of one inspection land on different replicas, and a stale
    # snapshot would judge a press (not only write it): a press for a step another replica
    # already reached is taken as an old button and the old card shown. Not kept there.
    shared = engine.dialect.name == "postgresql"
    people = PersonCache(ttl=0.0) if shared else PersonCache()
    progress = ProgressCache(ttl=0.0) if shared and settings.webhook_url else ProgressCache()
    people.install(sessions)
    progress.install(sessions)
    # assessment.yaml and special_actions.yaml are validated here too (file, line, field);
    # an action's categories must be reporting.yaml's.
    assessment = load_setup(settings.assessment_file, settings.special_actions_file,
                            [c.code for c in reports.config.categories])
    return Core(settings, engine, uow, events, media, reports, people, progress, assessment)


def build_application(
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    catalog: StandardCatalog | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> WenmingApplication:
    """Build the Telegram application with its handlers and dependencies (nothing started)."""
    if not settings.bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    settings.warn_unused_local_config()
    # This application's metrics, and the one place that sees every Bot API call.
    metrics = Metrics(settings.replica_name)
    watch = BotApiWatch(metrics)
    builder = (
        ApplicationBuilder()
        .token(settings.bot_token.reveal())
        .updater(None)  # polling is bot.telegram.inbox's job: it must not confirm before storing
        .context_types(ContextTypes(context=WenmingContext))
        .request(watch.wrap(
            request or build_request(settings.http_transport, settings.http_connections),
            "reply"))
        .get_updates_request(watch.wrap(build_request(settings.http_transport, 1,
                                                      read_timeout=settings.poll_timeout + 10),
                                        "intake"))
        # A reply honours its chat's flood wait (bot/telegram/flood.py); other chats never wait
        # for it.
        .rate_limiter(ChatLimiter(ChatDeadlines(), max_wait=REPLY_MAX_WAIT,
                                  upload_max_wait=UPLOAD_MAX_WAIT))
    )
    if settings.api_base_url:
        builder = builder.base_url(settings.api_base_url)
    if settings.file_base_url:
        builder = builder.base_file_url(settings.file_base_url)
    application: WenmingApplication = builder.build()
    core = build_core(settings)
    engine, uow = core.engine, core.uow
    catalog = catalog or StandardCatalog.load(settings.standards_dir)
    # Small writes of concurrent updates (presses, "handled" marks) share transactions.
    committer = GroupCommitter(engine, write_lock=uow.write_lock)
    # Reminders, escalation, the weekly bulletin and the daily digest follow schedule.yaml
    # (validated here so a bad schedule stops the bot at start-up with the line and the
    # problem); its office_unit also says which groups are the campaign office's.
    schedule = load_schedule(settings.schedule_file)
    application.bot_data["deps"] = Deps(
        settings=settings,
        uow=uow,
        catalog=catalog,
        inspections=InspectionService(catalog, settings.relapse_weeks, settings.tz),
        media=core.media,
        clock=clock,
        reports=core.reports,
        press=PressService(catalog, uow, PressRepository(engine.dialect.name, committer),
                           core.people, core.progress),
        committer=committer,
        people=core.people,
        assessment=core.assessment,
        office_unit=schedule.office_unit,
        plans_morning=load_plans(settings.plans_file).morning,
    )
    application.bot_data["core"] = core
    application.bot_data["schedule"] = schedule
    application.bot_data["engine"] = engine
    application.bot_data["metrics"] = metrics
    application.bot_data["api_watch"] = watch
    metrics.watch_pool(functools.partial(db_health.pool_usage, engine))
    # First of the error handlers (handlers/errors.py answers the person): the outcome label.
    application.add_error_handler(_note_outcome)
    register(application)
    return application


def _intake(application: WenmingApplication, deps: Deps, metrics: Metrics) -> UpdateIntake:
    """Polling, or (with WENMING_WEBHOOK_URL) Telegram's posts; the same inbox either way."""
    settings = deps.settings
    if not settings.webhook_url:
        return UpdateIntake(
            application, deps.uow.sessions, poll_timeout=settings.poll_timeout,
            max_concurrent_chats=settings.max_concurrent_chats, committer=deps.committer,
            metrics=metrics)
    dialect = application.bot_data["engine"].dialect.name
    # On PostgreSQL replicas may share the posts: a chat is handled where its lock is held.
    locks = ChatLocks(settings.database_url.reveal()) if dialect == "postgresql" else None
    return WebhookIntake(
        application, deps.uow.sessions, url=settings.webhook_url,
        secret_token=settings.webhook_secret.reveal(),
        max_connections=settings.webhook_max_connections,
        dialect=dialect,
        max_concurrent_chats=settings.max_concurrent_chats, committer=deps.committer,
        read_sessions=deps.uow.read_sessions, metrics=metrics, chat_locks=locks,
        replica=settings.replica_name)


async def _note_outcome(update: object, context: WenmingContext) -> None:
    error = context.error
    if isinstance(error, ReplyQueued) or (
            isinstance(error, BadRequest) and "not modified" in str(error).lower()):
        return  # the reply went to the outbox; an edit that changed nothing
    note_outcome(REFUSED if isinstance(error, DomainError) else ERROR)


class Wenming:
    """A running bot: the application, durable intake, the outbox sender and the scheduler."""

    def __init__(self, application: WenmingApplication) -> None:
        self.application = application
        deps: Deps = application.bot_data["deps"]
        self.deps = deps
        self.metrics: Metrics = application.bot_data["metrics"]
        self.api_watch: BotApiWatch = application.bot_data["api_watch"]
        self.intake = _intake(application, deps, self.metrics)
        # Broadcasts go through Telegram's limits (30/s overall, 20/min per group); replies to
        # someone pressing a button must not queue behind them, so they use the handlers' bot.
        # Both respect the same per-chat flood waits; a reply that would wait too long is
        # handed to the outbox.
        settings = deps.settings
        replies = application.bot.rate_limiter
        assert isinstance(replies, ChatLimiter)
        self._limited_bot = ExtBot(
            settings.bot_token.reveal(),
            base_url=settings.api_base_url or "https://api.telegram.org/bot",
            base_file_url=settings.file_base_url or "https://api.telegram.org/file/bot",
            rate_limiter=broadcast_rate_limiter(replies.deadlines),
            request=self.api_watch.wrap(build_request(settings.http_transport, 8), "outbox"),
        )
        self.outbox = OutboxSender(
            self._limited_bot, deps.uow.sessions, deps.clock, media_dir=settings.media_dir,
            cjk_font=settings.cjk_font,
            admin_chat_id=settings.admin_chat_id, language=settings.default_language,
            # A delivered card is the one to edit from now on (and caught up if it is stale).
            sent_hooks={tasks.CARD_PURPOSE: within_session(
                functools.partial(tasks.card_delivered, tz=settings.tz))},
            replica=settings.replica_name,
        )
        application.bot_data["outbox"] = self.outbox
        replies.handover = self.outbox
        # Reminders, escalation, the weekly bulletin and the daily digest: due work is polled
        # from the database each tick (schedule.yaml, validated by build_application).
        from bot.domain.draws_config import load_draws
        from scheduler.runner import Scheduler

        schedule: ScheduleConfig = application.bot_data["schedule"]
        self.scheduler = Scheduler(
            deps.uow, schedule, timezone=settings.timezone,
            language=settings.default_language, media_dir=settings.media_dir,
            clock=deps.clock, on_queued=self.outbox.wake, cjk_font=settings.cjk_font,
            retention_days=settings.retention_days,
            metrics=self.metrics, assessment=deps.assessment,
            plans_morning=deps.plans_morning,
            draws=load_draws(settings.draws_file),
        )
        application.bot_data["scheduler"] = self.scheduler
        self._polling_role: asyncio.Task[None] | None = None
        # One process per SQLite database (db/single_process.py); replicas need PostgreSQL.
        self._sqlite_owner = SQLiteOwner(settings.database_url.reveal())
        # Health, metrics and (in webhook mode) Telegram's posts, in this process.
        self.http: HttpServer | None = None
        if settings.http_listen is not None:
            self.http = HttpServer(*settings.http_listen)
            self.http.add_routes(health_routes())
            self.http.add_routes(ready_routes(self.readiness_checks()))
            self.http.add_routes(metrics_routes(self.metrics))
        if isinstance(self.intake, WebhookIntake):
            if self.http is None or settings.webhook_path is None:
                raise ValueError("webhook mode needs the HTTP server (WENMING_HTTP_LISTEN)")
            self.http.add_routes(webhook_routes(
                settings.webhook_path, settings.webhook_secret.reveal(), self.intake))
        self.metrics.refresh_on_scrape(self.outbox_backlog)

    @property
    def intake_role(self) -> str:
        """How this replica takes updates, for the replica_role metric."""
        return "webhook" if isinstance(self.intake, WebhookIntake) else "poller"

    async def outbox_backlog(self) -> tuple[int, float]:
        """Messages waiting, and how long (s) the oldest due one has waited; kept in the
        metrics. Due by the bot's clock (the sender's), waited by the real one."""
        async with self.deps.uow.read_sessions() as session:
            depth, since = await OutboxRepository(session).backlog(self.deps.clock())
        age = 0.0 if since is None else max(0.0, (utcnow() - since).total_seconds())
        self.metrics.outbox_pending.set(depth)
        self.metrics.outbox_oldest_due.set(age)
        return depth, age

    def readiness_checks(self) -> dict[str, Check]:
        """What /readyz asks: each check returns None, or why this replica is not ready."""
        settings, engine, head = self.deps.settings, self.application.bot_data["engine"], \
            head_revision()

        async def database() -> str | None:
            await asyncio.wait_for(db_health.answers(engine), DB_CHECK_TIMEOUT)
            return None

        async def schema() -> str | None:
            current = await asyncio.wait_for(db_health.revision(engine), DB_CHECK_TIMEOUT)
            if current == head:
                return None
            return (f"the database is at migration {current or '(none)'}, this code needs "
                    f"{head}: run `wenming db upgrade`")

        async def bot_api() -> str | None:
            return await self.api_watch.check(settings.ready_bot_api_max_age,
                                              self.application.bot.get_me)

        async def outbox() -> str | None:
            depth, age = await asyncio.wait_for(self.outbox_backlog(), DB_CHECK_TIMEOUT)
            if age <= settings.ready_outbox_max_age:
                return None
            return (f"the oldest due message has waited {age:.0f} s "
                    f"(limit {settings.ready_outbox_max_age} s; {depth} pending)")

        return {"database": database, "schema": schema, "bot_api": bot_api, "outbox": outbox}

    async def start(self, *, migrate: bool = True, publish_commands: bool = True) -> None:
        self._sqlite_owner.acquire()  # raises DatabaseInUse: a second process on one file
        if migrate:
            await upgrade_async(self.deps.settings.database_url.reveal())
        await self.application.initialize()
        await self._limited_bot.initialize()
        await self.application.start()
        if self.http is not None:
            await self.http.start()
        if publish_commands:
            with contextlib.suppress(TelegramError):
                await publish_defaults(self.application.bot)
        await self._start_intake()
        self.outbox.start()
        self.scheduler.start()
        log.info("Wenming is running as @%s", self.application.bot.username)

    async def _start_intake(self) -> None:
        """Take updates. Polling on PostgreSQL, where replicas may share the database: only
        one may poll (Telegram allows one getUpdates consumer), the one holding the polling
        lock (db/leader.py); the others stand by, sending the outbox and running the
        scheduler. A webhook replica takes the posts it is given, like every other."""
        engine: AsyncEngine = self.application.bot_data["engine"]
        if isinstance(self.intake, WebhookIntake) or engine.dialect.name != "postgresql":
            await self.intake.start()
            self.metrics.set_role(self.intake_role, True)
            return

        async def gain() -> None:
            await self.intake.start()
            self.metrics.set_role(self.intake_role, True)

        async def lose() -> None:
            await self.intake.stop()
            self.metrics.set_role(self.intake_role, False)

        leader = AdvisoryLeader(self.deps.settings.database_url.reveal(), "polling")
        self._polling_role = asyncio.create_task(keep_role(leader, gain, lose),
                                                 name="wenming-polling-role")

    async def stop(self) -> None:
        if self._polling_role is not None:
            self._polling_role.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling_role
            self._polling_role = None
        await self.intake.stop()
        self.metrics.set_role(self.intake_role, False)
        await self.scheduler.stop()
        await self.outbox.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        await self._limited_bot.shutdown()
        if self.http is not None:
            await self.http.stop()
        await self.application.bot_data["engine"].dispose()
        self._sqlite_owner.release()

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
