"""Which of the project's files one update or one scheduler tick runs through (a pytest plugin).

    PYTHONPATH=. .venv/bin/pytest -p bench.pathtrace -s -q tests/bot/test_press_path.py \
        -k moved_on_elsewhere          # a verdict press (the second, "press v:1:0:c")
    PYTHONPATH=. .venv/bin/pytest -p bench.pathtrace -s -q tests/db/test_scheduler.py \
        -k replies_to_the_card         # a scheduler tick that queues a deadline reminder

While `Application.process_update` (for a callback query) or `Scheduler.tick` runs, a profile
hook notes the file of every Python function called in the repository (tests and the venv
left out); at the end the plugin prints each window's files in first-call order. The windows
cover what runs on the event loop meanwhile, so an idle test (the bot tests' fake Bot API, a
FakeClock scheduler) is what to trace. It patches by name only, so the same file traces older
commits too (copy it into their checkout): that is how the README's before/after counts were
made.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_windows: list[tuple[str, list[tuple[str, list[str]]], list[tuple[str, str]]]] = []

# Layers, top to bottom (docs/ARCHITECTURE.md §0), by path prefix; the older flat bot/ modules
# are placed where their content belongs, so that commits before the restructuring compare.
LAYERS: list[tuple[str, ...]] = [
    ("bot/app.py", "bot/cli.py", "bot/sandbox_run.py"),
    ("handlers/", "scheduler/", "web/"),
    ("bot/telegram/", "bot/context.py", "bot/inbox.py", "bot/outbox.py", "bot/http.py",
     "bot/commands.py"),
    ("bot/services/",),
    ("db/",),
    ("bot/media/", "bot/images.py", "bot/bulletin.py"),
    ("bot/render/", "bot/views.py", "bot/task_views.py", "bot/report_views.py", "bot/i18n.py",
     "bot/callbacks.py", "bot/refusals.py"),
    ("bot/config.py",),
    ("bot/domain/",),
]


def layer(path: str) -> int:
    return next((rank for rank, prefixes in enumerate(LAYERS) if path.startswith(prefixes)),
                len(LAYERS))


def _relative(filename: str) -> str | None:
    if not filename.startswith("/"):  # <string>, <frozen abc>, SQLAlchemy's generated code
        return None
    try:
        rel = Path(filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    # The sandbox is the Telegram side (the bot tests' fake Bot API renders entities with it).
    if rel.parts and rel.parts[0] in ("tests", ".venv", "bench", "sandbox"):
        return None
    return str(rel)


def _traced(label: Any, function: Any) -> Any:
    @functools.wraps(function)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        name = label(*args)
        if name is None:
            return await function(*args, **kwargs)
        seen: dict[str, dict[str, None]] = {}
        edges: dict[tuple[str, str], None] = {}

        def profile(frame: FrameType, event: str, arg: object) -> None:
            if event == "call":
                rel = _relative(frame.f_code.co_filename)
                if rel is not None:
                    seen.setdefault(rel, {})[frame.f_code.co_name] = None
                    caller = frame.f_back
                    while caller is not None and _relative(caller.f_code.co_filename) is None:
                        caller = caller.f_back  # through library frames to our caller
                    if caller is not None:
                        source = _relative(caller.f_code.co_filename)
                        if source is not None and source != rel:
                            edges.setdefault((source, rel), None)

        previous = sys.getprofile()
        sys.setprofile(profile)
        try:
            return await function(*args, **kwargs)
        finally:
            sys.setprofile(previous)
            _windows.append((name, [(f, list(fns)) for f, fns in seen.items()], list(edges)))
    return wrapper


def pytest_configure(config: Any) -> None:
    from telegram.ext import Application

    def press(app: Any, update: Any) -> str | None:
        query = getattr(update, "callback_query", None)
        return f"press {query.data}" if query is not None else None

    Application.process_update = _traced(press, Application.process_update)  # type: ignore[method-assign]
    try:
        from scheduler.runner import Scheduler
    except ImportError:
        return
    Scheduler.tick = _traced(lambda *_: "scheduler tick", Scheduler.tick)  # type: ignore[method-assign]


def pytest_unconfigure(config: Any) -> None:
    verbose = config.getoption("verbose") > 0
    for name, files, edges in _windows:
        upward = [(a, b) for a, b in edges if layer(b) < layer(a)]
        print(f"\n{name}: {len(files)} files, {len(upward)} upward calls")
        for a, b in upward:
            print(f"  upward: {a} -> {b}")
        for f, functions in files:
            print(f"  {f}" + (f"  ({', '.join(functions)})" if verbose else ""))
