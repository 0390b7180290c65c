"""The `wenming` command: run, sandbox, db, standards, import, invite, bulletin, draw."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings, SettingsError
from bot.domain.standards import check_files, load_standards

if TYPE_CHECKING:
    from bot.app import Core


def _setup_logging(settings: Settings, verbose: bool = False) -> None:
    """bot/observability/logs.py: the format, the replica's name, and what never to write."""
    from sqlalchemy.engine import make_url

    from bot.observability.logs import configure_logging

    secrets = [settings.bot_token.reveal()]
    with contextlib.suppress(Exception):  # an unparsable URL fails later, with its own message
        secrets.append(make_url(settings.database_url.reveal()).password or "")
    configure_logging(settings.log_format, replica=settings.replica_name, verbose=verbose,
                      secrets=secrets)


def _check_standards(settings: Settings) -> bool:
    problems = check_files(sorted(settings.standards_dir.glob("*.yaml")))
    for problem in problems:
        print(f"standard: {problem}", file=sys.stderr)
    return not problems


def _check_draws(settings: Settings) -> bool:
    """draws.yaml, validated before the bot starts: its error names the file, line and field."""
    from bot.domain.draws_config import DrawConfigError, load_draws

    try:
        load_draws(settings.draws_file)
    except DrawConfigError as exc:
        print(f"draws: {exc}", file=sys.stderr)
        return False
    return True


@contextlib.asynccontextmanager
async def _core(settings: Settings) -> AsyncIterator[Core]:
    """The migrated database and the app's core, wired as the bot wires it (bot/app.py)."""
    from bot.app import build_core
    from db.migrate import upgrade_async

    await upgrade_async(settings.database_url.reveal())
    core = build_core(settings)
    try:
        yield core
    finally:
        await core.close()


async def _run(settings: Settings) -> None:
    from bot.app import Wenming, build_application

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await Wenming(build_application(settings)).run_until(stop)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.bot_token:
        print("TELEGRAM_BOT_TOKEN is not set. To try the bot without Telegram, run "
              "`wenming sandbox`.", file=sys.stderr)
        return 2
    if not _check_standards(settings):
        print("refusing to start with an invalid standard", file=sys.stderr)
        return 2
    if not _check_draws(settings):
        print("refusing to start with an invalid draws.yaml", file=sys.stderr)
        return 2
    from db.single_process import DatabaseInUse

    try:
        asyncio.run(_run(settings))
    except DatabaseInUse as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    if not _check_standards(settings):
        return 2
    from db.single_process import DatabaseInUse
    from sandbox.run import SandboxInUse, run_sandbox

    try:
        asyncio.run(run_sandbox(settings, host=args.host, port=args.port, web_port=None,
                                data_dir=Path(args.data_dir), fresh=args.fresh))
    except (SandboxInUse, DatabaseInUse) as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    if args.db_command == "backup":
        from db.backup import BackupError, backup_sqlite

        try:
            size = backup_sqlite(settings.database_url.reveal(), Path(args.file))
        except BackupError as exc:
            print(f"backup refused: {exc}", file=sys.stderr)
            return 2
        print(f"database copied to {args.file} ({size:,} bytes)")
        return 0
    from db.migrate import upgrade

    upgrade(settings.database_url.reveal(), args.revision)
    print(f"database upgraded to {args.revision}")
    return 0


def cmd_standards(args: argparse.Namespace, settings: Settings) -> int:
    paths = [Path(p) for p in args.files] or sorted(settings.standards_dir.glob("*.yaml"))
    problems = check_files(paths)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {len(paths)} file(s)")
        return 1
    count = sum(len(s.items) for s in load_standards(settings.standards_dir).values()) \
        if not args.files else None
    print(f"{len(paths)} file(s) OK" + (f", {count} checklist steps" if count else ""))
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.domain.org import OrgFileError, load_org_file

    standards = load_standards(settings.standards_dir)
    try:
        org = load_org_file(Path(args.file), set(standards))
    except OrgFileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1

    async def go() -> list[str]:
        from bot.services.org_import import import_org

        async with _core(settings) as core:
            summary = await import_org(core.uow, org)
        return summary.lines()

    for line in asyncio.run(go()):
        print(line)
    return 0


def cmd_plans(args: argparse.Namespace, settings: Settings) -> int:
    """`wenming plans check [FILE]` validates a plans file offline (every problem, with its
    line); `wenming plans import [FILE]` makes the database's plans the file's (paused ones
    stay paused; plans not in the file are removed)."""
    from bot.domain.plans import PlansConfigError, PlansImport
    from bot.domain.yamlfile import read_text
    from bot.services.plan_files import check_text, import_checked

    path = Path(args.file) if args.file else settings.plans_file
    known = set(load_standards(settings.standards_dir))
    try:
        text = read_text(path, PlansConfigError)
    except PlansConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"1 problem(s) in {path}", file=sys.stderr)
        return 1
    checked = check_text(text, str(path), known, allow_empty=True)
    if isinstance(checked, PlansImport):
        print("\n".join(map(str, checked.problems)), file=sys.stderr)
        print(f"{len(checked.problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    if args.plans_command == "check":
        print(f"{path}: {len(checked.plans)} plan(s) OK; lists go out at "
              f"{checked.morning:%H:%M} ({settings.timezone})")
        return 0
    config = checked

    async def go() -> PlansImport:
        from db.types import utcnow

        async with _core(settings) as core, core.uow() as uow:
            outcome = await import_checked(uow, config, str(path), utcnow())
            if not outcome.problems:
                await uow.commit(mark_update_handled=False)
        return outcome

    outcome = asyncio.run(go())
    for line in outcome.problems:
        print(line, file=sys.stderr)
    for line in outcome.warnings:
        print(line, file=sys.stderr)
    if outcome.problems:
        print(f"{len(outcome.problems)} problem(s) in {path}; nothing imported", file=sys.stderr)
        return 1
    print(f"plans imported from {path}: {outcome.added} added, {outcome.updated} updated, "
          f"{outcome.removed} removed")
    return 0


def cmd_invite(args: argparse.Namespace, settings: Settings) -> int:
    """Create an invite from the command line (as the first admin, or nobody)."""
    from bot.domain.roles import Role, parse_role
    from bot.services.people import create_invite
    from db.models import Person
    from db.types import utcnow

    async def go() -> str:
        async with _core(settings) as core, core.uow() as uow:
            # The CLI is run by whoever runs the server: it acts with admin rights.
            operator = Person(id=0, role="admin", first_name="cli")
            invite, _unit = await create_invite(
                uow, operator, parse_role(args.role) or Role.RESIDENT, args.unit, args.uses,
                timedelta(hours=settings.invite_ttl_hours), utcnow(),
            )
            await uow.commit()
            return invite.code

    code = asyncio.run(go())
    print(f"https://t.me/{args.bot_username}?start={code}" if args.bot_username else code)
    return 0


def cmd_bulletin(args: argparse.Namespace, settings: Settings) -> int:
    """Render a group's weekly bulletin offline, exactly as the scheduler would send it."""
    from bot.domain.schedule import ScheduleConfigError, load_schedule

    try:
        schedule = load_schedule(Path(args.schedule) if args.schedule else settings.schedule_file)
    except ScheduleConfigError as exc:
        print(f"schedule: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print("schedule OK")
        return 0
    if not args.week or args.group is None or not args.out:
        print("--week, --group and --out are required", file=sys.stderr)
        return 2
    from bot.domain.periods import week_monday

    try:
        week_monday(args.week)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2

    async def go() -> tuple[bytes, str] | None:
        from bot.media.bulletin import render_png
        from bot.media.jobs import run_image_job
        from bot.render.bulletin import caption
        from bot.services.bulletins import build_bulletins

        async with _core(settings) as core, core.uow.read() as uow:
            found = await build_bulletins(uow, schedule, settings.tz,
                                          args.lang or settings.default_language,
                                          args.week, chat_ids=[args.group],
                                          assessment=core.assessment)
        if not found:
            return None
        png = await run_image_job(render_png, found[0].view, settings.cjk_font)
        return png, caption(found[0].view)

    result = asyncio.run(go())
    if result is None:
        print(f"no group {args.group} is bound (see `wenming import`, or /bind in the group; "
              "the sandbox's demo city is in its own database: "
              "DATABASE_URL=sqlite+aiosqlite:///var/sandbox/sandbox.db)", file=sys.stderr)
        return 1
    png, text = result
    Path(args.out).write_bytes(png)
    print(text)
    print(f"wrote {args.out} ({len(png)} bytes)", file=sys.stderr)
    return 0


def cmd_assessment(args: argparse.Namespace, settings: Settings) -> int:
    """`wenming assessment import FILE`: the external tests' scores (all or nothing);
    `wenming assessment show [--year Y]`: the annual assessment table."""
    from bot.render.assessment import annual_table, import_answer, plain
    from bot.services.assessment import annual_assessment, import_scores
    from db.types import utcnow

    lang = args.lang or settings.default_language

    async def go() -> tuple[int, str]:
        async with _core(settings) as core:
            assert core.assessment is not None
            if args.assessment_command == "show":
                year = args.year or utcnow().astimezone(settings.tz).year
                async with core.uow.read() as uow:
                    block = await annual_assessment(uow, core.assessment.config, year,
                                                    settings.tz, lang)
                return 0, annual_table(lang, year, block)
            path = Path(args.file)
            try:
                data = path.read_bytes()
            except OSError as exc:
                return 1, f"{path}: {exc.strerror}"
            async with core.uow() as uow:
                outcome = await import_scores(uow, data, path.name, core.assessment.config,
                                              utcnow())
                if not outcome.problems:
                    await uow.commit()
            return (1 if outcome.problems else 0,
                    import_answer(lang, outcome.imported, outcome.periods, outcome.problems,
                                  outcome.replaced))

    code, text = asyncio.run(go())
    print(plain(text), file=sys.stderr if code else sys.stdout)
    return code


def cmd_draw(args: argparse.Namespace, settings: Settings) -> int:
    """Re-run a day's spot-check draw from its stored seed and candidates, and print it.

    An operator's command, run on the server: before the day's seed is revealed it shows the
    unannounced list, which only the inspectors who must go may see. It says so, and prints
    nothing to share until then. With --seed (a revealed seed, given by hand) anyone holding
    the stored candidates can check the draw."""
    import datetime as dt

    if args.check_config:
        ok = _check_draws(settings)
        print(f"{settings.draws_file}: OK" if ok else "", end="\n" if ok else "")
        return 0 if ok else 2
    if not args.date:
        print("--date is required (or --check-config)", file=sys.stderr)
        return 2
    try:
        day = dt.date.fromisoformat(args.date)
    except ValueError:
        print(f"--date must be a date like 2026-12-07, got {args.date!r}", file=sys.stderr)
        return 2
    seed: bytes | None = None
    if args.seed is not None:
        try:
            seed = bytes.fromhex(args.seed.strip())
        except ValueError:
            print("--seed must be the revealed seed in hex", file=sys.stderr)
            return 2

    async def go() -> object:
        from bot.services.draws import rerun

        async with _core(settings) as core, core.uow.read() as uow:
            return await rerun(uow, day, settings.tz, seed)

    from bot.domain.draw import stratum_label
    from bot.services.draws import Rerun

    found = asyncio.run(go())
    if not isinstance(found, Rerun):
        print(f"no draw was made for {day.isoformat()}", file=sys.stderr)
        return 1
    if not found.revealed:
        print(f"NOT YET REVEALED: the draw for {day.isoformat()} is unannounced; it is for "
              "the operator and the inspectors who must go only. Do not share it before the "
              "seed is revealed.", file=sys.stderr)
    print(f"draw {day.isoformat()}: seed {'matches' if found.seed_ok else 'DOES NOT MATCH'} "
          "the hash stored for the day")
    if found.announced_before and found.announced_at is not None:
        told = found.announced_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
        print(f"that hash was announced before the day ({told} {settings.timezone})")
    else:
        print("that hash was NOT announced before the day (the bot was not running, or the "
              "clock skipped the announcement): the draw cannot be proven to have been fixed "
              "in advance")
    for d in found.drawn:
        task = f" (re-check of task #{d.task_id})" if d.task_id is not None else ""
        print(f"{d.kind:8} {stratum_label(d.stratum):40} {d.site_code:24} weight "
              f"{d.weight:g}{task}")
    print(f"{len(found.drawn)} site(s); the stored draw "
          f"{'is the same' if found.matches else 'DIFFERS'}")
    return 0 if found.seed_ok and found.matches else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wenming", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (long polling) against the configured Bot API")
    sb = sub.add_parser("sandbox", help="run the bot against a local Bot API sandbox + web chat")
    sb.add_argument("--host", default="127.0.0.1")
    sb.add_argument("--port", type=int, default=8081, help="preferred port (next free if taken)")
    sb.add_argument("--data-dir", default="var/sandbox")
    sb.add_argument("--fresh", action="store_true", help="start from an empty sandbox database")
    db = sub.add_parser("db", help="database maintenance")
    dbs = db.add_subparsers(dest="db_command", required=True)
    up = dbs.add_parser("upgrade", help="apply migrations")
    up.add_argument("revision", nargs="?", default="head")
    bk = dbs.add_parser("backup", help="copy the SQLite database while the bot runs")
    bk.add_argument("file", help="the new file to write")
    st = sub.add_parser("standards", help="standards (checklists)")
    sts = st.add_subparsers(dest="standards_command", required=True)
    chk = sts.add_parser("check", help="validate standard YAML files")
    chk.add_argument("files", nargs="*")
    imp = sub.add_parser("import", help="import units, sites, people and groups from YAML")
    imp.add_argument("file")
    pl = sub.add_parser("plans", help="supervision plans (plans.yaml)")
    pls = pl.add_subparsers(dest="plans_command", required=True)
    for name, what in (("check", "validate a plans file offline"),
                       ("import", "replace the database's plans with a file's")):
        pls.add_parser(name, help=what).add_argument(
            "file", nargs="?", help="default: the configured plans.yaml")
    inv = sub.add_parser("invite", help="create an invite code")
    inv.add_argument("role", choices=["inspector", "unit_member", "admin"])
    inv.add_argument("--unit", help="unit code or name (for unit_member)")
    inv.add_argument("--uses", type=int, default=1)
    inv.add_argument("--bot-username", help="print a t.me deep link for this bot")
    bul = sub.add_parser("bulletin", help="render a group's weekly bulletin to a PNG (offline)")
    bul.add_argument("--week", help="ISO week, e.g. 2026-W48")
    bul.add_argument("--group", type=int, help="the bound group's chat id, e.g. -1001001")
    bul.add_argument("--out", help="where to write the PNG")
    bul.add_argument("--lang", choices=["zh-hans", "en"], help="default: the bot's language")
    bul.add_argument("--schedule", help="schedule file (default: the configured one)")
    bul.add_argument("--check-config", action="store_true",
                     help="only validate the schedule file")
    asm = sub.add_parser("assessment", help="the assessment: external test scores, annual table")
    asms = asm.add_subparsers(dest="assessment_command", required=True)
    aimp = asms.add_parser("import", help="import 国测/省测/市测 scores from an .xlsx or .csv "
                                          "(columns: unit, level, period, score)")
    aimp.add_argument("file")
    ashow = asms.add_parser("show", help="print the annual assessment table")
    ashow.add_argument("--year", type=int)
    for p in (aimp, ashow):
        p.add_argument("--lang", choices=["zh-hans", "en"], help="default: the bot's language")
    drw = sub.add_parser("draw", help="re-run a day's random spot-check draw (operators)")
    drw.add_argument("--date", help="the local day, e.g. 2026-12-07")
    drw.add_argument("--seed", help="a revealed seed (hex) to re-run from, instead of the "
                                    "stored one")
    drw.add_argument("--check-config", action="store_true", help="only validate draws.yaml")
    return parser


COMMANDS = {"run": cmd_run, "sandbox": cmd_sandbox, "db": cmd_db, "standards": cmd_standards,
            "import": cmd_import, "invite": cmd_invite, "bulletin": cmd_bulletin,
            "assessment": cmd_assessment, "plans": cmd_plans, "draw": cmd_draw}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings, args.verbose)
    return COMMANDS[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
