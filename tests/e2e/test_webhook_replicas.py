"""Two replicas in webhook mode (`wenming run` twice) on one PostgreSQL database, behind a
round-robin proxy the sandbox's webhook points at: 1,000 updates from 50 inspectors (button
presses opening an item, then notes on it) are each handled once and in order per chat; and
the same with one replica SIGKILLed in the middle: the other takes its stored updates over
when their lease runs out, and Telegram's re-sent ones come to it through the proxy.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from db.models import Answer, InboxUpdate, Inspection
from db.session import create_engine, create_sessionmaker
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer
from tests.conftest import WEBHOOK_PATH, WEBHOOK_SECRET, free_port, wait_until
from tests.e2e.process import start_bot_process, stop_bot_process
from tests.e2e.test_crash import FIRST_ID, city_with_inspectors, open_for_notes

INSPECTORS = 50
NOTES = 17  # with the 3-4 presses and the /inspect that open the item: >= 1,000 updates


class RoundRobin:
    """A load balancer in front of the replicas: each post to the next one; a replica that
    cannot be reached is skipped (its health check would have failed)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.port = free_port()
        self.answered: Counter[int] = Counter()  # replica port -> 2xx answers
        self._turn = itertools.cycle(range(len(ports)))
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=70))
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        first = next(self._turn)
        for i in range(len(self.ports)):
            port = self.ports[(first + i) % len(self.ports)]
            try:
                async with self._session.post(
                        f"http://127.0.0.1:{port}{WEBHOOK_PATH}", data=body,
                        headers={k: v for k, v in request.headers.items()
                                 if k.lower().startswith(("x-telegram", "content-type"))},
                ) as resp:
                    text = await resp.read()
                    if resp.status < 300:
                        self.answered[port] += 1
                    return web.Response(status=resp.status, body=text)
            except aiohttp.ClientConnectorError:
                continue  # that replica is down: the next one
            except aiohttp.ClientError:
                return web.Response(status=502)  # died mid-request: Telegram sends it again
        return web.Response(status=502)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[SandboxServer, SandboxClient]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database")
    async with city_with_inspectors(database_url, INSPECTORS) as both:
        yield both


async def healthy(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/healthz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


@pytest.mark.parametrize("kill", [False, True], ids=["both-live", "one-sigkilled"])
async def test_two_replicas_handle_every_update_once_in_order(
    world: tuple[SandboxServer, SandboxClient], database_url: str, tmp_path: Path, kill: bool,
) -> None:
    server, sb = world
    ports = [free_port(), free_port()]
    proxy = RoundRobin(ports)
    await proxy.start()
    procs: list[subprocess.Popen[bytes]] = []
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    try:
        for n, port in enumerate(ports):  # one after the other: the first migrates
            procs.append(start_bot_process(
                server, database_url, tmp_path, WENMING_HTTP_LISTEN=f"127.0.0.1:{port}",
                WENMING_WEBHOOK_URL=f"http://127.0.0.1:{proxy.port}{WEBHOOK_PATH}",
                WENMING_WEBHOOK_SECRET=WEBHOOK_SECRET, WENMING_REPLICA_NAME=f"replica-{n}"))
            await wait_until(lambda p=port: healthy(p), timeout=60, interval=0.2)

        await asyncio.gather(*(open_for_notes(sb, FIRST_ID + i) for i in range(INSPECTORS)))

        async def fire(user_id: int) -> None:
            for k in range(NOTES):
                await sb.send_text(user_id, f"note-{user_id}-{k}")

        await asyncio.gather(*(fire(FIRST_ID + i) for i in range(INSPECTORS)))
        orphans: list[int] = []
        if kill:
            # Killed while it has stored updates in hand (claimed), so that the survivor
            # must take them over when their lease runs out.
            async def in_hand() -> bool:
                async with sessions() as s:
                    orphans[:] = (await s.scalars(select(InboxUpdate.id).where(
                        InboxUpdate.claimed_by == "replica-1",
                        InboxUpdate.processed_at.is_(None)))).all()
                return len(orphans) > 0
            await wait_until(in_hand, timeout=60, interval=0.005)
            procs[1].send_signal(signal.SIGKILL)
            assert procs[1].wait(timeout=10) == -signal.SIGKILL
            pending = (await sb.stats())["pending_updates"]
            assert pending > 0, "the load was over before the kill; the test is vacuous"

        async def all_noted() -> bool:
            async with sessions() as s:
                remarks = (await s.scalars(select(Answer.remark))).all()
            return len(remarks) == INSPECTORS and all(
                r is not None and r.count("\n") >= NOTES - 1 for r in remarks)

        try:
            await wait_until(all_noted, timeout=120, interval=0.2)
        except TimeoutError:
            log = (tmp_path / "bot.log").read_text(errors="replace")[-4000:]
            raise AssertionError(f"notes did not all arrive; bot log tail:\n{log}") from None
        await wait_until(lambda: _all_handled(sessions), timeout=30, interval=0.2)
        async with sessions() as s:
            answers = {a.inspection_id: a for a in (await s.scalars(select(Answer))).all()}
            inspections = (await s.scalars(select(Inspection))).all()
            updates = await s.scalar(select(func.count()).select_from(InboxUpdate))
        assert (updates or 0) >= 1000
        assert len(inspections) == INSPECTORS
        for insp in inspections:
            expected = "\n".join(f"note-{insp.inspector_id}-{k}" for k in range(NOTES))
            assert answers[insp.id].remark == expected  # each once, in the chat's order
            assert insp.status == "open" and insp.step == 0 and insp.awaiting == "extra_photo"
        assert all(proxy.answered[p] > 50 for p in ports), proxy.answered  # both took work
        if orphans:  # the dead replica's, handled by the survivor
            async with sessions() as s:
                owners = set((await s.scalars(select(InboxUpdate.claimed_by).where(
                    InboxUpdate.id.in_(orphans), InboxUpdate.processed_at.is_not(None)))).all())
            assert owners <= {"replica-0"}, owners
    finally:
        await engine.dispose()
        for proc in procs:
            stop_bot_process(proc)
        await proxy.stop()


async def _all_handled(sessions: object) -> bool:
    assert callable(sessions)
    async with sessions() as s:
        return (await s.scalar(select(func.count()).select_from(InboxUpdate)
                               .where(InboxUpdate.processed_at.is_(None)))) == 0
