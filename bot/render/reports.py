"""What residents and units see of a report: texts and button rows (HTML, catalogue-only).

Callback data is bot.render.callbacks' (rp:... on the resident's side, rg:... on the group's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.domain import reports as dom
from bot.domain.privacy import mask_personal
from bot.domain.reports import Category, ReportingConfig
from bot.render.buttons import Rows, Screen
from bot.render.buttons import rows as _kb
from bot.render.callbacks import GroupPress
from bot.render.callbacks import ReportPress as Press
from bot.render.callbacks import group as rg
from bot.render.callbacks import resident as rp
from bot.render.fit import fit
from bot.render.i18n import Html, h, t
from bot.render.shapes import ReportLike, SiteLike, UnitLike

MAX_SITES = 10

# The place buttons, as the report service names them.
PLACE_CHOICES: Mapping[Press, dom.PlaceChoice] = {
    Press.SITE: dom.PlaceChoice.SITE, Press.TYPED: dom.PlaceChoice.TYPED,
    Press.CHANGE_PLACE: dom.PlaceChoice.CHANGE,
}


@dataclass(frozen=True)
class Candidate:
    """An open report the draft may be the same as."""

    report_id: int
    ticket: str
    category: str | None
    followers: int
    own: bool


# What the screens read of the report service's results (bot.services.reports.results):
# Protocols, because those results carry the ORM rows (Report, Site) the service works on.
class DraftShown(Protocol):
    @property
    def report(self) -> ReportLike: ...
    @property
    def photos(self) -> int: ...
    @property
    def category(self) -> Category | None: ...
    @property
    def site(self) -> SiteLike | None: ...
    @property
    def candidates(self) -> Sequence[Candidate]: ...
    @property
    def sites(self) -> Sequence[SiteLike]: ...
    @property
    def near(self) -> SiteLike | None: ...
    @property
    def outside(self) -> bool: ...


class FollowedShown(Protocol):
    @property
    def target(self) -> ReportLike: ...
    @property
    def followers(self) -> int: ...
    @property
    def own(self) -> bool: ...


class ReportLineShown(Protocol):
    @property
    def report(self) -> ReportLike: ...
    @property
    def following(self) -> bool: ...


def cat_name(lang: str, cat: Category | None, code: str | None = None) -> str:
    if cat is not None:
        return cat.name(lang)
    return t(lang, "reports.category_other") if code is None else code


def fmt_time(when: datetime | None, tz: ZoneInfo) -> str:
    return "—" if when is None else when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def place_text(lang: str, report: ReportLike, site: SiteLike | None,
               near: SiteLike | None = None, *, for_group: bool = False) -> Html:
    """Where it is: the site, the typed address, and a map link when there is a point.

    A shared location that is no picked site is named by `near`, the site or area routing
    found there ("后祁街社区附近 · 地图"); only without one are its coordinates shown. For a
    group, phone and ID numbers typed into the address are masked."""
    parts: list[str] = []
    named = False
    if site is not None:
        parts.append(h(site.name))
        if site.address:
            parts.append(h(site.address))
        named = True
    elif report.address:
        parts.append(h(mask_personal(report.address) if for_group else report.address))
        named = True
    elif near is not None:
        parts.append(t(lang, "reports.near_site", site=near.name))
        named = True
    if report.latitude is not None and report.longitude is not None:
        link = dom.map_link(report.latitude, report.longitude)
        if named:
            parts.append(t(lang, "reports.map_link_short", url=Html(h(link))))
        else:
            parts.append(t(lang, "reports.map_link", url=Html(h(link)),
                           lat=f"{report.latitude:.5f}", lon=f"{report.longitude:.5f}"))
    return Html(" · ".join(parts) if parts else t(lang, "reports.no_place"))


# Literal keys, so the catalogue check sees every one of them.
STATUS_KEYS = {
    dom.DRAFT: "reports.status.draft", dom.SUBMITTED: "reports.status.submitted",
    dom.ACCEPTED: "reports.status.accepted", dom.FIXED: "reports.status.fixed",
    dom.REJECTED: "reports.status.rejected", dom.DUPLICATE: "reports.status.duplicate",
    dom.CONFIRMED: "reports.status.confirmed", dom.CLOSED: "reports.status.closed",
    dom.CANCELLED: "reports.status.cancelled",
}
REJECT_KEYS = {
    "unclear": "reports.reject.unclear", "not_a_problem": "reports.reject.not_a_problem",
    "already_fixed": "reports.reject.already_fixed", "not_public": "reports.reject.not_public",
    "outside": "reports.reject.outside",
}


# How a report was decided, for "already decided by …" (later states follow an acceptance).
DECISION_KEYS = {
    dom.ACCEPTED: "reports.decision.accepted", dom.FIXED: "reports.decision.accepted",
    dom.CONFIRMED: "reports.decision.accepted", dom.CLOSED: "reports.decision.accepted",
    dom.REJECTED: "reports.decision.rejected", dom.DUPLICATE: "reports.decision.duplicate",
}
def status_label(lang: str, status: str) -> str:
    return t(lang, STATUS_KEYS.get(status, "reports.status.submitted"))


def reject_reason(lang: str, code: str | None) -> str:
    return t(lang, REJECT_KEYS.get(code or "", "reports.reject.unclear"))


# ---- the resident's draft ---------------------------------------------------------------------


def ask_photos(lang: str, config: ReportingConfig) -> str:
    return t(lang, "reports.ask_photos", max=config.max_photos)


def photos_screen(lang: str, view: DraftShown, config: ReportingConfig) -> Screen:
    """After photos: how many, and the categories to choose from."""
    report = view.report
    buttons = [(c.name(lang), rp(report.id, Press.CATEGORY, c.code)) for c in config.categories]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    more = (t(lang, "reports.more_photos", max=config.max_photos)
            if view.photos < config.max_photos else t(lang, "reports.photos_full"))
    text = t(lang, "reports.photos_received", count=view.photos, max=config.max_photos)
    return f"{text}\n{more}\n\n{t(lang, 'reports.choose_category')}", _kb(
        *rows, [(t(lang, "reports.button.cancel"), rp(report.id, Press.CANCEL))])


def photos_done_text(lang: str, view: DraftShown) -> str:
    """The photos message once a category is chosen (its buttons are gone)."""
    return t(lang, "reports.photos_and_category", count=view.photos,
             category=cat_name(lang, view.category, view.report.category))


def place_screen(lang: str, view: DraftShown) -> Screen:
    report = view.report
    cat = view.category
    head = t(lang, "reports.category_chosen", category=cat_name(lang, cat, report.category))
    ask = f"{t(lang, 'reports.ask_place')}\n{t(lang, 'reports.address_forwarded')}"
    return f"{head}\n\n{ask}", _kb(
        [(t(lang, "reports.button.known_sites"), rp(report.id, Press.SITES))],
        [(t(lang, "reports.button.cancel"), rp(report.id, Press.CANCEL))])


def site_list_screen(lang: str, report: ReportLike, sites: Sequence[SiteLike],
                     typed: bool) -> Screen:
    """Known sites to pick from (matching a typed address, or the first of the list)."""
    rows: list[list[tuple[str, str]]] = [[(s.name, rp(report.id, Press.SITE, s.id))]
                                         for s in sites[:MAX_SITES]]
    if typed and report.address:
        text = t(lang, "reports.sites_matching", address=report.address)
        rows.append([(t(lang, "reports.button.use_typed", address=report.address[:30]),
                      rp(report.id, Press.TYPED))])
    else:
        text = t(lang, "reports.sites_list")
    rows.append([(t(lang, "reports.button.cancel"), rp(report.id, Press.CANCEL))])
    return text, _kb(*rows)


def _outside_warning(lang: str, view: DraftShown, config: ReportingConfig | None) -> list[str]:
    if not view.outside:
        return []
    km = (config.outside_radius_m if config is not None else 15000.0) / 1000
    return [t(lang, "reports.outside_city", km=f"{km:g}")]


def description_screen(lang: str, view: DraftShown,
                       config: ReportingConfig | None = None) -> Screen:
    """Ask for the description: it is forwarded verbatim to the unit (no personal details).
    A location far from every known site is questioned first, with a way to change it."""
    report = view.report
    head = t(lang, "reports.place_set", place=place_text(lang, report, view.site, view.near))
    parts = [head, *_outside_warning(lang, view, config),
             t(lang, "reports.ask_description", max=dom.MAX_DESCRIPTION)]
    rows: list[list[tuple[str, str]]] = [
        [(t(lang, "reports.button.skip"), rp(report.id, Press.SKIP))]]
    if view.outside:
        rows.append([(t(lang, "reports.button.change_place"), rp(report.id, Press.CHANGE_PLACE))])
    rows.append([(t(lang, "reports.button.cancel"), rp(report.id, Press.CANCEL))])
    return "\n\n".join(parts), _kb(*rows)


def confirm_screen(lang: str, view: DraftShown, config: ReportingConfig | None = None) -> Screen:
    """The summary before submitting, with earlier reports that look like the same problem."""
    report = view.report
    lines = [
        t(lang, "reports.confirm_title"),
        t(lang, "reports.line.photos", count=view.photos),
        t(lang, "reports.line.category", category=cat_name(lang, view.category,
                                                           report.category)),
        t(lang, "reports.line.place", place=place_text(lang, report, view.site, view.near)),
        t(lang, "reports.line.description",
          description=report.description or t(lang, "reports.no_description")),
    ]
    if report.description:
        lines.append(t(lang, "reports.description_forwarded"))
    warning = _outside_warning(lang, view, config)
    if warning:
        lines += ["", *warning]
    rows: list[list[tuple[str, str]]] = []
    if view.candidates:
        lines.append("")
        lines.append(t(lang, "reports.maybe_same", count=len(view.candidates)))
        for c in view.candidates:
            lines.append(t(lang, "reports.candidate", ticket=c.ticket, followers=c.followers))
            rows.append([(t(lang, "reports.button.same_as", ticket=c.ticket),
                          rp(report.id, Press.FOLLOW, c.report_id))])
        rows.append([(t(lang, "reports.button.submit_new"), rp(report.id, Press.SUBMIT))])
    else:
        lines.append("")
        lines.append(t(lang, "reports.confirm_hint"))
        rows.append([(t(lang, "reports.button.submit"), rp(report.id, Press.SUBMIT))])
    rows.append([(t(lang, "reports.button.change_place"), rp(report.id, Press.CHANGE_PLACE)),
                 (t(lang, "reports.button.cancel"), rp(report.id, Press.CANCEL))])
    return fit("\n".join(lines)), _kb(*rows)


def draft_screen(lang: str, view: DraftShown, config: ReportingConfig) -> Screen:
    """The screen for whatever step the draft is at (after /report, or a restart)."""
    step = view.report.step
    if view.photos == 0:
        return ask_photos(lang, config), _kb(
            [(t(lang, "reports.button.cancel"), rp(view.report.id, Press.CANCEL))])
    if step == dom.STEP_PHOTOS:
        return photos_screen(lang, view, config)
    if step == dom.STEP_PLACE:
        return place_screen(lang, view)
    if step == dom.STEP_PLACE_PICK:
        return site_list_screen(lang, view.report, view.sites, typed=True)
    if step == dom.STEP_DESCRIPTION:
        return description_screen(lang, view, config)
    return confirm_screen(lang, view, config)


def album_screen(lang: str, view: DraftShown, config: ReportingConfig, dropped: int) -> Screen:
    """The one answer to an album: the draft, after a word on the photos it had no room for."""
    text, markup = draft_screen(lang, view, config)
    if dropped:
        note = t(lang, "reports.album_too_many", max=config.max_photos, count=dropped)
        text = f"{note}\n\n{text}"
    return text, markup


def submitted_text(lang: str, report: ReportLike, unit: UnitLike) -> str:
    return t(lang, "reports.submitted", ticket=report.ticket or "",
             unit=unit.name_en if lang == "en" and unit.name_en else unit.name_zh)


def followed_text(lang: str, followed: FollowedShown) -> str:
    key = "reports.followed_own" if followed.own else "reports.followed"
    return t(lang, key, ticket=followed.target.ticket or "", count=followed.followers)


def my_reports_text(lang: str, lines: Sequence[ReportLineShown], config: ReportingConfig,
                    tz: ZoneInfo, now: datetime | None = None) -> str:
    """The resident's reports; a closed own one they may still dispute says until when."""
    if not lines:
        return t(lang, "reports.mine_empty")
    out = [t(lang, "reports.mine_title")]
    for line in lines:
        r = line.report
        status = status_label(lang, r.status)
        if (not line.following and r.status == dom.CLOSED and r.confirm_until is not None
                and now is not None and now <= r.confirm_until):
            status = t(lang, "reports.status.closed_disputable",
                       until=fmt_time(r.confirm_until, tz))
        out.append(t(lang, "reports.mine_line_following" if line.following
                     else "reports.mine_line",
                     ticket=r.ticket or "", category=cat_name(lang, config.category(r.category),
                                                              r.category),
                     status=status, date=fmt_time(r.submitted_at, tz)))
    return "\n".join(out)


# ---- the unit's group -------------------------------------------------------------------------


def photo_caption(lang: str, report: ReportLike, cat: Category | None, count: int) -> str:
    return t(lang, "reports.group.photo_caption", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category), count=count)


def group_card(
    lang: str, report: ReportLike, cat: Category | None, site: SiteLike | None, unit: UnitLike,
    resident: int, followers: int, photos: int, *, near: SiteLike | None = None,
) -> Screen:
    """The report as the unit's group sees it: never who the resident is, and no phone or
    ID number the resident typed (masked)."""
    lines = [
        t(lang, "reports.group.title", ticket=report.ticket or ""),
        t(lang, "reports.line.category", category=cat_name(lang, cat, report.category)),
        t(lang, "reports.line.place", place=place_text(lang, report, site, near,
                                                      for_group=True)),
        t(lang, "reports.line.description",
          description=mask_personal(report.description or "")
          or t(lang, "reports.no_description")),
        t(lang, "reports.line.photos", count=photos),
        t(lang, "reports.group.unit", unit=unit.name_zh),
        t(lang, "reports.group.reporter", number=resident),
    ]
    if followers:
        lines.append(t(lang, "reports.group.followers", count=followers))
    if cat is not None:
        lines.append(t(lang, "reports.group.deadline_days", days=cat.deadline_days))
    return fit("\n".join(lines)), group_keyboard(lang, report.id)


def group_keyboard(lang: str, report_id: int) -> Rows:
    return _kb(
        [(t(lang, "reports.button.accept"), rg(report_id, GroupPress.ACCEPT)),
         (t(lang, "reports.button.reject"), rg(report_id, GroupPress.REJECT))],
        [(t(lang, "reports.button.duplicate"), rg(report_id, GroupPress.DUPLICATE)),
         (t(lang, "reports.button.reroute"), rg(report_id, GroupPress.REROUTE))],
    )


def reject_keyboard(lang: str, report_id: int) -> Rows:
    rows = [[(reject_reason(lang, code), rg(report_id, GroupPress.REASON, code))]
            for code in dom.REJECT_REASONS]
    return _kb(*rows, [(t(lang, "reports.button.back"), rg(report_id, GroupPress.BACK))])


def duplicate_keyboard(lang: str, report_id: int,
                       candidates: Sequence[Candidate]) -> Rows:
    rows = [[(t(lang, "reports.button.duplicate_of", ticket=c.ticket),
              rg(report_id, GroupPress.DUPLICATE_OF, c.report_id))] for c in candidates]
    return _kb(*rows, [(t(lang, "reports.button.back"), rg(report_id, GroupPress.BACK))])


def reroute_keyboard(lang: str, report_id: int, units: Sequence[UnitLike]) -> Rows:
    names = [(u.name_en if lang == "en" and u.name_en else u.name_zh, u.id) for u in units[:20]]
    rows = [[(name, rg(report_id, GroupPress.TO_UNIT, uid))] for name, uid in names]
    return _kb(*rows, [(t(lang, "reports.button.back"), rg(report_id, GroupPress.BACK))])


def decided_text(card: str, lang: str, key: str, **values: object) -> str:
    """The card as it was, with the decision below it (the buttons are gone)."""
    return fit(f"{card}\n\n{t(lang, key, **values)}")


def group_follow_notice(lang: str, report: ReportLike, cat: Category | None, count: int) -> str:
    return t(lang, "reports.group.follow_notice", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category), count=count)


def group_confirmed(lang: str, report: ReportLike) -> str:
    return t(lang, "reports.group.confirmed", ticket=report.ticket or "")


def group_disputed(lang: str, report: ReportLike, reason: str | None = None) -> str:
    """"Still there", with the reporter's reason (phone and ID numbers masked)."""
    text = t(lang, "reports.group.disputed", ticket=report.ticket or "")
    if reason:
        text += "\n" + t(lang, "reports.group.dispute_reason", reason=mask_personal(reason))
    return text


def ask_dispute_screen(lang: str, report: ReportLike) -> Screen:
    """👎 pressed: what is still wrong? (typed next), or send it back without a reason."""
    return t(lang, "reports.ask_dispute_reason", ticket=report.ticket or ""), _kb(
        [(t(lang, "reports.button.dispute_now"), rp(report.id, Press.FIX_STILL, "now"))],
        [(t(lang, "reports.button.fixed_ok"), rp(report.id, Press.FIX_OK))])


# ---- pushed to the reporter and followers -----------------------------------------------------


def push_accepted(lang: str, report: ReportLike, cat: Category | None, due: datetime,
                  tz: ZoneInfo) -> str:
    return t(lang, "reports.push.accepted", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category), due=fmt_time(due, tz))


def push_rejected(lang: str, report: ReportLike, cat: Category | None) -> str:
    return t(lang, "reports.push.rejected", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category),
             reason=reject_reason(lang, report.reason))


def push_duplicate(lang: str, report: ReportLike, original: ReportLike) -> str:
    return t(lang, "reports.push.duplicate", ticket=report.ticket or "",
             original=original.ticket or "")


def push_fixed(lang: str, report: ReportLike, cat: Category | None,
               note: str | None = None) -> str:
    """The unit says it is fixed, with its note when there is one; the check comes next (the
    reporter is asked only once it passed)."""
    text = t(lang, "reports.push.fixed", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category))
    if note and note.strip():
        text += "\n" + t(lang, "reports.push.fix_note", note=note.strip()[:500])
    return text


def push_verified(lang: str, report: ReportLike, cat: Category | None, until: datetime | None,
                  tz: ZoneInfo) -> str:
    """The fix passed its check and the task is closed (the after-photos come before): is it
    solved? "Still there" is possible until `until`."""
    return t(lang, "reports.push.verified", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category), until=fmt_time(until, tz))


def push_verified_follower(lang: str, report: ReportLike, cat: Category | None) -> str:
    """The same news for someone who said "me too": they have no 👍/👎 to press."""
    return t(lang, "reports.push.verified_follower", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category))


def push_closed(lang: str, report: ReportLike, cat: Category | None) -> str:
    return t(lang, "reports.push.closed", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category))


def push_reopened(lang: str, report: ReportLike, cat: Category | None) -> str:
    return t(lang, "reports.push.reopened", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category))


def push_deadline(lang: str, report: ReportLike, cat: Category | None, due: datetime,
                  tz: ZoneInfo) -> str:
    return t(lang, "reports.push.deadline", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category), due=fmt_time(due, tz))


def push_in_progress(lang: str, report: ReportLike, cat: Category | None) -> str:
    return t(lang, "reports.push.in_progress", ticket=report.ticket or "",
             category=cat_name(lang, cat, report.category))


def confirm_keyboard(lang: str, report: ReportLike) -> Rows:
    return _kb([(t(lang, "reports.button.fixed_ok"), rp(report.id, Press.FIX_OK)),
                (t(lang, "reports.button.still_there"), rp(report.id, Press.FIX_STILL))])
