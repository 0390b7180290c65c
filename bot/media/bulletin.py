"""The weekly bulletin (一周一通报): a PNG ranking that reads on a phone (its caption and view
model are in `bot.render.bulletin`).

Pure and synchronous (Pillow only, no Telegram, no database): the scheduler and `wenming
bulletin` build a `BulletinView` from the database and call `render_png` in a worker thread.
The picture is 1080 px wide (a phone's screen width, so Telegram shows it without shrinking),
one block per unit: rank, name, score with a bar on a 0-100 scale, the change since last week,
and a line with the other figures. Laggards are tinted; units with too few inspections are
listed apart underneath.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from bot.domain.ranking import RankedRow
from bot.media.canvas import (
    AMBER,
    DARK,
    GREEN,
    GREY,
    LAGGARD_BG,
    LIGHT,
    RED,
    WHITE,
    Font,
    cached_font,
    draw_footer,
    fit_text,
    plain,
    png_bytes,
    text_width,
    tp,
    wrap,
)
from bot.render.assessment import formula
from bot.render.bulletin import BulletinView, num, pct, phase_line, plan_tag
from bot.render.dates import format_date

WIDTH = 1080
MARGIN = 48
# Telegram shows a photo at up to 2560 px on its long side; a taller bulletin (40+ units) goes
# out as a document so it is not scaled down to an unreadable strip.
MAX_PHOTO_HEIGHT = 2560

MEDALS = {1: (212, 160, 23), 2: (150, 150, 160), 3: (176, 110, 60)}


def _score_colour(score: float | None) -> tuple[int, int, int]:
    if score is None:
        return GREY
    if score >= 90:
        return GREEN
    if score >= 80:
        return AMBER
    return RED


ROW_H = 132
UNRANKED_ROW_H = 76


def render_png(view: BulletinView, font_path: Path | None = None) -> bytes:
    """The bulletin as PNG bytes. CPU-bound (~0.1 s for 40 units): run it off the loop.
    `font_path` overrides the CJK font (Settings.cjk_font)."""

    def font(size: int, bold: bool = False) -> Font:
        return cached_font(size, bold, font_path)

    lang = view.lang
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    footer_font = font(22)
    footer_lines = wrap(probe, tp(lang, "scheduler.bulletin.footer"), footer_font,
                         WIDTH - 2 * MARGIN)
    if view.assessment is not None and view.assessment.units:  # how the combined was made
        made = formula(lang, view.assessment.weights, view.assessment.periods)
        footer_lines[:0] = wrap(probe, plain(made),
                                 footer_font, WIDTH - 2 * MARGIN)
    ranked, unranked = view.ranking.ranked, view.ranking.unranked
    header_h = 250
    table_head_h = 56
    body_h = max(1, len(ranked)) * ROW_H
    unranked_h = (70 + len(unranked) * UNRANKED_ROW_H) if unranked else 0
    footer_h = 40 + len(footer_lines) * 32 + 24
    height = header_h + table_head_h + body_h + unranked_h + footer_h

    img = Image.new("RGB", (WIDTH, height), WHITE)
    draw = ImageDraw.Draw(img)
    year, number = view.year_and_number

    # Title band: the week, its dates, the campaign phase and who this ranking is for.
    draw.rectangle((0, 0, WIDTH, header_h - 20), fill=RED)
    title = tp(lang, "scheduler.bulletin.title", year=year, week=number)
    draw.text((MARGIN, 34), fit_text(draw, title, font(52, True), WIDTH - 2 * MARGIN), fill=WHITE,
              font=font(52, True))
    dates = tp(lang, "scheduler.bulletin.range", first=format_date(lang, view.first),
              last=format_date(lang, view.last))
    sub = f"{dates}  ·  {view.audience}"
    draw.text((MARGIN, 112), fit_text(draw, sub, font(30), WIDTH - 2 * MARGIN), fill=WHITE,
              font=font(30))
    phase = plain(phase_line(view))
    pill_font = font(30, True)
    pill_w = text_width(draw, phase, pill_font) + 40
    draw.rounded_rectangle((MARGIN, 162, MARGIN + pill_w, 212), radius=25, fill=WHITE)
    draw.text((MARGIN + 20, 168), phase, fill=RED, font=pill_font)

    # Column heads.
    y = header_h
    head_font = font(24)
    x_name = MARGIN + 96
    x_score_right = WIDTH - MARGIN - 150
    draw.text((MARGIN, y + 12), tp(lang, "scheduler.bulletin.col_rank"), fill=GREY,
              font=head_font)
    draw.text((x_name, y + 12), tp(lang, "scheduler.bulletin.col_unit"), fill=GREY,
              font=head_font)
    score_head = tp(lang, "scheduler.bulletin.col_score")
    draw.text((x_score_right - text_width(draw, score_head, head_font), y + 12), score_head,
              fill=GREY, font=head_font)
    change_head = tp(lang, "scheduler.bulletin.col_change")
    draw.text((WIDTH - MARGIN - text_width(draw, change_head, head_font), y + 12),
              change_head, fill=GREY, font=head_font)
    y += table_head_h
    draw.line((MARGIN, y - 4, WIDTH - MARGIN, y - 4), fill=LIGHT, width=2)

    laggards = {lag.figures.unit_id for lag in view.ranking.laggards}
    if not ranked:
        draw.text((MARGIN, y + 40), tp(lang, "scheduler.bulletin.none_ranked"), fill=GREY,
                  font=font(30))
    for row in ranked:
        _draw_row(draw, view, row, y, row.figures.unit_id in laggards, font)
        y += ROW_H
    if not ranked:
        y += ROW_H

    if unranked:
        y += 14
        draw.text((MARGIN, y), tp(lang, "scheduler.bulletin.unranked_title",
                                 min=view.min_inspections), fill=DARK, font=font(30, True))
        y += 56
        for row in unranked:
            f = row.figures
            if f.unit_id in laggards:
                draw.rectangle((0, y - 6, WIDTH, y + UNRANKED_ROW_H - 10), fill=LAGGARD_BG)
            draw.text((MARGIN, y), fit_text(draw, f.name, font(28), 560), fill=DARK,
                      font=font(28))
            detail = tp(lang, "scheduler.bulletin.unranked_row", inspections=f.inspections,
                       overdue=f.overdue, reports=f.reports)
            draw.text((MARGIN, y + 36), fit_text(draw, detail, font(22), WIDTH - 2 * MARGIN),
                      fill=GREY, font=font(22))
            if f.escalated:
                tag = tp(lang, "scheduler.bulletin.escalated_tag", count=f.escalated)
                draw.text((WIDTH - MARGIN - text_width(draw, tag, font(24, True)), y + 2),
                          tag, fill=RED, font=font(24, True))
            y += UNRANKED_ROW_H

    y += 24
    draw_footer(draw, footer_lines, y, footer_font, MARGIN, WIDTH - MARGIN)
    return png_bytes(img)


def _draw_row(draw: ImageDraw.ImageDraw, view: BulletinView, row: RankedRow, y: int,
              laggard: bool, font: Callable[..., Font]) -> None:
    lang = view.lang
    f = row.figures
    if laggard:
        draw.rectangle((0, y, WIDTH, y + ROW_H - 8), fill=LAGGARD_BG)
    # Rank badge: medals for the first three, red for the named.
    rank = row.rank or 0
    colour = RED if laggard else MEDALS.get(rank, DARK)
    cx, cy, r = MARGIN + 30, y + 40, 30
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    rank_text = str(rank)
    rank_font = font(30 if rank < 100 else 24, True)
    tw = text_width(draw, rank_text, rank_font)
    draw.text((cx - tw / 2, cy - 21), rank_text, fill=WHITE, font=rank_font)

    x_name = MARGIN + 96
    score_font = font(40, True)
    score_text = num(lang, f.score)
    score_right = WIDTH - MARGIN - 150
    draw.text((score_right - text_width(draw, score_text, score_font), y + 14), score_text,
              fill=_score_colour(f.score), font=score_font)
    name_w = score_right - 130 - x_name
    draw.text((x_name, y + 16), fit_text(draw, f.name, font(34, True), name_w), fill=DARK,
              font=font(34, True))

    # Change since last week: places gained (▲ green) or lost (▼ red), or "new".
    change_font = font(28, True)
    if row.rank_change is None:
        change, change_colour = tp(lang, "scheduler.bulletin.new_entry"), GREY
    elif row.rank_change > 0:
        change, change_colour = f"▲{row.rank_change}", GREEN
    elif row.rank_change < 0:
        change, change_colour = f"▼{-row.rank_change}", RED
    else:
        change, change_colour = "—", GREY
    draw.text((WIDTH - MARGIN - text_width(draw, change, change_font), y + 18), change,
              fill=change_colour, font=change_font)
    if row.score_change is not None and row.score_change != 0:
        delta = f"{row.score_change:+.1f}"
        draw.text((WIDTH - MARGIN - text_width(draw, delta, font(22)), y + 56), delta,
                  fill=GREEN if row.score_change > 0 else RED, font=font(22))

    # The bar: the score on a 0-100 scale.
    bar_x0, bar_x1 = x_name, score_right
    bar_y = y + 70
    draw.rounded_rectangle((bar_x0, bar_y, bar_x1, bar_y + 14), radius=7, fill=LIGHT)
    if f.score is not None and f.score > 0:
        filled = bar_x0 + (bar_x1 - bar_x0) * min(100.0, f.score) / 100
        draw.rounded_rectangle((bar_x0, bar_y, max(bar_x0 + 14, filled), bar_y + 14),
                               radius=7, fill=_score_colour(f.score))

    detail = tp(lang, "scheduler.bulletin.detail", static=num(lang, f.static),
               dynamic=num(lang, f.dynamic), on_time=pct(lang, f.on_time_rate),
               overdue=f.overdue, rework=pct(lang, f.rework_rate), reports=f.reports,
               inspections=f.inspections)
    detail = _combined(view, f.unit_id) + detail
    if tag := plan_tag(view, f.unit_id):  # supervision plans: rounds done on time / due
        detail = f"{tp(lang, 'plans.bulletin.tag', rounds=tag)}  {detail}"
    detail_font = font(22)
    draw.text((x_name, y + 94), fit_text(draw, detail, detail_font, WIDTH - MARGIN - x_name),
              fill=GREY, font=detail_font)
    if f.escalated:
        tag = tp(lang, "scheduler.bulletin.escalated_tag", count=f.escalated)
        tag_font = font(22, True)
        tw = text_width(draw, tag, tag_font)
        draw.text((score_right - 140 - tw, y + 24), tag, fill=RED, font=tag_font)


def _combined(view: BulletinView, unit_id: int) -> str:
    """'综合 86.5 · ' before a unit's figures when it has a combined assessment."""
    combined = view.assessment.of(unit_id) if view.assessment is not None else None
    if combined is None or combined.total is None:
        return ""
    return tp(view.lang, "assessment.bulletin.png_total", total=f"{combined.total:.1f}")


def is_tall(png: bytes) -> bool:
    with Image.open(io.BytesIO(png)) as img:
        return img.height > MAX_PHOTO_HEIGHT


