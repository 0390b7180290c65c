"""Inspection benchmark: N inspectors each walk a 17-item hotel checklist at once.

    .venv/bin/python -m bench.inspection                     # 200 inspectors, SQLite
    .venv/bin/python -m bench.inspection --db postgresql     # throwaway PostgreSQL database
    .venv/bin/python bench/inspection.py --inspectors 50 --json /tmp/inspection.json

What runs where. This process runs the sandbox (flood control off) and the simulated
inspectors in one event loop. Each bot runs in its own subprocess (`--child`), started fresh
per case, so its peak RSS (VmHWM from /proc) and CPU time are the bot's alone; the sandbox
and the driver are the same for every case. Cases, in order:

* floor, concurrent_updates=False and =True: a bare python-telegram-bot Application (Updater
  polling, no database) doing the same shape of work: /inspect sends a site menu; a site press
  edits it into item 1; each verdict press answers the query and edits the same message into
  the next item with a new keyboard (same texts from standards/hotel.yaml, same button layout
  and callback data); after item 17 a review screen with a submit button. The better of the
  two (by answers/s) is "the floor".
* wenming: the real bot (bot.app.Wenming with its default settings: durable intake, the
  gatekeeper, the inspection service) on a fresh database seeded with the demo city plus N
  inspectors assigned to 东岭皇冠假日酒店 (a hotel).

Each inspector, concurrently with all the others, in three phases separated by barriers:
  open    /inspect, wait for the menu; press the hotel, wait for item 1   (not in the figures)
  answer  17 verdict presses, each waiting for the edit showing the next item   (the figures)
  submit  press submit on the review screen, wait for the edit             (p50/p99 shown)
Verdicts are 符合 (c), except that one item per inspector (rotating) gets 基本符合 (b); no
不符合 or 不适用, so no photo or remark is asked for and every press leads to the next item.

Latency of a press: from just before the user-side POST /_sandbox/callbacks to the moment
the sandbox stores the bot's editMessageText of that message (an in-process event hook, with
time.perf_counter, the same clock for every bot). answers/s = verdict presses completed in
the answer phase / its wall time. Each simulated inspector waits for its edit before its next
press (a closed loop, no think time), so N inspectors keep up to N presses in flight.

Target (the issue): answers/s >= 0.7x the floor's, and p99 <= 1.5x the floor's p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    BenchClient,
    BotOutputWaiter,
    Seen,
    cpu_seconds,
    create_database,
    drop_database,
    inspector_ids,
    pct,
    process_stats,
    seed_database,
)
from sandbox.balancer import RoundRobin, free_port
from sandbox.server import SandboxServer

TOKEN = "123:BenchToken"
# --replicas: the webhook the replicas serve, behind the balancer.
WEBHOOK_PATH = "/telegram/bench"
WEBHOOK_SECRET = "bench-webhook-secret-0123"
ITEMS = 17
PRESS_TIMEOUT = 30.0
THROUGHPUT_TARGET = 0.7  # at least this share of the floor's answers/s
P99_TARGET = 1.5  # at most this multiple of the floor's p99
log = logging.getLogger("bench.inspection")


# ====================================================================== the bots (children)

HOTEL_YAML = ROOT / "standards" / "hotel.yaml"


def _floor_screens() -> tuple[list[str], list[str]]:
    """Item texts (like Wenming's item screen) and review/submit texts for the floor bot."""
    import yaml

    data = yaml.safe_load(HOTEL_YAML.read_text(encoding="utf-8"))
    items = data["items"]
    texts = []
    for i, item in enumerate(items):
        lines = [f"<b>东岭皇冠假日酒店</b> · {data['name']['zh']}\n"
                 f"第 {i + 1}/{len(items)} 项 · "
                 f"{'静态指标' if item.get('indicator') == 'static' else '动态指标'}", "",
                 f"<b>{item.get('no', item.get(False))}.</b> {item['text']['zh']}"]
        lines += [f"💡 {hint['zh']}" for hint in item.get("hints", [])]
        texts.append("\n".join(lines))
    score = ("综合得分 100.0（静态 100.0，动态 100.0）\n"
             "符合 17 · 基本符合 0 · 不符合 0 · 不适用 0")
    other = ["<b>督查汇总</b>\n东岭皇冠假日酒店 · 宾馆酒店\n\n" + score
             + "\n\n全部项目已作答，提交后将生成 0 项整改任务。",
             "✅ <b>督查结果已提交</b>\n东岭皇冠假日酒店 · 宾馆酒店\n\n" + score]
    return texts, other


def build_floor(api_url: str, file_url: str, concurrent_updates: bool) -> Any:
    """A bare PTB bot with the inspection's shape: menu, edit-in-place items, review, submit."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.constants import ParseMode
    from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes

    item_texts, (review_text, submitted_text) = _floor_screens()
    total = len(item_texts)
    counter = iter(range(1, 10**9))

    def keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in row]
                                     for row in rows])

    def item_markup(insp: int, step: int) -> InlineKeyboardMarkup:
        v = [(label, f"v:{insp}:{step}:{code}") for label, code in
             (("✅ 符合", "c"), ("🟡 基本符合", "b"), ("❌ 不符合", "n"))]
        nav = ([("⬅️ 上一项", f"i:{insp}:{step}:back")] if step else []) + [
            ("跳过", f"i:{insp}:{step}:skip")]
        extra = [("📝 备注", f"i:{insp}:{step}:note"), ("📷 拍照", f"i:{insp}:{step}:photo"),
                 ("⏸ 暂停", f"i:{insp}:{step}:pause")]
        return keyboard([v[:2], v[2:], nav, extra])

    async def inspect(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        await chat.send_message("请选择要督查的点位（您负责的点位在前）：",
                                reply_markup=keyboard([[("东岭皇冠假日酒店", "s:1")],
                                                       [("🔍 按名称查找", "f:search"),
                                                        ("📍 附近点位", "f:near")]]))

    async def press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        parts = query.data.split(":")
        if parts[0] == "s":
            insp, step = next(counter), 0
        elif parts[0] == "v":
            insp, step = int(parts[1]), int(parts[2]) + 1
        elif parts[0] == "i" and parts[3] == "submit":
            await query.answer("已提交")
            await query.edit_message_text(submitted_text, parse_mode=ParseMode.HTML)
            return
        else:
            await query.answer()
            return
        await query.answer()
        if step < total:
            await query.edit_message_text(item_texts[step], parse_mode=ParseMode.HTML,
                                          reply_markup=item_markup(insp, step))
        else:
            await query.edit_message_text(review_text, parse_mode=ParseMode.HTML,
                                          reply_markup=keyboard([
                                              [("✅ 提交", f"i:{insp}:{step}:submit")],
                                              [("⬅️ 上一项", f"i:{insp}:{step}:back"),
                                               ("⏸ 暂停", f"i:{insp}:{step}:pause")]]))

    app = (ApplicationBuilder().token(TOKEN).base_url(api_url).base_file_url(file_url)
           .concurrent_updates(concurrent_updates).build())
    app.add_handler(CommandHandler("inspect", inspect))
    app.add_handler(CallbackQueryHandler(press))
    return app


async def child_main(args: argparse.Namespace) -> None:
    """Run one bot until the parent says stop; answer `stats` with this process's figures."""
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sql = [0]
    if args.child == "wenming":
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        from bot.app import Wenming, build_application
        from bot.config import Secret, Settings

        def count_sql(*_args: Any) -> None:
            sql[0] += 1

        event.listen(Engine, "before_cursor_execute", count_sql)  # every engine, every statement

        settings = Settings(bot_token=Secret(TOKEN), api_base_url=args.api_url,
                            file_base_url=args.file_url, database_url=Secret(args.db_url),
                            media_dir=Path(args.media_dir))
        for setting in args.set or ():
            name, _, value = setting.partition("=")
            settings = replace(settings, **{name: int(value) if value.isdigit() else value})
        if args.webhook:  # one replica of several (--replicas), behind the balancer
            settings = replace(settings, webhook_url=args.webhook,
                               webhook_secret=Secret(WEBHOOK_SECRET),
                               http_listen=("127.0.0.1", args.listen),
                               replica_name=f"bench-{args.listen}")
        wenming = Wenming(build_application(settings))
        await wenming.start(migrate=False, publish_commands=False)
        stop_bot = wenming.stop
    else:
        app = build_floor(args.api_url, args.file_url, args.child == "floor-concurrent")
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0)

        async def stop_bot() -> None:
            assert app.updater is not None
            await app.updater.stop()
            await app.stop()
            await app.shutdown()

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(**payload: Any) -> None:
        payload.update(process_stats(), errors=errors.count, sql=sql[0])
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    say(event="ready")
    try:
        while True:
            line = (await reader.readline()).decode().strip()
            if line == "stats":
                say(event="stats")
                continue
            if line in ("profile-on", "profile-off"):
                if profiler is not None:
                    profiler.enable() if line == "profile-on" else profiler.disable()
                say(event=line)
                continue
            break  # "stop" or EOF (the parent went away)
    finally:
        final = process_stats()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        await stop_bot()
        sys.stdout.write(json.dumps({"event": "stopped", **final, "errors": errors.count}) + "\n")
        sys.stdout.flush()


class ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class BotProcess:
    """A bot in a subprocess, spoken to over stdin/stdout lines of JSON."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def spawn(cls, kind: str, server: SandboxServer, db_url: str | None = None,
                    media_dir: Path | None = None, profile: str | None = None,
                    settings: Sequence[str] = (),
                    webhook: tuple[str, int] | None = None) -> tuple[BotProcess, dict[str, Any]]:
        cmd = [sys.executable, "-m", "bench.inspection", "--child", kind,
               "--api-url", server.api_base_url, "--file-url", server.file_base_url]
        if webhook is not None:
            cmd += ["--webhook", webhook[0], "--listen", str(webhook[1])]
        if profile:
            cmd += ["--profile", profile]
        for setting in settings:
            cmd += ["--set", setting]
        if db_url:
            cmd += ["--db-url", db_url, "--media-dir", str(media_dir)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        bot = cls(proc)
        try:
            ready = await asyncio.wait_for(bot._read(), 60)
        except BaseException:
            await bot.kill()
            raise
        return bot, ready

    async def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"bot process exited (rc={await self.proc.wait()})")
            with contextlib.suppress(ValueError):
                msg = json.loads(line)
                if isinstance(msg, dict) and "event" in msg:
                    return msg

    async def stats(self, command: str = "stats") -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await asyncio.wait_for(self._read(), 30)

    async def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        final = await asyncio.wait_for(self._read(), 60)
        await asyncio.wait_for(self.proc.wait(), 30)
        return final

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()


class Replicas:
    """Several bot processes measured as one: CPU and SQL summed, RSS the largest."""

    def __init__(self, bots: list[BotProcess]) -> None:
        self.bots = bots

    @classmethod
    async def spawn(cls, count: int, server: SandboxServer, db_url: str, media_dir: Path,
                    url: str, ports: list[int]) -> tuple[Replicas, dict[str, Any]]:
        bots, ready = [], []
        try:
            for port in ports[:count]:  # one after another: each sets the webhook at start
                bot, first = await BotProcess.spawn("wenming", server, db_url, media_dir,
                                                    webhook=(url, port))
                bots.append(bot)
                ready.append(first)
        except BaseException:
            await cls(bots).kill()
            raise
        return cls(bots), cls._merge(ready)

    @staticmethod
    def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        merged = dict(parts[0])
        for key in ("cpu_s", "sql", "errors"):
            merged[key] = sum(p.get(key) or 0 for p in parts)
        for key in ("rss_kb", "hwm_kb"):
            merged[key] = max(p.get(key) or 0 for p in parts)
        return merged

    async def stats(self, command: str = "stats") -> dict[str, Any]:
        return self._merge([await bot.stats(command) for bot in self.bots])

    async def stop(self) -> dict[str, Any]:
        return self._merge([await bot.stop() for bot in self.bots])

    async def kill(self) -> None:
        for bot in self.bots:
            await bot.kill()


# ========================================================================== the driver


@dataclass
class Phase:
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    bot_cpu_s: float = 0.0
    driver_cpu_s: float = 0.0
    sql: int = 0

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {"presses": len(lat), "seconds": round(self.seconds, 3),
                "per_s": round(len(lat) / self.seconds, 1) if self.seconds else None,
                "p50_ms": round(pct(lat, 0.5), 2), "p99_ms": round(pct(lat, 0.99), 2),
                "max_ms": round(max(lat), 2) if lat else None,
                "bot_cpu_s": round(self.bot_cpu_s, 2),
                "bot_cpu_ms_per_press": round(1000 * self.bot_cpu_s / len(lat), 2)
                if lat else None,
                "driver_cpu_share": round(self.driver_cpu_s / self.seconds, 2)
                if self.seconds else None,
                "sql_per_press": round(self.sql / len(lat), 1) if lat else None}


@dataclass
class CaseResult:
    label: str
    inspectors: int
    open: Phase
    answer: Phase
    submit: Phase
    errors: list[str]
    bot_errors_logged: int
    rss_ready_kb: int
    peak_rss_kb: int
    db: str | None = None

    @property
    def rate(self) -> float:
        return len(self.answer.latencies_ms) / self.answer.seconds if self.answer.seconds else 0

    def summary(self) -> dict[str, Any]:
        return {"label": self.label, "db": self.db, "inspectors": self.inspectors,
                "answers_per_s": round(self.rate, 1),
                "p50_ms": round(pct(self.answer.latencies_ms, 0.5), 2),
                "p99_ms": round(pct(self.answer.latencies_ms, 0.99), 2),
                "peak_rss_mb": round(self.peak_rss_kb / 1024, 1),
                "rss_ready_mb": round(self.rss_ready_kb / 1024, 1),
                "errors": len(self.errors), "error_samples": self.errors[:5],
                "bot_errors_logged": self.bot_errors_logged,
                "phases": {"open": self.open.summary(), "answer": self.answer.summary(),
                           "submit": self.submit.summary()}}


class Inspector:
    """One simulated inspector: their chat, the message the inspection lives in, its buttons."""

    def __init__(self, index: int, uid: int, client: BenchClient, waiter: BotOutputWaiter):
        self.index, self.uid, self.client, self.waiter = index, uid, client, waiter
        self.message_id = 0
        self.buttons: list[tuple[str, str]] = []
        self.failed: str | None = None

    def _take(self, seen: Seen) -> None:
        self.message_id, self.buttons = seen.message_id, seen.buttons

    async def _await(self, fut: asyncio.Future[Seen], what: str) -> Seen:
        try:
            return await asyncio.wait_for(fut, PRESS_TIMEOUT)
        except TimeoutError:
            self.waiter.forget(self.uid)
            raise BenchFailure(f"inspector {self.uid}: no answer to {what} "
                               f"within {PRESS_TIMEOUT:.0f}s") from None

    async def press(self, data: str) -> float:
        """Press a button on the inspection message; the ms until the bot edited it."""
        fut = self.waiter.expect_edit(self.uid, self.message_id)
        t0 = time.perf_counter()
        await self.client.press(self.uid, self.uid, self.message_id, data)
        seen = await self._await(fut, data)
        self._take(seen)
        return (seen.at - t0) * 1000

    def find(self, prefix: str, suffix: str = "") -> str:
        for _text, data in self.buttons:
            if data.startswith(prefix) and data.endswith(suffix):
                return data
        raise BenchFailure(f"inspector {self.uid}: no button {prefix}…{suffix} "
                           f"in {[d for _, d in self.buttons]}")

    async def open(self) -> list[float]:
        fut = self.waiter.expect_message(self.uid)
        t0 = time.perf_counter()
        await self.client.send_text(self.uid, "/inspect")
        seen = await self._await(fut, "/inspect")
        self._take(seen)
        first = (seen.at - t0) * 1000
        opened = await self.press(self.find("s:"))
        if any(data.endswith(":go") for _text, data in self.buttons):
            # Every inspector opens the same hotel: the second and later are told who has it
            # open and go on anyway (the open phase is not in the figures).
            opened += await self.press(self.find("s:", ":go"))
        return [first, opened]

    async def answer(self, out: list[float]) -> None:
        for step in range(ITEMS):
            code = "b" if step == self.index % ITEMS else "c"
            data = self.find("v:", f":{step}:{code}")
            out.append(await self.press(data))
            if TRACE is not None:
                TRACE.append((self.index, step, out[-1], time.perf_counter()))

    async def submit(self) -> list[float]:
        return [await self.press(self.find("i:", ":submit"))]


# (inspector, step, latency ms, completed at) of every answer, when BENCH_TRACE names a file.
TRACE: list[tuple[int, int, float, float]] | None = [] if os.environ.get("BENCH_TRACE") else None


class BenchFailure(Exception):
    pass


async def run_phase(people: list[Inspector], phase: Phase, bot: BotProcess | Replicas,
                    name: str,
                    errors: list[str], profile: bool = False) -> None:
    before = await bot.stats("profile-on" if profile else "stats")
    driver0 = cpu_seconds()
    t0 = time.perf_counter()

    async def one(p: Inspector) -> None:
        if p.failed:
            return
        try:
            if name == "open":
                phase.latencies_ms.extend(await p.open())
            elif name == "answer":
                await p.answer(phase.latencies_ms)
            else:
                phase.latencies_ms.extend(await p.submit())
        except Exception as exc:  # one inspector's failure must not stop the others
            p.failed = f"{name}: {exc}"
            errors.append(p.failed)

    await asyncio.gather(*(one(p) for p in people))
    phase.seconds = time.perf_counter() - t0
    phase.driver_cpu_s = cpu_seconds() - driver0
    after = await bot.stats("profile-off" if profile else "stats")
    phase.bot_cpu_s = after["cpu_s"] - before["cpu_s"]
    phase.sql = after.get("sql", 0) - before.get("sql", 0)


async def run_case(label: str, kind: str, inspectors: int, db_kind: str | None,
                   profile: str | None = None, settings: Sequence[str] = (),
                   replicas: int = 0) -> CaseResult:
    """One bot measured; `replicas` > 0: that many Wenming processes in webhook mode behind a
    round-robin balancer (sandbox/balancer.py) instead of one polling."""
    workdir = Path(tempfile.mkdtemp(prefix="wenming-inspection-bench-"))
    db_url: str | None = None
    ids = inspector_ids(inspectors)
    try:
        async with SandboxServer(flood_control=False) as server, \
                BenchClient(server.url) as client:
            for uid in ids:
                await client.create_user(f"督查{uid}", user_id=uid, started=True)
            if kind == "wenming":
                assert db_kind is not None
                from sandbox.run import seed_sandbox

                db_url = await create_database(db_kind, workdir)
                # The demo city's people and unit groups exist in the sandbox too, with the bot
                # in each group, as `wenming sandbox` sets it up: messages the bot sends to
                # groups (the outbox) land instead of failing with "chat not found".
                await seed_sandbox(client, await seed_database(db_url, ids))
            bot: BotProcess | Replicas
            balancer = None
            if replicas:
                assert db_url is not None
                ports = [free_port() for _ in range(replicas)]
                balancer = RoundRobin(WEBHOOK_PATH, ports)
                await balancer.start()
                bot, ready = await Replicas.spawn(replicas, server, db_url, workdir / "media",
                                                  balancer.url, ports)
            else:
                bot, ready = await BotProcess.spawn(kind, server, db_url, workdir / "media",
                                                    profile, settings)
            waiter = BotOutputWaiter(server)
            people = [Inspector(i, uid, client, waiter) for i, uid in enumerate(ids)]
            phases = {name: Phase() for name in ("open", "answer", "submit")}
            errors: list[str] = []
            try:
                for name, phase in phases.items():
                    await run_phase(people, phase, bot, name, errors,
                                    profile=bool(profile) and name == "answer")
                final = await bot.stop()
                if TRACE is not None:
                    await asyncio.to_thread(
                        Path(f"{os.environ['BENCH_TRACE']}.{kind}.json").write_text,
                        json.dumps(TRACE))
                    TRACE.clear()
            except BaseException:
                await bot.kill()
                raise
            finally:
                waiter.close()
                if balancer is not None:
                    await balancer.stop()
    finally:
        if db_url is not None:
            await drop_database(db_url)
        shutil.rmtree(workdir, ignore_errors=True)
    return CaseResult(label, inspectors, phases["open"], phases["answer"], phases["submit"],
                      errors, int(final.get("errors", 0)), int(ready.get("rss_kb") or 0),
                      int(final.get("hwm_kb") or 0), db_kind)


# ============================================================================= reporting


def print_case(r: CaseResult) -> None:
    a, s = r.answer, r.submit
    print(f"{r.label:34} {r.rate:9.1f} {pct(a.latencies_ms, .5):8.1f} "
          f"{pct(a.latencies_ms, .99):8.1f} {r.peak_rss_kb / 1024:9.1f} "
          f"{r.rss_ready_kb / 1024:9.1f} "
          f"{a.summary()['bot_cpu_ms_per_press'] or 0:8.2f} "
          f"{a.summary()['driver_cpu_share'] or 0:6.2f} "
          f"{a.summary()['sql_per_press'] or 0:6.1f} "
          f"{pct(s.latencies_ms, .99):8.1f} {len(r.errors) + r.bot_errors_logged:6d}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def replicas_main(args: argparse.Namespace) -> dict[str, Any]:
    """One Wenming replica in webhook mode vs `--replicas` of them, on one PostgreSQL
    database, behind the same round-robin balancer."""
    print(f"Inspection benchmark, webhook mode on PostgreSQL: {args.inspectors} inspectors x "
          f"{ITEMS} items at once, 1 replica vs {args.replicas}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} before the run\n", flush=True)
    results = []
    for count in (1, args.replicas):
        label = f"wenming webhook x{count}"
        print(f"running {label} ...", flush=True)
        results.append(await run_case(label, "wenming", args.inspectors, "postgresql",
                                      replicas=count))
    print(f"\n{'bot':34} {'answers/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'peak MB':>9} "
          f"{'ready MB':>9} {'cpu ms/a':>8} {'drv':>6} {'sql/a':>6} {'sub p99':>8} "
          f"{'errors':>6}")
    for r in results:
        print_case(r)
    one, many = results
    ratio = many.rate / one.rate if one.rate else float("nan")
    print(f"\n{args.replicas} replicas / 1: throughput x{ratio:.2f}; "
          f"load average {os.getloadavg()[0]:.2f} after")
    for e in (one.errors + many.errors)[:5]:
        print(f"  error: {e}")
    return {"inspectors": args.inspectors, "replicas": args.replicas, "cpus": os.cpu_count(),
            "cases": [r.summary() for r in results], "ratio": round(ratio, 3)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if args.replicas:
        return await replicas_main(args)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    print(f"Inspection benchmark: {args.inspectors} inspectors x {ITEMS} items at once, "
          f"database={args.db}, flood control off, {os.cpu_count()} CPUs, "
          f"load average {load_before[0]:.2f} before the run")
    print("Each bot runs in its own subprocess (peak RSS = that process's VmHWM); the sandbox "
          "and the simulated inspectors run in this process.\n", flush=True)
    floors = []
    for flag in args.floor:
        kind = "floor-concurrent" if flag else "floor"
        label = f"ptb floor (concurrent_updates={flag})"
        print(f"running {label} ...", flush=True)
        floors.append(await run_case(label, kind, args.inspectors, None))
    print(f"running wenming ({args.db}) ...", flush=True)
    wenming = await run_case(f"wenming ({args.db})", "wenming", args.inspectors, args.db,
                             str(Path(args.profile).resolve()) if args.profile else None,
                             args.set or ())
    best = max(floors, key=lambda r: (not r.errors, r.rate))

    print()
    print(f"{'bot':34} {'answers/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'peak MB':>9} "
          f"{'ready MB':>9} {'cpu ms/a':>8} {'drv':>6} {'sql/a':>6} {'sub p99':>8} "
          f"{'errors':>6}")
    for r in [*floors, wenming]:
        print_case(r)
    print("\nanswers/s, p50/p99: the 17 verdict presses per inspector, press -> edit showing the "
          "next item.\npeak MB: the bot process's peak RSS; ready MB: its RSS once started. "
          "cpu ms/a: bot CPU per answer;\ndrv: CPU share of the sandbox+driver process during "
          "the answer phase (near 1.0 = it was the bottleneck).\nsql/a: SQL statements the bot "
          "ran per answer (all its engines). sub p99: submit press -> submitted screen.")
    floor_p99 = pct(best.answer.latencies_ms, 0.99)
    w_p99 = pct(wenming.answer.latencies_ms, 0.99)
    ratio = wenming.rate / best.rate if best.rate else float("nan")
    p99_ratio = w_p99 / floor_p99 if floor_p99 else float("nan")
    tp_ok = ratio >= THROUGHPUT_TARGET and not wenming.errors
    p99_ok = p99_ratio <= P99_TARGET and not wenming.errors
    print(f"\nfloor = {best.label}")
    print(f"wenming / floor: throughput x{ratio:.2f} (target >= {THROUGHPUT_TARGET}) "
          f"{verdict(tp_ok)}; p99 x{p99_ratio:.2f} (target <= {P99_TARGET}) {verdict(p99_ok)}; "
          f"peak RSS x{wenming.peak_rss_kb / best.peak_rss_kb:.2f}")
    print(f"overall: {verdict(tp_ok and p99_ok)}")
    load_after = os.getloadavg()
    if max(load_before[0], load_after[0]) > (os.cpu_count() or 1) + 0.5:
        print(f"note: load average {load_before[0]:.2f} before / {load_after[0]:.2f} after "
              "(this run keeps ~2 cores busy itself); other work on the machine skews figures")
    if wenming.errors or best.errors:
        for e in (wenming.errors + best.errors)[:5]:
            print(f"  error: {e}")
    return {"date": started.isoformat(timespec="seconds"), "inspectors": args.inspectors,
            "items": ITEMS, "db": args.db, "cpus": os.cpu_count(),
            "python": sys.version.split()[0], "memory": "per-bot subprocess VmHWM",
            "loadavg_before": round(load_before[0], 2), "loadavg_after": round(load_after[0], 2),
            "floors": [r.summary() for r in floors], "floor_best": best.label,
            "wenming": wenming.summary(),
            "ratios": {"throughput": round(ratio, 3), "p99": round(p99_ratio, 3),
                       "peak_rss": round(wenming.peak_rss_kb / best.peak_rss_kb, 3)},
            "targets": {"throughput_min": THROUGHPUT_TARGET, "p99_max": P99_TARGET,
                        "throughput": verdict(tp_ok), "p99": verdict(p99_ok),
                        "overall": verdict(tp_ok and p99_ok)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inspectors", type=int, default=200)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the Wenming bot's database (PostgreSQL: a throwaway database on "
                             "BENCH_PG_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432)")
    parser.add_argument("--floor", choices=("both", "sequential", "concurrent"), default="both",
                        help="which bare-PTB configurations to measure (best one is the floor)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="a Settings field for the Wenming bot (repeatable), e.g. "
                             "--set http_transport=httpx --set max_concurrent_chats=16")
    parser.add_argument("--profile", metavar="PATH",
                        help="cProfile the Wenming bot's event-loop thread during the answer "
                             "phase and write the stats there (read with python -m pstats); "
                             "slows the bot, so its figures are not comparable then")
    parser.add_argument("--replicas", type=int, default=0, metavar="N",
                        help="webhook mode on PostgreSQL: 1 replica vs N behind a balancer")
    # internal: run one bot as the measured subprocess
    parser.add_argument("--webhook", help=argparse.SUPPRESS)
    parser.add_argument("--listen", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("floor", "floor-concurrent", "wenming"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--file-url", help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--media-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        asyncio.run(child_main(args))
        return
    if args.inspectors < 1:
        parser.error("--inspectors must be at least 1")
    args.floor = {"both": (False, True), "sequential": (False,),
                  "concurrent": (True,)}[args.floor]
    report = asyncio.run(main_async(args))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2, ensure_ascii=False)
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
