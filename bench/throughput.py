"""Throughput/latency benchmark through the sandbox (flood control off).

    python -m bench.throughput                    # 50 users x 20 msgs, one user at a time
    python -m bench.throughput --concurrent       # all users talk at once (closed loop each)
    python -m bench.throughput --bot wenming      # also the Wenming bot, polling and webhook

Latency is measured from just before the user-side POST /_sandbox/messages to the moment the
bot's reply is stored by the sandbox (an in-process event hook, so no polling skew).

Baselines: a bare PTB echo bot, run with concurrent_updates off and on, and a bare aiogram 3
echo bot (the `bench` extra); every ratio is quoted against the best of them, and against PTB's.

The Wenming bot plugs in through `bench/wenming_target.py`:
    async def start(server: SandboxServer) -> Callable[[], Awaitable[None]]   # returns stop()
and optionally:
    def make_text(user_index: int, k: int) -> str        # what users send (default "ping i k")
    REPLIES_PER_MESSAGE: int = 1                         # bot messages that answer one input
    async def prepare(client: SandboxClient, user_ids: list[int]) -> None   # e.g. registration
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib
import json
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

StopFn = Callable[[], Awaitable[None]]
StartFn = Callable[[SandboxServer], Awaitable[StopFn]]
TOKEN = "123:BenchToken"
REPLY_TIMEOUT = 10.0


@dataclass
class Result:
    label: str
    messages: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    errors: int

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))]

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        del out["latencies_ms"]
        out.update(updates_per_s=round(self.rate, 1), p50_ms=round(self.pct(0.5), 2),
                   p99_ms=round(self.pct(0.99), 2),
                   mean_ms=round(statistics.fmean(self.latencies_ms), 2)
                   if self.latencies_ms else None)
        return out


class ReplyTracker:
    """Matches bot replies to user sends per chat, FIFO, via the sandbox's event hook."""

    def __init__(self, server: SandboxServer, replies_per_message: int) -> None:
        self.replies = replies_per_message
        self.waiting: dict[int, collections.deque[list[Any]]] = collections.defaultdict(
            collections.deque)
        server.state.events.listeners.append(self.on_event)

    def expect(self, chat_id: int) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[chat_id].append([fut, 0])
        return fut

    def on_event(self, event: dict[str, Any]) -> None:
        if event["type"] != "message" or not event["message"].get("from", {}).get("is_bot"):
            return
        queue = self.waiting.get(event["chat_id"])
        if not queue:
            return
        entry = queue[0]
        entry[1] += 1
        if entry[1] >= self.replies:
            queue.popleft()
            if not entry[0].done():
                entry[0].set_result(time.perf_counter())


# ------------------------------------------------------------------------------ baseline bot

async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text)


def ptb_echo(concurrent_updates: bool) -> StartFn:
    async def start(server: SandboxServer) -> StopFn:
        app = (ApplicationBuilder().token(TOKEN).base_url(server.api_base_url)
               .base_file_url(server.file_base_url).concurrent_updates(concurrent_updates)
               .build())
        app.add_handler(MessageHandler(filters.TEXT, _echo))
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0)

        async def stop() -> None:
            assert app.updater is not None
            await app.updater.stop()
            await app.stop()
            await app.shutdown()
        return stop
    return start


def aiogram_echo() -> StartFn | None:
    """A bare aiogram 3 echo bot long-polling the sandbox (its TelegramAPIServer setting), or
    None when aiogram is not installed (`pip install -e '.[bench]'`)."""
    try:
        from aiogram import Bot, Dispatcher
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer
        from aiogram.types import Message
    except ImportError:
        return None

    async def start(server: SandboxServer) -> StopFn:
        session = AiohttpSession(api=TelegramAPIServer.from_base(server.url))
        bot = Bot(TOKEN, session=session)
        dp = Dispatcher()

        @dp.message()
        async def echo(message: Message) -> None:
            if message.text:
                await message.answer(message.text)

        started = asyncio.Event()

        async def on_startup() -> None:
            started.set()

        dp.startup.register(on_startup)
        task = asyncio.create_task(dp.start_polling(bot, handle_signals=False,
                                                    polling_timeout=10))
        await started.wait()

        async def stop() -> None:
            await dp.stop_polling()
            await task
            await bot.session.close()
        return stop
    return start


# ---------------------------------------------------------------------------------- driver

async def run_case(label: str, start_bot: StartFn, users: int, per_user: int,
                   concurrent: bool, target: ModuleType | None = None) -> Result:
    make_text: Callable[[int, int], str] = getattr(
        target, "make_text", lambda i, k: f"ping {i} {k}")
    replies = int(getattr(target, "REPLIES_PER_MESSAGE", 1))
    prepare = getattr(target, "prepare", None)
    async with SandboxServer(flood_control=False) as server:
        stop = await start_bot(server)
        try:
            async with SandboxClient(server.url) as client:
                ids = [int((await client.create_user(f"bench{i}", started=True))["id"])
                       for i in range(users)]
                if prepare is not None:
                    await prepare(client, ids)
                tracker = ReplyTracker(server, replies)
                latencies: list[float] = []
                errors = 0

                async def talk(index: int, uid: int, rounds: int) -> None:
                    nonlocal errors
                    for k in range(rounds):
                        fut = tracker.expect(uid)
                        t0 = time.perf_counter()
                        await client.send_text(uid, make_text(index, k))
                        try:
                            done = await asyncio.wait_for(fut, REPLY_TIMEOUT)
                        except TimeoutError:
                            errors += 1
                            tracker.waiting[uid].clear()
                            continue
                        latencies.append((done - t0) * 1000)

                await talk(0, ids[0], 3)  # warm-up: connections, first getUpdates cycle
                latencies.clear()
                t_start = time.perf_counter()
                if concurrent:
                    await asyncio.gather(*(talk(i, uid, per_user) for i, uid in enumerate(ids)))
                else:
                    for i, uid in enumerate(ids):
                        await talk(i, uid, per_user)
                seconds = time.perf_counter() - t_start
        finally:
            await stop()
    return Result(label, users * per_user, seconds, latencies, errors)


def print_table(results: list[Result]) -> None:
    print(f"{'bot':42} {'upd/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in results:
        print(f"{r.label:42} {r.rate:9.1f} {r.pct(0.5):8.2f} {r.pct(0.99):8.2f} {r.errors:7d}")


def load_wenming() -> tuple[ModuleType | None, str | None]:
    try:
        module = importlib.import_module("bench.wenming_target")
    except Exception as exc:  # any import problem just means "not available yet"
        return None, f"{type(exc).__name__}: {exc}"
    if not callable(getattr(module, "start", None)):
        return None, "bench.wenming_target has no start(server) function"
    return module, None


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    mode = "concurrent" if args.concurrent else "sequential"
    print(f"Sandbox throughput: {args.users} users x {args.messages} messages, mode={mode}, "
          "flood control off")
    baseline = [await run_case(f"ptb-echo (concurrent_updates={flag})", ptb_echo(flag),
                               args.users, args.messages, args.concurrent)
                for flag in (False, True)]
    ptb_best = max(baseline, key=lambda r: (r.errors == 0, r.rate))
    aiogram = aiogram_echo()
    if aiogram is None:
        print("aiogram is not installed (pip install -e '.[bench]'): no aiogram baseline")
    else:
        baseline.append(await run_case("aiogram-echo (polling)", aiogram, args.users,
                                       args.messages, args.concurrent))
    best = max(baseline, key=lambda r: (r.errors == 0, r.rate))
    results = list(baseline)
    report: dict[str, Any] = {"mode": mode, "users": args.users, "messages": args.messages,
                              "baseline": [r.summary() for r in baseline],
                              "baseline_best": best.label}
    wenming: list[Result] = []
    if args.bot == "wenming":
        module, problem = load_wenming()
        if module is None:
            print(f"\nbench.wenming_target could not be used ({problem}); "
                  "only the baseline was measured.")
            report["wenming_error"] = problem
        else:
            modes = {"polling": module.start, "webhook": getattr(module, "start_webhook", None)}
            for name in args.modes.split(","):
                start = modes.get(name)
                if start is None:
                    continue
                result = await run_case(f"wenming ({name})", start, args.users,
                                        args.messages, args.concurrent, module)
                wenming.append(result)
                report[f"wenming_{name}"] = result.summary()
            results.extend(wenming)
    print()
    print_table(results)
    print(f"\nbaseline best: {best.label}")
    for result in wenming:
        if not (best.rate and result.latencies_ms):
            continue
        for base in [best] if best is ptb_best else [best, ptb_best]:
            ratio = result.rate / base.rate
            print(f"{result.label} / {base.label}: throughput x{ratio:.2f}, "
                  f"p50 x{result.pct(0.5) / base.pct(0.5):.2f}, "
                  f"p99 x{result.pct(0.99) / base.pct(0.99):.2f}")
        report[f"throughput_ratio_{result.label.split()[1].strip('()')}"] = round(
            result.rate / best.rate, 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20, help="messages per user")
    parser.add_argument("--concurrent", action="store_true",
                        help="all users send at once (each still waits for its reply)")
    parser.add_argument("--bot", choices=("baseline", "wenming"), default="baseline")
    parser.add_argument("--modes", default="polling,webhook",
                        help="the Wenming bot's intake modes to measure (polling,webhook)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    report = asyncio.run(main_async(args))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2, ensure_ascii=False)
    sys.exit(0)


if __name__ == "__main__":
    main()
