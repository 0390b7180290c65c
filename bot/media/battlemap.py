"""The special actions' battle map (挂图作战): a Gantt chart that reads on a phone (its view
model and caption are in `bot.render.battlemap`).

Pure and synchronous (Pillow only): `/actions` builds a `BattleMapView` from the database and
calls `render_png` in a worker thread. 1080 px wide like the bulletin; one row per action:
its name and lead unit, its status and figures (found, closed with the share, overdue) on the
first line; on the second, a bar from its start to its end on the date axis shared by all
rows, outlined and tinted in its status's colour and filled solid to the share of its problems
closed, with the days left (倒排时序) beside it. A vertical line marks today; lagging rows are
tinted. 23 actions make a picture about 2,200 px tall, within what Telegram shows as a photo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from bot.domain.special_actions import ActionStatus
from bot.media import canvas
from bot.media.canvas import FOOTER_LINE_H, Font
from bot.render.battlemap import BattleMapView, MapRow, figures_text, status_label, time_text
from bot.render.bulletin import pct
from bot.render.dates import format_date, month_name

WIDTH = 1080
MARGIN = 40
HEADER_H = 170
LEGEND_H = 56
AXIS_H = 66
ROW_H = 80
BAR_TOP, BAR_H = 44, 22  # within a row

BLUE = (52, 101, 164)
TODAY = (214, 137, 16)  # amber: apart from the statuses' colours
COLOURS: dict[ActionStatus, tuple[int, int, int]] = {
    ActionStatus.ON_TRACK: canvas.GREEN,
    ActionStatus.LAGGING: canvas.RED,
    ActionStatus.NOT_STARTED: canvas.GREY,
    ActionStatus.ENDED: BLUE,
}


def _tint(colour: tuple[int, int, int], share: float = 0.2) -> tuple[int, int, int]:
    """`colour` mixed into white (`share` of it): a bar's background."""
    r, g, b = colour
    return (round(255 - (255 - r) * share), round(255 - (255 - g) * share),
            round(255 - (255 - b) * share))


def row_box(index: int) -> tuple[int, int]:
    """The top and bottom (px) of the `index`-th action's row (0-based)."""
    top = HEADER_H + LEGEND_H + AXIS_H + index * ROW_H
    return top, top + ROW_H


class _Axis:
    """Dates to x: the span of every action and today, a few days' margin either side."""

    def __init__(self, view: BattleMapView) -> None:
        starts = [r.state.action.start for r in view.rows] or [view.day]
        ends = [r.state.action.end for r in view.rows] or [view.day]
        self.first = min(*starts, view.day) - dt.timedelta(days=3)
        self.last = max(*ends, view.day) + dt.timedelta(days=3)
        self.x0, self.x1 = MARGIN, WIDTH - MARGIN
        self.days = (self.last - self.first).days + 1

    def x(self, day: dt.date) -> float:
        """The left edge of `day`."""
        return self.x0 + (self.x1 - self.x0) * (day - self.first).days / self.days

    def today_x(self, day: dt.date) -> float:
        """The middle of `day`."""
        return (self.x(day) + self.x(day + dt.timedelta(days=1))) / 2

    def months(self) -> list[dt.date]:
        out, day = [], dt.date(self.first.year, self.first.month, 1)
        while day <= self.last:
            if day >= self.first:
                out.append(day)
            day = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
        return out


def render_png(view: BattleMapView, font_path: Path | None = None) -> bytes:
    """The battle map as PNG bytes. CPU-bound (a tenth of a second): run it off the loop.
    `font_path` overrides the CJK font (Settings.cjk_font)."""

    def font(size: int, bold: bool = False) -> Font:
        return canvas.cached_font(size, bold, font_path)

    lang = view.lang
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rule = view.rule
    footer_font = font(22)
    rule_text = canvas.tp(lang, "assessment.map.rule", share=pct(lang, rule.overdue_share),
                          min_open=rule.min_open, behind=round(rule.behind_time * 100))
    footer = canvas.wrap(probe, rule_text, footer_font, WIDTH - 2 * MARGIN)
    rows_h = max(1, len(view.rows)) * ROW_H
    _, top_of_footer = row_box(max(1, len(view.rows)) - 1)
    height = top_of_footer + 12 + 16 + len(footer) * FOOTER_LINE_H + 24
    img = Image.new("RGB", (WIDTH, height), canvas.WHITE)
    draw = ImageDraw.Draw(img)

    # Title band.
    draw.rectangle((0, 0, WIDTH, HEADER_H - 16), fill=canvas.RED)
    title_font = font(48, True)
    title = canvas.tp(lang, "assessment.map.png_title")
    draw.text((MARGIN, 28), canvas.fit_text(draw, title, title_font, WIDTH - 2 * MARGIN),
              fill=canvas.WHITE, font=title_font)
    sub = canvas.tp(lang, "assessment.map.png_subtitle", date=format_date(lang, view.day),
             year=view.day.year, count=len(view.rows))
    draw.text((MARGIN, 96), canvas.fit_text(draw, sub, font(28), WIDTH - 2 * MARGIN),
              fill=canvas.WHITE, font=font(28))

    # Legend: the statuses' colours, the fill, today's line.
    x, y = MARGIN, HEADER_H
    legend_font = font(22)
    for status in (ActionStatus.ON_TRACK, ActionStatus.LAGGING, ActionStatus.NOT_STARTED,
                   ActionStatus.ENDED):
        draw.rectangle((x, y + 8, x + 26, y + 26), fill=COLOURS[status])
        label = status_label(lang, status)
        draw.text((x + 34, y + 4), label, fill=canvas.DARK, font=legend_font)
        x += 34 + int(canvas.text_width(draw, label, legend_font)) + 26
    draw.line((x, y + 2, x, y + 32), fill=TODAY, width=3)
    today_label = canvas.tp(lang, "assessment.map.today")
    draw.text((x + 10, y + 4), today_label, fill=canvas.DARK, font=legend_font)
    x += 10 + int(canvas.text_width(draw, today_label, legend_font)) + 26
    fill_label = canvas.tp(lang, "assessment.map.legend_fill")
    draw.text((x, y + 4), canvas.fit_text(draw, fill_label, legend_font, WIDTH - MARGIN - x),
              fill=canvas.GREY, font=legend_font)

    # The date axis: a tick and a label at each month's first day, a light line down the rows.
    axis = _Axis(view)
    top = HEADER_H + LEGEND_H
    rows_top = top + AXIS_H
    month_font = font(20)
    draw.line((axis.x0, rows_top - 4, axis.x1, rows_top - 4), fill=canvas.GREY, width=1)
    shown_to = 0.0  # where the last label drawn ends: one that would overlap is left out
    for month in axis.months():
        mx = axis.x(month)
        draw.line((mx, rows_top - 14, mx, rows_top + rows_h), fill=canvas.LIGHT, width=1)
        key = "assessment.map.month_year" if month.month == 1 else "assessment.map.month"
        label = canvas.tp(lang, key, month=month_name(lang, month.month), year=month.year)
        lw = canvas.text_width(draw, label, month_font)
        if mx + 4 >= shown_to + 8 and mx + 4 + lw <= axis.x1:
            draw.text((mx + 4, rows_top - 34), label, fill=canvas.GREY, font=month_font)
            shown_to = mx + 4 + lw

    tx = axis.today_x(view.day)
    for i, row in enumerate(view.rows):
        _draw_row(draw, view, row, row_box(i)[0], axis, tx, font)
    if not view.rows:
        draw.text((MARGIN, rows_top + 20), canvas.tp(lang, "assessment.map.none"),
                  fill=canvas.GREY, font=font(26))

    # Today, above the axis (its line is drawn by each row, under the text).
    draw.line((tx, rows_top - 16, tx, rows_top), fill=TODAY, width=3)
    today = canvas.tp(lang, "assessment.map.today_at", date=format_date(lang, view.day))
    today_font = font(20, True)
    tw = canvas.text_width(draw, today, today_font)
    lx = tx + 6 if tx + 6 + tw <= axis.x1 else tx - 6 - tw
    draw.text((lx, top + 2), today, fill=TODAY, font=today_font)

    canvas.draw_footer(draw, footer, top_of_footer + 12, footer_font, MARGIN, WIDTH - MARGIN)
    return canvas.png_bytes(img)


def _draw_row(draw: ImageDraw.ImageDraw, view: BattleMapView, row: MapRow, y: int,
              axis: _Axis, today_x: float, font: Callable[..., Font]) -> None:
    lang, state = view.lang, row.state
    colour = COLOURS[state.status]
    if state.status is ActionStatus.LAGGING:
        draw.rectangle((0, y, WIDTH, y + ROW_H - 2), fill=canvas.LAGGARD_BG)
    draw.line((MARGIN, y + ROW_H - 1, WIDTH - MARGIN, y + ROW_H - 1), fill=canvas.LIGHT, width=1)
    draw.line((today_x, y, today_x, y + ROW_H), fill=TODAY, width=3)  # under the text

    # First line: the status and the figures on the right, the name and the lead before them.
    right = WIDTH - MARGIN
    figures_font, tag_font = font(22), font(22, True)
    figures = figures_text(lang, state)
    fw = canvas.text_width(draw, figures, figures_font)
    tag = status_label(lang, state.status)
    tag_w = canvas.text_width(draw, tag, tag_font)
    # The first line's text stands on the row's own colour, not across today's line.
    background = canvas.LAGGARD_BG if state.status is ActionStatus.LAGGING else canvas.WHITE
    draw.rectangle((right - fw - 16 - tag_w - 6, y + 4, right, y + 36), fill=background)
    draw.text((right - fw, y + 8), figures, fill=canvas.DARK, font=figures_font)
    draw.text((right - fw - 16 - tag_w, y + 8), tag, fill=colour, font=tag_font)
    room = right - fw - 16 - tag_w - 24 - MARGIN
    name_font, lead_font = font(26, True), font(22)
    lead = " · " + row.lead
    lead_w = min(canvas.text_width(draw, lead, lead_font), room * 0.45)
    name = canvas.fit_text(draw, state.action.name(lang), name_font, room - lead_w)
    draw.text((MARGIN, y + 4), name, fill=canvas.DARK, font=name_font)
    nx = MARGIN + canvas.text_width(draw, name, name_font)
    draw.text((nx, y + 8), canvas.fit_text(draw, lead, lead_font, room - (nx - MARGIN)),
              fill=canvas.GREY, font=lead_font)

    # Second line: the bar from the first day to the last, filled to the share closed.
    a = state.action
    bx0, bx1 = axis.x(a.start), axis.x(a.end + dt.timedelta(days=1))
    by0, by1 = y + BAR_TOP, y + BAR_TOP + BAR_H
    draw.rectangle((bx0, by0, bx1, by1), fill=_tint(colour), outline=colour, width=2)
    share = state.closed_share
    if share:
        draw.rectangle((bx0, by0, bx0 + (bx1 - bx0) * min(1.0, share), by1), fill=colour)
    draw.line((today_x, by0 - 4, today_x, by1 + 4), fill=TODAY, width=3)  # over the bar
    when = time_text(lang, state)
    when_font = font(20)
    ww = canvas.text_width(draw, when, when_font)
    wx = bx1 + 8 if bx1 + 8 + ww <= axis.x1 else bx0 - 8 - ww
    draw.text((max(MARGIN, wx), by0 - 1), when,
              fill=colour if colour != canvas.GREEN else canvas.DARK, font=when_font)
