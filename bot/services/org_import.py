"""Apply an organisation file to the database: idempotent, additive, in one transaction.

Units and sites are matched on their codes, group bindings on chat ids, people on Telegram ids,
so importing the same file twice changes nothing. Nothing the file no longer lists is deleted:
tasks, inspections and bindings made in chat point at those rows, and a file that forgot a unit
must not take its history with it. The summary says how many such rows remain instead.

The one exception is a pending assignment (a role waiting for someone who has not met the bot
yet): it holds nothing but the file's word, and a file that no longer names the person has
withdrawn it. Kept, it would grant a role the office took back on that person's first contact,
and the digest would go on naming them as an inspector who has not started. (A file that lists
no people at all withdraws nothing: it is read as a file about units and sites.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.domain.org import OrgFile
from db.models import GroupBinding, PendingAssignment, Person, Site, Unit
from db.types import utcnow
from db.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, *, created: bool, changed: bool) -> None:
        if created:
            self.created += 1
        elif changed:
            self.updated += 1
        else:
            self.unchanged += 1

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


@dataclass
class ImportSummary:
    """What an import did, per kind of row, and what the database holds beyond the file."""

    source: str
    units: Counts = field(default_factory=Counts)
    sites: Counts = field(default_factory=Counts)
    people: Counts = field(default_factory=Counts)  # people who have already met the bot
    pending: Counts = field(default_factory=Counts)  # applied when they first message it
    groups: Counts = field(default_factory=Counts)
    units_not_in_file: int = 0
    sites_not_in_file: int = 0
    groups_not_in_file: int = 0  # active bindings only; admins also bind groups in chat
    pending_withdrawn: int = 0  # pending assignments of people the file no longer names

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated for c in self._kinds()) or self.pending_withdrawn > 0

    def _kinds(self) -> tuple[Counts, ...]:
        return (self.units, self.sites, self.people, self.pending, self.groups)

    def lines(self) -> list[str]:
        """A readable report, zh-Hans then English on each line (the CLI prints it)."""
        rows = (
            ("单位", "Units", self.units),
            ("点位", "Sites", self.sites),
            ("人员（已使用机器人）", "People already using the bot", self.people),
            ("待生效分配（首次使用时生效）", "Pending, applied on first contact", self.pending),
            ("群组绑定", "Group bindings", self.groups),
        )
        out = [f"组织导入 Organisation import: {self.source}"]
        for zh, en, c in rows:
            out.append(
                f"{zh} {en}: 新建 created {c.created} · 更新 updated {c.updated}"
                f" · 未变 unchanged {c.unchanged}"
            )
        if self.pending_withdrawn:
            n = self.pending_withdrawn
            en = ("1 pending assignment was" if n == 1 else f"{n} pending assignments were")
            out.append(f"已撤销 {n} 项待生效分配（此文件不再列出其人员）。 "
                       f"{en} withdrawn (this file no longer names the person).")
        if not self.changed:
            out.append("无变化。 Nothing changed.")
        leftovers = (
            (self.units_not_in_file, "个单位", "unit", "units"),
            (self.sites_not_in_file, "个点位", "site", "sites"),
            (self.groups_not_in_file, "个有效群组绑定", "active group binding",
             "active group bindings"),
        )
        for n, zh, en_one, en_many in leftovers:
            if n:
                en = f"{n} {en_one} in the database is" if n == 1 else (
                    f"{n} {en_many} in the database are")
                out.append(f"数据库中有 {n} {zh}不在此文件中（未删除）。 "
                           f"{en} not in this file (nothing was deleted).")
        return out


async def import_org(uows: Callable[[], UnitOfWork], org: OrgFile) -> ImportSummary:
    """Upsert the file's units, sites, group bindings and people in one transaction."""
    summary = ImportSummary(source=org.source)
    async with uows() as uow:
        units = await _import_units(uow, org, summary)
        sites = await _import_sites(uow, org, units, summary)
        await _import_groups(uow, org, units, summary)
        await _import_people(uow, org, units, sites, summary)
        await uow.commit(mark_update_handled=False)
    return summary


async def apply_pending(uow: UnitOfWork, person: Person) -> bool:
    """Give a person the role, unit and sites an import left for them; True if there were any.

    For the gatekeeper, inside its own transaction, right after it creates the Person row.
    """
    repo = uow.org
    pending = await repo.pending_of(person.id)
    if pending is None:
        return False
    # The person may have been added to the session a moment ago; their row must exist
    # before assignment rows reference it.
    await uow.flush()
    person.role = pending.role
    person.unit_id = pending.unit_id
    codes = list(pending.site_codes)
    found = await repo.site_ids(codes)
    missing = [c for c in codes if c not in found]
    if missing:
        # Sites are never deleted by an import, so this means someone edited codes by hand.
        log.warning("pending assignment for %s names unknown sites %s", person.id, missing)
    current = (await repo.assignments([person.id])).get(person.id, [])
    await repo.replace_assignments(person.id, current, set(found.values()))
    await repo.remove(pending)
    return True


# --- the parts of an import ---------------------------------------------------------------------


def _assign(obj: object, **values: object) -> bool:
    """Set the attributes that differ; True if any did (so unchanged rows stay untouched)."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


async def _import_units(uow: UnitOfWork, org: OrgFile, summary: ImportSummary
                        ) -> dict[str, Unit]:
    by_code = await uow.org.units_by_code()
    in_file = {spec.code for spec in org.units}
    summary.units_not_in_file = sum(1 for code in by_code if code not in in_file)

    # Pass 1 creates and renames without parents: a parent may come later in the file, and a
    # new unit has no id until it is flushed.
    created: set[str] = set()
    changed: set[str] = set()
    for spec in org.units:
        unit = by_code.get(spec.code)
        if unit is None:
            unit = Unit(code=spec.code, name_zh=spec.name_zh, name_en=spec.name_en,
                        kind=spec.kind, parent_id=None)
            uow.org.add(unit)
            by_code[spec.code] = unit
            created.add(spec.code)
        elif _assign(unit, name_zh=spec.name_zh, name_en=spec.name_en, kind=spec.kind):
            changed.add(spec.code)
    await uow.flush()

    # Pass 2 links parents. The parser guarantees every parent is in the file and there is no
    # cycle among the file's units; rows outside the file may point into it but never the
    # other way, so no cycle can form with them either.
    for spec in org.units:
        parent_id = by_code[spec.parent].id if spec.parent is not None else None
        if _assign(by_code[spec.code], parent_id=parent_id):
            changed.add(spec.code)
    for spec in org.units:
        summary.units.add(created=spec.code in created, changed=spec.code in changed)
    return by_code


async def _import_sites(
    uow: UnitOfWork, org: OrgFile, units: dict[str, Unit], summary: ImportSummary
) -> dict[str, Site]:
    by_code = await uow.org.sites_by_code()
    in_file = {spec.code for spec in org.sites}
    summary.sites_not_in_file = sum(1 for code in by_code if code not in in_file)
    for spec in org.sites:
        values: dict[str, object] = dict(
            name=spec.name, name_en=spec.name_en, site_type=spec.site_type, address=spec.address,
            latitude=spec.latitude, longitude=spec.longitude, unit_id=units[spec.unit].id,
        )
        site = by_code.get(spec.code)
        if site is None:
            site = Site(code=spec.code, **values)
            uow.org.add(site)
            by_code[spec.code] = site
            summary.sites.add(created=True, changed=True)
        else:
            summary.sites.add(created=False, changed=_assign(site, **values))
    await uow.flush()  # assignments below need the new sites' ids
    return by_code


async def _import_groups(
    uow: UnitOfWork, org: OrgFile, units: dict[str, Unit], summary: ImportSummary
) -> None:
    existing = await uow.org.groups_by_chat()
    in_file = {spec.chat_id for spec in org.groups}
    summary.groups_not_in_file = sum(
        1 for chat_id, g in existing.items() if g.active and chat_id not in in_file
    )
    now = utcnow()
    for spec in org.groups:
        unit_id = units[spec.unit].id
        binding = existing.get(spec.chat_id)
        if binding is None:
            uow.org.add(GroupBinding(chat_id=spec.chat_id, unit_id=unit_id, title=spec.title,
                               active=True, bound_by=None, bound_at=now))
            summary.groups.add(created=True, changed=True)
            continue
        rebound = _assign(binding, unit_id=unit_id, active=True)
        # A title left out of the file keeps the one the chat reported when it was bound.
        retitled = bool(spec.title) and _assign(binding, title=spec.title)
        if rebound:
            # bound_by None marks a binding made by the file rather than by an admin in chat.
            binding.bound_by = None
            binding.bound_at = now
        summary.groups.add(created=False, changed=rebound or retitled)


async def _import_people(
    uow: UnitOfWork, org: OrgFile, units: dict[str, Unit], sites: dict[str, Site],
    summary: ImportSummary,
) -> None:
    repo = uow.org
    ids = [spec.telegram_id for spec in org.people]
    people = await repo.people(ids)
    pending = await repo.pending(ids)
    assignments = await repo.assignments(list(people))

    for spec in org.people:
        unit_id = units[spec.unit].id if spec.unit is not None else None
        person = people.get(spec.telegram_id)
        if person is not None:
            changed = _assign(person, role=spec.role, unit_id=unit_id)
            wanted = {sites[code].id for code in spec.sites}
            current = assignments.get(person.id, [])
            changed = await repo.replace_assignments(person.id, current, wanted) or changed
            stale = pending.get(spec.telegram_id)
            if stale is not None:
                # Applied directly now; left behind it would undo a later edit on first contact.
                await repo.remove(stale)
            summary.people.add(created=False, changed=changed)
            continue
        row = pending.get(spec.telegram_id)
        codes = list(spec.sites)
        if row is None:
            repo.add(PendingAssignment(telegram_id=spec.telegram_id, role=spec.role,
                                       unit_id=unit_id, site_codes=codes, name=spec.name))
            summary.pending.add(created=True, changed=True)
        else:
            changed = _assign(row, role=spec.role, unit_id=unit_id, name=spec.name)
            if list(row.site_codes) != codes:
                # A fresh list, not an in-place edit: plain JSON columns do not track mutation.
                row.site_codes = codes
                changed = True
            summary.pending.add(created=False, changed=changed)
    if ids:  # a file with no people at all is about units and sites; it leaves them alone
        summary.pending_withdrawn = await repo.withdraw_pending_except(ids)

