"""What the inspector sees: the item, the prompts, the review. HTML text + button rows."""

from __future__ import annotations

from collections.abc import Sequence, Sized
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.domain.checklist import Awaiting, Gap, Progress, gaps
from bot.domain.scoring import Score
from bot.domain.standards import Indicator, Item, Standard, Verdict
from bot.render import callbacks as cb
from bot.render.buttons import Screen
from bot.render.buttons import rows as _keyboard
from bot.render.fit import fit, user
from bot.render.i18n import Html, h, local_name, t
from bot.render.shapes import SiteLike


@dataclass(frozen=True)
class OpenInspection:
    """An inspection left open, as the lists of open inspections show it."""

    inspection_id: int
    site_name: str
    answered: int
    total: int
    site_name_en: str = ""


@dataclass(frozen=True)
class HeldBy:
    """Another inspector's open inspection of a site: who, since when."""

    name: str
    since: datetime


class InspectionShown(Protocol):
    """What the screens read of an inspection (bot.services.inspections.InspectionView
    satisfies it; a Protocol, because that view also carries the ORM rows it was built from)."""

    @property
    def inspection_id(self) -> int: ...
    @property
    def site(self) -> SiteLike: ...
    @property
    def standard(self) -> Standard: ...
    @property
    def progress(self) -> Progress: ...
    @property
    def status(self) -> str: ...
    @property
    def score(self) -> Score: ...


VERDICT_ICONS = {
    Verdict.COMPLIANT: "✅", Verdict.BASIC: "🟡", Verdict.NONCOMPLIANT: "❌", Verdict.NA: "➖",
}
MAX_REVIEW_LINES = 30


def verdict_label(lang: str, v: Verdict) -> str:
    return f"{VERDICT_ICONS[v]} {t(lang, f'verdict.{v.value}')}"


def fmt_score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def inspection_screen(view: InspectionShown, lang: str) -> Screen:
    """The one message an inspection lives in, for its current step, fitted to Telegram's
    limit (a long note is shortened on screen, never in the record)."""
    text, rows = _inspection_screen(view, lang)
    return fit(text), rows


def _inspection_screen(view: InspectionShown, lang: str) -> Screen:
    p = view.progress
    if view.status == "discarded":
        return discarded_screen(view, lang), []
    if view.status != "open":
        return submitted_screen(view, lang, []), []
    if p.in_review:
        return review_screen(view, lang)
    item = p.item
    st = p.answers.get(item.key)
    head = _item_text(view, item, lang)
    if p.awaiting is Awaiting.PHOTO:
        body = t(lang, "inspect.ask_evidence", count=st.photos if st else 0)
        return f"{head}\n\n{body}", _keyboard(
            [(t(lang, "button.photos_done"), cb.step_action(view.inspection_id, p.step, "done"))]
            if st and st.photos else [],
            [(t(lang, "button.cancel_verdict"),
              cb.step_action(view.inspection_id, p.step, "cancel"))],
        )
    if p.awaiting is Awaiting.REMARK:
        return f"{head}\n\n{t(lang, 'inspect.ask_remark')}", _keyboard(
            [(t(lang, "button.cancel_verdict"),
              cb.step_action(view.inspection_id, p.step, "cancel"))],
        )
    if p.awaiting is Awaiting.NOTE:
        return f"{head}\n\n{t(lang, 'inspect.ask_note')}", _keyboard(
            [(t(lang, "button.back_to_item"),
              cb.step_action(view.inspection_id, p.step, "cancel"))],
        )
    if p.awaiting is Awaiting.EXTRA_PHOTO:
        return f"{head}\n\n{t(lang, 'inspect.ask_extra_photo', count=st.photos if st else 0)}", \
            _keyboard([(t(lang, "button.back_to_item"),
                        cb.step_action(view.inspection_id, p.step, "done"))])
    verdict_row = [(verdict_label(lang, v), cb.verdict(view.inspection_id, p.step, v))
                   for v in item.verdicts if v is not Verdict.NA]
    rows = [verdict_row[:2], verdict_row[2:]] if len(verdict_row) > 2 else [verdict_row]
    if Verdict.NA in item.verdicts:
        rows[-1].append((verdict_label(lang, Verdict.NA),
                         cb.verdict(view.inspection_id, p.step, Verdict.NA)))
    nav = []
    if p.step > 0:
        nav.append((t(lang, "button.back"), cb.step_action(view.inspection_id, p.step, "back")))
    nav.append((t(lang, "button.skip"), cb.step_action(view.inspection_id, p.step, "skip")))
    extra = [
        (t(lang, "button.note"), cb.step_action(view.inspection_id, p.step, "note")),
        (t(lang, "button.photo"), cb.step_action(view.inspection_id, p.step, "photo")),
        (t(lang, "button.pause"), cb.step_action(view.inspection_id, p.step, "pause")),
    ]
    return head, _keyboard(*rows, nav, extra)


def _item_text(view: InspectionShown, item: Item, lang: str) -> str:
    p = view.progress
    st = p.answers.get(item.key)
    lines = [
        t(lang, "inspect.header", site=_site(view.site, lang),
          standard=view.standard.name.get(lang),
          step=p.step + 1, total=p.total,
          indicator=t(lang, f"indicator.{item.indicator.value}")),
        "",
    ]
    if st is not None and st.skipped and st.verdict is None:
        lines[1:1] = [t(lang, "inspect.skipped_again")]
    if item.parent_text is not None:
        lines.append(f"<i>{h(item.parent_text.get(lang))}</i>")
    lines.append(f"<b>{h(item.number)}.</b> {h(item.text.get(lang))}")
    if lang != "zh-hans":
        lines.append(f"<i>{h(item.text.zh)}</i>")
    for verdict, rule in item.rules.items():
        lines.append(f"{VERDICT_ICONS[verdict]} {h(rule.get(lang))}")
    for hint in item.hints:
        lines.append(t(lang, "inspect.hint", hint=hint.get(lang)))
    if item.indicator is Indicator.DYNAMIC and item.photo_on_fail:
        lines.append(t(lang, "inspect.photo_rule"))
    if st is not None and (st.verdict or st.remark or st.photos):
        lines.append("")
        if st.verdict is not None:
            lines.append(t(lang, "inspect.current_answer",
                           verdict=verdict_label(lang, st.verdict)))
        if st.remark:
            lines.append(t(lang, "inspect.current_remark", remark=user(st.remark)))
        if st.photos:
            lines.append(t(lang, "inspect.current_photos", count=st.photos))
    return "\n".join(lines)


def score_lines(score: Score, lang: str) -> list[str]:
    return [
        t(lang, "inspect.score", overall=fmt_score(score.overall),
          static=fmt_score(score.static), dynamic=fmt_score(score.dynamic)),
        t(lang, "inspect.counts",
          compliant=score.counts.get(Verdict.COMPLIANT, 0),
          basic=score.counts.get(Verdict.BASIC, 0),
          noncompliant=score.counts.get(Verdict.NONCOMPLIANT, 0),
          na=score.counts.get(Verdict.NA, 0)),
    ]


def review_screen(view: InspectionShown, lang: str) -> Screen:
    p = view.progress
    lines = [t(lang, "inspect.review_title", site=_site(view.site, lang),
               standard=view.standard.name.get(lang)), ""]
    lines += score_lines(view.score, lang)
    below = [(i, it) for i, it in enumerate(view.standard.items)
             if (st := p.answers.get(it.key)) is not None and st.verdict in
             (Verdict.BASIC, Verdict.NONCOMPLIANT, Verdict.NA)]
    if below:
        lines += ["", t(lang, "inspect.review_below")]
        for _, it in below[:MAX_REVIEW_LINES]:
            st = p.answers[it.key]
            assert st.verdict is not None
            extra = []
            if st.photos:
                extra.append(t(lang, "inspect.photos_short", count=st.photos))
            if st.remark:
                extra.append(user(_clip(" / ".join(st.remark.split()), 60)))
            lines.append(f"{VERDICT_ICONS[st.verdict]} <b>{h(it.number)}</b> "
                         f"{h(_clip(it.text.get(lang), 40))}"
                         + (f" — {'; '.join(extra)}" if extra else ""))
        if len(below) > MAX_REVIEW_LINES:
            lines.append(t(lang, "inspect.and_more", count=len(below) - MAX_REVIEW_LINES))
    missing = gaps(p)
    rows: list[list[tuple[str, str]]] = []
    if missing:
        lines += ["", t(lang, "inspect.review_missing", count=len(missing))]
        buttons = []
        for item, g in missing[:8]:
            lines.append(f"• <b>{h(item.number)}</b> {t(lang, f'gap.{g.value}')}")
            buttons.append((t(lang, "button.goto", number=item.number),
                            cb.step_action(view.inspection_id, p.step, "goto",
                                           view.standard.index(item.key))))
        rows += [buttons[i:i + 4] for i in range(0, len(buttons), 4)]
    else:
        fails = sum(1 for it in view.standard.items
                    if (st := p.answers.get(it.key)) and st.verdict is Verdict.NONCOMPLIANT)
        lines += ["", t(lang, "inspect.review_ready", tasks=fails)]
        rows.append([(t(lang, "button.submit"),
                      cb.step_action(view.inspection_id, p.step, "submit"))])
    rows.append([(t(lang, "button.back"), cb.step_action(view.inspection_id, p.step, "back")),
                 (t(lang, "button.pause"), cb.step_action(view.inspection_id, p.step, "pause"))])
    return "\n".join(lines), _keyboard(*rows)


def submitted_screen(view: InspectionShown, lang: str, tasks: Sized) -> str:
    lines = [t(lang, "inspect.submitted", site=_site(view.site, lang),
               standard=view.standard.name.get(lang)), ""]
    lines += score_lines(view.score, lang)
    if tasks:
        lines += ["", t(lang, "inspect.tasks_created", count=len(tasks),
                        unit=local_name(lang, view.site.unit.name_zh, view.site.unit.name_en))]
    return "\n".join(lines)


def paused_screen(view: InspectionShown, lang: str) -> str:
    return t(lang, "inspect.paused", site=_site(view.site, lang), answered=view.progress.answered,
             total=view.progress.total)


def open_list_screen(items: Sequence[OpenInspection], lang: str,
                     note: str | None = None) -> Screen:
    """The open inspections, each to resume or discard; `note` goes above (e.g. what was
    just discarded)."""
    lines = ([note, ""] if note else []) + [t(lang, "inspect.open_list")]
    rows = []
    for it in items:
        rows.append([(_resume_label(it, lang), cb.resume(it.inspection_id)),
                     (t(lang, "button.discard"), cb.discard(it.inspection_id))])
    rows.append([(t(lang, "button.new_inspection"), cb.find("new"))])
    return "\n".join(lines), _keyboard(*rows)


def open_inspections_note(items: Sequence[OpenInspection], lang: str) -> Screen:
    """What /start says of inspections left open, with a button to resume each."""
    rows = [[(_resume_label(it, lang), cb.resume(it.inspection_id))]
            for it in items[:5]]
    return t(lang, "start.open_inspections", count=len(items)), _keyboard(*rows)


def site_held_screen(site: SiteLike, held: Sequence[HeldBy], lang: str,
                     tz: ZoneInfo) -> Screen:
    """Someone else has this site open: who and since when; go on anyway, or choose another."""
    lines = [t(lang, "inspect.site_held", site=_site(site, lang))]
    lines += [t(lang, "inspect.site_held_by", name=who.name, since=_local(who.since, tz))
              for who in held]
    lines.append(t(lang, "inspect.site_held_choice"))
    return "\n".join(lines), _keyboard(
        [(t(lang, "button.inspect_anyway"), cb.site(site.id, anyway=True))],
        [(t(lang, "button.other_site"), cb.find("new"))],
    )


def inspect_menu(open_ones: Sequence[OpenInspection], sites: Sequence[SiteLike], lang: str,
                 note: str | None = None) -> Screen:
    """What /inspect shows: the open inspections if any, else the sites to choose from."""
    if open_ones:
        return open_list_screen(open_ones, lang, note)
    key = "inspect.choose_site" if sites else "inspect.no_assigned_sites"
    return site_choice_screen(sites, lang, key, note)


def discard_question_screen(view: InspectionShown, lang: str) -> Screen:
    text = t(lang, "inspect.discard_question", site=_site(view.site, lang),
             answered=view.progress.answered, total=view.progress.total)
    return text, _keyboard([
        (t(lang, "button.discard_yes"), cb.discard(view.inspection_id, "yes")),
        (t(lang, "button.discard_no"), cb.discard(view.inspection_id, "no")),
    ])


def discarded_screen(view: InspectionShown, lang: str) -> str:
    return t(lang, "inspect.discarded", site=_site(view.site, lang),
             answered=view.progress.answered, total=view.progress.total)


def site_choice_screen(sites: Sequence[SiteLike], lang: str, title_key: str,
                       note: str | None = None) -> Screen:
    rows = [[(f"{_clip(_site(s, lang), 28)}", cb.site(s.id))] for s in sites]
    rows.append([(t(lang, "button.search_site"), cb.find("search")),
                 (t(lang, "button.near_site"), cb.find("near"))])
    title = t(lang, title_key)
    return (f"{note}\n\n{title}" if note else title), _keyboard(*rows)


def nearest_screen(pairs: Sequence[tuple[SiteLike, float]], lang: str) -> Screen:
    rows = [[(f"{_clip(_site(s, lang), 24)} · {_distance(d)}", cb.site(s.id))]
            for s, d in pairs]
    rows.append([(t(lang, "button.search_site"), cb.find("search"))])
    return t(lang, "inspect.nearest"), _keyboard(*rows)


def _site(site: SiteLike, lang: str) -> str:
    return local_name(lang, site.name, site.name_en)


def _resume_label(it: OpenInspection, lang: str) -> str:
    site = local_name(lang, it.site_name, it.site_name_en)
    return t(lang, "button.resume", site=_clip(site, 20), answered=it.answered, total=it.total)


def _distance(metres: float) -> str:
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _local(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


__all__ = ["Gap", "Html", "inspection_screen"]
