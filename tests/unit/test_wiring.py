"""One composition root: importing a module wires nothing; bot/app.py wires each application.

Importing every module (in a fresh interpreter, with a poisoned environment) subscribes,
registers and listens to nothing, builds no service and reads no setting; two applications
built in one process share no subscriber, hook, listener or cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs in the fresh interpreter: third-party libraries first (what they do at import is theirs),
# then a baseline, then every module of ours, then what changed.
PROBE = r"""
import importlib, json, os, pkgutil, sys, types

import aiohttp, alembic, httpx, PIL.Image, sqlalchemy, sqlalchemy.ext.asyncio, sqlalchemy.orm
import prometheus_client, telegram, telegram.ext, yaml
from sqlalchemy.event import registry
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import sessionmaker

read = []


class Spy(dict):
    def __getitem__(self, key):
        read.append(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        read.append(key)
        return super().get(key, default)

    def __contains__(self, key):
        read.append(key)
        return super().__contains__(key)


listeners_before = set(registry._key_to_collection)
os.environ = Spy(os.environ)
os.getenv = lambda key, default=None: os.environ.get(key, default)

# Alembic's env.py is a script Alembic runs (it migrates); __main__ runs the sandbox.
SKIP = {"db.migrations.env", "sandbox.__main__"}
names = []
for package in ("bot", "db", "handlers", "scheduler", "web", "sandbox"):
    names.append(package)
    path = [os.path.join(os.getcwd(), package)]
    for info in pkgutil.walk_packages(path, package + "."):
        if info.name not in SKIP:
            names.append(info.name)
for migration in sorted(os.listdir("db/migrations/versions")):
    if migration.endswith(".py"):
        names.append("db.migrations.versions." + migration[:-3])
        sys.path.insert(0, "db/migrations/versions")
modules = {}
for name in names:
    if name.startswith("db.migrations.versions."):
        modules[name] = importlib.import_module(name.rsplit(".", 1)[1])
    else:
        modules[name] = importlib.import_module(name)

# Listeners on sessions, engines, connections, pools and mappers (not SQLAlchemy's own
# bookkeeping of tables and classes, which declaring models does).
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.pool import Pool

targets = {id(t): t.__name__ for t in (Session, sessionmaker, AsyncSession, async_sessionmaker,
                                       Engine, AsyncEngine, Connection, Pool, Mapper)}
new_listeners = [
    f"{targets[target]}.{name}"
    for target, name, _fn in set(registry._key_to_collection) - listeners_before
    if target in targets
]

from bot.services.events import EventBus
from db.caches import PersonCache, ProgressCache
from bot.services.press import PressService
from bot.services.inspections import InspectionService
from bot.services.reports import ReportContext
from bot.telegram.outbox import OutboxSender
from db.uow import UnitOfWorkFactory
SERVICES = (EventBus, PersonCache, ProgressCache, PressService, InspectionService,
            ReportContext, OutboxSender, UnitOfWorkFactory, AsyncEngine, async_sessionmaker,
            sessionmaker)
instances = sorted(
    f"{name}.{attr}: {type(value).__name__}"
    for name, module in modules.items()
    for attr, value in vars(module).items()
    if isinstance(value, SERVICES)
)
# Metrics live in each application's own registry, never in prometheus_client's global one.
metrics = sorted(name for name in prometheus_client.REGISTRY._names_to_collectors
                 if name.startswith("wenming"))
print(json.dumps({"modules": len(modules), "listeners": new_listeners,
                  "instances": instances, "read": sorted(set(read)), "metrics": metrics}))
"""

# What Settings reads (bot/config.py): set to values no module could accept at import.
POISON = {
    "DATABASE_URL": "poisoned://", "TELEGRAM_BOT_TOKEN": "poisoned",
    "WENMING_TIMEZONE": "Poisoned/Zone", "WENMING_RELAPSE_WEEKS": "poisoned",
    "WENMING_CJK_FONT": "/poisoned", "WENMING_CONFIG_DIR": "/poisoned",
    "WENMING_MEDIA_DIR": "/poisoned", "WENMING_DEFAULT_LANGUAGE": "poisoned",
    "WENMING_SCHEDULE_FILE": "/poisoned", "WENMING_STANDARDS_DIR": "/poisoned",
    "WENMING_LOG_FORMAT": "poisoned", "WENMING_REPLICA_NAME": "poisoned",
    "WENMING_READY_OUTBOX_MAX_AGE": "poisoned", "WENMING_READY_BOT_API_MAX_AGE": "poisoned",
}


def test_importing_every_module_wires_nothing_and_reads_no_setting() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WENMING_", "TELEGRAM_"))}
    env.update(POISON)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["modules"] > 80  # every module, not a handful
    assert found["listeners"] == [], "SQLAlchemy listeners installed at import"
    assert found["instances"] == [], "module-level services"
    assert found["metrics"] == [], "metrics registered at import"
    ours = [key for key in found["read"]
            if key in POISON or key.startswith(("WENMING_", "TELEGRAM_"))]
    assert ours == [], "the environment is read at import (Settings is its only reader)"


def test_no_module_keeps_a_registry_of_hooks_or_subscribers() -> None:
    from bot.services import events
    from bot.telegram import outbox

    assert not hasattr(events, "_subscribers") and not hasattr(events, "subscribe")
    assert not hasattr(outbox, "SENT_HOOKS") and not hasattr(outbox, "on_sent")


@pytest.fixture
def two_apps(tmp_path: Path) -> list[object]:
    from bot.app import Wenming, build_application
    from bot.config import sqlite_url
    from tests.conftest import make_settings

    url = sqlite_url(tmp_path / "shared.db")
    return [Wenming(build_application(make_settings(url, tmp_path / name)))
            for name in ("a", "b")]


async def test_two_applications_share_no_subscriber_hook_or_cache(two_apps: list[object]) -> None:
    from sqlalchemy import event

    from bot.app import Wenming
    from db.migrate import upgrade_async
    from db.models import Person

    a, b = two_apps
    assert isinstance(a, Wenming) and isinstance(b, Wenming)
    try:
        # Each application's units of work publish on its own bus, heard by its own report
        # context.
        bus_a, bus_b = a.deps.uow.events, b.deps.uow.events
        assert bus_a is not None and bus_b is not None and bus_a is not bus_b
        [heard_a], [heard_b] = bus_a.subscribers("task.changed"), bus_b.subscribers("task.changed")
        assert heard_a.args == (a.deps.reports,)  # type: ignore[attr-defined]
        assert heard_b.args == (b.deps.reports,)  # type: ignore[attr-defined]
        # Each outbox has its own delivery hooks, given when it was built.
        assert a.outbox._sent_hooks.keys() == b.outbox._sent_hooks.keys() == {"task_card"}
        assert a.outbox._sent_hooks is not b.outbox._sent_hooks
        # Each counts into its own metrics registry.
        assert a.metrics.registry is not b.metrics.registry
        a.metrics.set_role("poller", True)
        assert b.metrics.registry.get_sample_value(
            "wenming_replica_role", {"replica": b.metrics.replica, "role": "poller"}) is None
        # The caches follow their own application's sessions only.
        own_a = a.deps.uow.sessions.kw["sync_session_class"]
        own_b = b.deps.uow.sessions.kw["sync_session_class"]
        assert own_a is not own_b
        assert event.contains(own_a, "after_commit", a.deps.people._refresh_people)
        assert not event.contains(own_b, "after_commit", a.deps.people._refresh_people)

        await upgrade_async(a.deps.settings.database_url.reveal())
        async with a.deps.uow() as uow:
            uow.session.add(Person(id=7, first_name="甲", role="resident"))
            await uow.commit()
        for app in (a, b):
            async with app.deps.uow.sessions() as s:
                person = await s.get(Person, 7)
                assert person is not None
                app.deps.people.put(person)
        async with a.deps.uow() as uow:
            person = await uow.session.get(Person, 7)
            assert person is not None
            person.language = "en"
            await uow.commit()
        seen_a, seen_b = a.deps.people.get(7), b.deps.people.get(7)
        assert seen_a is not None and seen_a.language == "en"  # A's commit reached A's cache
        assert seen_b is not None and seen_b.language != "en"  # and not B's
    finally:
        for app in (a, b):
            await app.application.bot_data["engine"].dispose()
