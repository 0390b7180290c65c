"""The scheduler: one asyncio tick loop that turns due work in the database into outbox rows.

Nothing here is an in-memory timer that must fire: PTB's JobQueue (APScheduler, 1 s misfire
grace) silently skipped a reminder after a 2.5 s event-loop stall. Instead, every tick
(`tick_seconds`, 20 s by default) asks the database what is due:

1. deadline reminders and escalations, from the task rows (bot.services.deadlines);
2. each recurring job (weekly bulletin, daily digest): the latest period whose send time has
   passed, in the configured zone; if no JobRun(name, period) row exists, the JobRun and the
   outbox rows are inserted in one transaction. A period missed while the bot was down
   therefore runs once on start, and never twice: the JobRun's primary key sees to that, and
   each bulletin's outbox dedup key ("bulletin:<week>:<chat>") does too.

Only the latest missed period is considered, and only while it is still timely:

* a digest only on the local day it was due (it reports "yesterday");
* a weekly bulletin only within the ISO week it was due (Monday's may go out on Tuesday);
* on a database where no job has ever run (no JobRun rows at all: a fresh install), nothing
  that fell due before this scheduler started.

A period that is no longer timely is skipped: its JobRun row is written with
detail {"skipped": "stale" | "before_first_start", ...} and nothing is queued. Tests drive it
with a FakeClock and `await scheduler.tick()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from bot.domain.draws_config import DrawConfig
from bot.domain.periods import (
    Due,
    bulletin_still_timely,
    digest_still_timely,
    latest_bulletin,
    latest_digest,
    local_date,
    next_bulletin,
)
from bot.domain.schedule import ScheduleConfig
from bot.media.bulletin import is_tall, render_png
from bot.media.jobs import run_image_job
from bot.media.store import write_atomic
from bot.observability.metrics import Metrics
from bot.render.bulletin import caption
from bot.render.i18n import t
from bot.services.assessment import AssessmentSetup
from bot.services.bulletins import build_bulletins, digest_text, office_chats
from bot.services.deadlines import Escalate, remind_and_escalate
from bot.services.draws import commit_and_reveal, day_draw
from bot.services.plans import PLANS_JOB, day_rounds, run_morning
from db.outbox_keys import dedup_key
from db.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

BULLETIN = "bulletin"
DIGEST = "digest"
RETENTION = "retention"
DRAW_SEEDS = "draw_seeds"  # the spot checks' seed: tomorrow's hash told, yesterday's revealed
BULLETIN_DIR = "bulletins"
REMINDERS = "reminders"
STALE = "stale"
T = TypeVar("T")
BEFORE_FIRST_START = "before_first_start"


@dataclass
class TickResult:
    reminders: int = 0
    bulletins: int = 0
    digests: int = 0
    lists: int = 0  # inspectors' lists for the day (plans)
    draw_messages: int = 0
    ran: list[str] = field(default_factory=list)  # "bulletin:2026-W48", "digest:2026-11-23"
    skipped: list[str] = field(default_factory=list)  # periods recorded as skipped

    @property
    def queued(self) -> int:
        return self.reminders + self.bulletins + self.digests + self.lists + self.draw_messages


def store_png(media_dir: Path, png: bytes) -> str:
    """Write the PNG under the media dir by content hash (atomically); its relative path."""
    sha = hashlib.sha256(png).hexdigest()
    rel = f"{BULLETIN_DIR}/{sha}.png"
    target = media_dir / rel
    if not target.is_file():
        write_atomic(target, png)
    return rel


def _render_and_store(media_dir: Path, view: object,
                      font: Path | None = None) -> tuple[str, bool]:
    from bot.render.bulletin import BulletinView

    assert isinstance(view, BulletinView)
    png = render_png(view, font)
    return store_png(media_dir, png), is_tall(png)


class Scheduler:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        config: ScheduleConfig,
        *,
        timezone: str,
        language: str,
        media_dir: Path,
        clock: Callable[[], dt.datetime],
        cjk_font: Path | None = None,
        on_queued: Callable[[], None] | None = None,
        escalate: Escalate | None = None,
        tick_seconds: float | None = None,
        retention_days: int = 0,
        metrics: Metrics | None = None,
        assessment: AssessmentSetup | None = None,
        plans_morning: dt.time | None = None,
        draws: DrawConfig | None = None,
    ) -> None:
        self._uow = uow
        self.assessment = assessment  # the bulletin's combined assessment, special actions
        # plans.yaml's morning: when each inspector's list for the day goes out (None: never).
        self.plans_morning = plans_morning
        self.draws = draws  # draws.yaml; None: no spot-check seeds are committed or revealed
        self._metrics = metrics
        self.config = config
        self.tz = ZoneInfo(timezone)
        self.lang = language
        self.media_dir = Path(media_dir)
        self.cjk_font = cjk_font  # Settings.cjk_font, for the bulletin image
        self._clock = clock
        self._on_queued = on_queued
        self._escalate = escalate
        self.tick_seconds = tick_seconds or config.tick_seconds
        self.retention_days = retention_days
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        # When this scheduler started; on a database that has never run a job, nothing due
        # before it is backfilled. Decided once, at the first tick (see _backfill_from).
        self.started_at = clock()
        self._fresh_checked = False
        self._no_backfill_before: dt.datetime | None = None

    # ---- the loop --------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="wenming-scheduler")

    def wake(self) -> None:
        """The clock moved (the sandbox's clock control): tick now, not at the next interval."""
        self._wake.set()

    def next_bulletin_at(self, now: dt.datetime) -> dt.datetime:
        cfg = self.config.bulletin
        return next_bulletin(now, cfg.weekday, cfg.time, self.tz).due_at

    async def stop(self, grace: float = 10.0) -> None:
        """Let a tick in progress finish (up to `grace` seconds), then stop: cancelling it
        inside a transaction would cut the connection's reset on its way back to the pool.
        What a cut-off tick did not commit runs at the next start."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, grace)
            self._task = None

    async def _run(self) -> None:
        # The first tick comes one interval after start, not at once: start-up (migrations,
        # intake, a backlog of updates) comes first, and a missed period still runs "on start".
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_seconds)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed; trying again next tick")

    async def tick(self) -> TickResult:
        """Queue whatever is due now. Each step is its own short transaction."""
        now = self._clock()
        result = TickResult()
        result.reminders = await self._counted(REMINDERS, remind_and_escalate(
            self._uow, self.config, self.tz, self.lang, now, escalate=self._escalate))
        await self._check_fresh()
        # The jobs in the order one depends on another, whatever fell due first: after the
        # clock jumps (a stopped bot, the sandbox's clock; a bulletin may still go out days
        # after its Monday) the morning's rounds and lists, backfilling the days it missed, come
        # before the digest and the bulletin that count them, the digest before the bulletin
        # as on an ordinary day, and the evening's seeds last (a seed job still due when a
        # morning runs would be yesterday's, and is skipped as stale by then).
        jobs: list[tuple[Due, str, Callable[[Due, dt.datetime], Awaitable[int | None]],
                         Callable[[Due, dt.datetime, ZoneInfo], bool], str]] = []
        if self.plans_morning is not None:
            jobs.append((latest_digest(now, self.plans_morning, self.tz), PLANS_JOB,
                         self.run_plans, digest_still_timely, "lists"))
        jobs.append((latest_digest(now, self.config.digest.time, self.tz), DIGEST,
                     self.run_digest, digest_still_timely, "digests"))
        jobs.append((latest_bulletin(now, self.config.bulletin.weekday,
                                     self.config.bulletin.time, self.tz),
                     BULLETIN, self.run_bulletin, bulletin_still_timely, "bulletins"))
        if self.draws is not None:
            jobs.append((latest_digest(now, self.draws.announce_time, self.tz), DRAW_SEEDS,
                         self.run_draw_seeds, digest_still_timely, "draw_messages"))
        for due, name, run, timely, counted in jobs:
            if await self._runnable(name, due, now, timely, result):
                sent = await self._counted(name, run(due, now))
                if sent is not None:
                    setattr(result, counted, sent)
                    result.ran.append(f"{name}:{due.period}")
        try:
            if await self.prune(now):
                self._count(RETENTION, "ok")
        except Exception:
            self._count(RETENTION, "error")
            raise
        if result.queued and self._on_queued is not None:
            self._on_queued()
        if self._metrics is not None:
            self._metrics.scheduler_tick.set_to_current_time()
        return result

    async def prune(self, now: dt.datetime) -> bool:
        """Once per local day (whichever replica ticks first), prune what is older than the
        retention period; False when it had run today or retention is off."""
        if not self.retention_days:
            return False
        today = local_date(now, self.tz).isoformat()
        if await self._has_run(RETENTION, today):
            return False
        async with self._uow() as uow:
            pruned = await uow.retention.prune(now - dt.timedelta(days=self.retention_days))
            if not await uow.jobs.record(RETENTION, today, now, {
                    "inbox": pruned.inbox, "outbox": pruned.outbox,
                    "job_runs": pruned.job_runs}):
                return False  # another replica pruned today; this transaction rolls back
            await uow.commit(mark_update_handled=False)
        log.info("pruned records older than %d days: %d updates, %d messages, %d job runs",
                 self.retention_days, pruned.inbox, pruned.outbox, pruned.job_runs)
        return True

    async def _counted(self, job: str, run: Awaitable[T]) -> T:
        """Await a job's run and count it: ok, already_run (another runner did), error."""
        try:
            value = await run
        except Exception:
            self._count(job, "error")
            raise
        self._count(job, "ok" if value is not None else "already_run")
        return value

    def _count(self, job: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.scheduler_ran(job, result)

    async def _check_fresh(self) -> None:
        """Once per scheduler: a database with no JobRun row at all has never run a job (a
        fresh install), so periods that fell due before this scheduler started are not
        backfilled."""
        if self._fresh_checked:
            return
        async with self._uow() as uow:
            any_run = await uow.jobs.any()
        self._no_backfill_before = None if any_run else self.started_at
        self._fresh_checked = True

    def skip_reason(self, due: Due, now: dt.datetime,
                    timely: Callable[[Due, dt.datetime, ZoneInfo], bool]) -> str | None:
        """Why the period `due` must not be sent now, or None when it may."""
        if self._no_backfill_before is not None and due.due_at < self._no_backfill_before:
            return BEFORE_FIRST_START
        if not timely(due, now, self.tz):
            return STALE
        return None

    async def _runnable(self, name: str, due: Due, now: dt.datetime,
                        timely: Callable[[Due, dt.datetime, ZoneInfo], bool],
                        result: TickResult) -> bool:
        """True when the period may run; a period too late to send is recorded as skipped
        (once: the JobRun's primary key) and False is returned."""
        reason = self.skip_reason(due, now, timely)
        if reason is None:
            return True
        if await self._has_run(name, due.period):
            return False
        async with self._uow() as uow:
            if not await uow.jobs.record(name, due.period, now, {
                    "skipped": reason, "due_at": due.due_at.isoformat(), "groups": 0}):
                return False
            await uow.commit(mark_update_handled=False)
        self._count(name, "skipped")
        log.info("%s %s skipped (%s): due %s, now %s", name, due.period, reason,
                 due.due_at.isoformat(), now.isoformat())
        result.skipped.append(f"{name}:{due.period}")
        return False

    async def _has_run(self, name: str, period: str) -> bool:
        async with self._uow() as uow:
            return await uow.jobs.has_run(name, period)

    # ---- the weekly bulletin --------------------------------------------------------------

    async def run_bulletin(self, due: Due, now: dt.datetime) -> int | None:
        """Send the bulletin for `due.period` unless it ran; None when it had already run."""
        if await self._has_run(BULLETIN, due.period):
            return None
        async with self._uow() as uow:
            # The phase countdown counts from the day it is sent, as the digest's does.
            bulletins = await build_bulletins(uow, self.config, self.tz, self.lang,
                                              due.period, sent_on=local_date(now, self.tz),
                                              assessment=self.assessment)
        # Rendering takes ~0.1 s per group: in worker threads, before the transaction.
        rendered = await asyncio.gather(*(
            run_image_job(_render_and_store, self.media_dir, b.view, self.cjk_font)
            for b in bulletins))
        async with self._uow() as uow:
            if not await uow.jobs.record(BULLETIN, due.period, now,
                                         {"groups": len(bulletins)}):
                return None  # another runner got there first
            outbox = uow.outbox
            queued = 0
            for b, (rel, tall) in zip(bulletins, rendered, strict=True):
                if b.chat_id is None:
                    continue
                file_param = "document" if tall else "photo"
                params: dict[str, object] = {
                    "file": rel, "file_param": file_param,
                    "filename": t(self.lang, "scheduler.bulletin.filename", week=due.period),
                    "caption": caption(b.view), "parse_mode": "HTML",
                }
                method = "sendDocument" if tall else "sendPhoto"
                if await outbox.enqueue(dedup_key("bulletin", due.period, b.chat_id), b.chat_id,
                                        method, params, purpose="bulletin"):
                    queued += 1
            await uow.commit(mark_update_handled=False)
        log.info("bulletin %s queued for %d group(s)", due.period, queued)
        return queued

    # ---- the daily digest ------------------------------------------------------------------

    async def _office_chats(self, uow: UnitOfWork) -> list[int]:
        return await office_chats(uow, self.config.office_unit)

    async def run_digest(self, due: Due, now: dt.datetime) -> int | None:
        if await self._has_run(DIGEST, due.period):
            return None
        async with self._uow() as uow:
            chats = await self._office_chats(uow)
            # The last digest that went out covered the day before its own; days after that
            # and before this one's (the bot down, the clock jumped) had none.
            last = await uow.jobs.last_ran(DIGEST, due.period)
            text = await digest_text(uow, self.config, self.tz, self.lang,
                                     due.issue_date, now, unreported_from=None
                                     if last is None else dt.date.fromisoformat(last))
            if not await uow.jobs.record(DIGEST, due.period, now, {"groups": len(chats)}):
                return None
            outbox = uow.outbox
            queued = 0
            for chat in chats:
                if await outbox.enqueue(dedup_key("digest", due.period, chat), chat, "sendMessage",
                                        {"text": text, "parse_mode": "HTML"}, purpose="digest"):
                    queued += 1
            await uow.commit(mark_update_handled=False)
        return queued

    # ---- each inspector's day (plans) -------------------------------------------------------

    async def run_plans(self, due: Due, now: dt.datetime) -> int | None:
        """The morning's lists for `due.issue_date`: what was not done before is missed, the
        day's rounds are expanded and shared out, and each inspector's list is queued; None
        when it had already run."""
        if await self._has_run(PLANS_JOB, due.period):
            return None
        async with self._uow() as uow:
            if not await uow.jobs.record(PLANS_JOB, due.period, now, {}):
                return None
            # The day's random spot checks and re-checks join the rounds' share-out: the
            # unannounced list reaches only the inspectors who must go, in their own lists.
            # A site a round is due at that day is inspected anyway: no spot check there.
            rounds = await day_rounds(uow, due.issue_date, self.tz)
            drawn = [] if self.draws is None else await day_draw(
                uow, due.issue_date, self.draws, now, due_anyway={site for _, site in rounds})
            morning = await run_morning(uow, due.issue_date, self.tz, now, self.lang, drawn,
                                        rounds)
            await uow.commit(mark_update_handled=False)
        log.info("plans %s: %d missed before (%d of days the morning did not run), %d new, "
                 "%d assigned (%d with nobody), %d list(s) queued", due.period, morning.missed,
                 morning.backfilled, morning.added, morning.assigned, morning.unassigned,
                 morning.lists)
        return morning.lists

    # ---- the spot checks' seeds (commit and reveal) ------------------------------------------

    async def run_draw_seeds(self, due: Due, now: dt.datetime) -> int | None:
        """On day T at draws.yaml's announce_time: every past day's seed not revealed yet (T-1,
        and any a stopped bot or a clock jump skipped) revealed to the campaign office's
        groups, T+1's seed made and its SHA-256 told there (bot/services/draws.py). Once per
        day: the JobRun, and each message's dedup key. None when it had run."""
        if await self._has_run(DRAW_SEEDS, due.period):
            return None
        async with self._uow() as uow:
            chats = await self._office_chats(uow)
            if not await uow.jobs.record(DRAW_SEEDS, due.period, now, {"groups": len(chats)}):
                return None
            announce = self.draws.announce_time if self.draws is not None else dt.time(20, 0)
            queued = await commit_and_reveal(uow, due.issue_date, now, chats, self.lang,
                                             tz=self.tz, announce_time=announce)
            await uow.commit(mark_update_handled=False)
        return queued
