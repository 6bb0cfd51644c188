"""The monthly report as one printable HTML page (A4, print CSS), drawn only from the
frozen figures (figures.py) and the version's facts, so the same inputs give the same page.

Sections: title with the unit chain and the month; the version (sent by and when, the
reason of a correction and what changed since the previous sent version); the resolution
map (the children's outlines from our own geometries, coloured by resolution rate, as
inline SVG: no tiles); the table by unit; the trend (an inline SVG chart of twelve
months); overdue and reworked cases; satisfaction. Simplified Chinese by default, English
with ``lang="en"``. Fonts: the machine's Noto CJK (Debian fonts-noto-cjk, Makefile).
"""

from __future__ import annotations

import html
from typing import Any

from gis_service.cases.workflow import STATUS_LABELS, Status
from gis_service.reports.figures import SHOWN

#: (zh, en) of every word the page prints
WORDS: dict[str, tuple[str, str]] = {
    "title": ("月度报告", "Monthly report"),
    "month": ("月份", "Month"),
    "version": ("版本", "Version"),
    "draft": ("草稿", "Draft"),
    "sent": ("已报送", "Sent"),
    "sent_by": ("报送人", "Sent by"),
    "created_by": ("生成人", "Made by"),
    "computed_at": ("数据时间", "Figures as of"),
    "reason": ("更正原因", "Reason for the correction"),
    "changes": ("与上一报送版本相比的变化", "Changes since the previous sent version"),
    "no_changes": ("无变化", "No change"),
    "figure": ("指标", "Figure"),
    "old": ("原值", "Before"),
    "new": ("新值", "Now"),
    "map": ("办结率地图", "Resolution map"),
    "table": ("分单位统计", "Figures by unit"),
    "unit": ("单位", "Unit"),
    "total": ("合计", "Total"),
    "trend": ("近十二个月趋势", "Trend, last twelve months"),
    "overdue": ("超期案件", "Overdue cases"),
    "rework": ("返工案件", "Reworked cases"),
    "satisfaction": ("满意度", "Satisfaction"),
    "rated": ("评价数", "Ratings"),
    "mean": ("平均分", "Mean score"),
    "score": ("评分", "Score"),
    "count": ("数量", "Count"),
    "case_no": ("案件编号", "Case"),
    "category": ("类别", "Category"),
    "status": ("状态", "Status"),
    "reported_at": ("上报时间", "Reported"),
    "deadline_at": ("期限", "Deadline"),
    "closed_at": ("结案时间", "Closed"),
    "rework_count": ("返工次数", "Reworks"),
    "none": ("无", "None"),
    "more": ("另有 {n} 件，见系统", "{n} more in the system"),
    "no_data": ("无数据", "no data"),
    "reported": ("上报", "Reported"),
    "accepted": ("立案", "Accepted"),
    "closed": ("结案", "Closed"),
    "closed_on_time": ("按期结案", "Closed on time"),
    "overdue_now": ("当前超期", "Overdue now"),
    "resolution_rate": ("办结率", "Resolution rate"),
    "on_time_rate": ("按期结案率", "On-time rate"),
    "rework_rate": ("返工率", "Rework rate"),
    "satisfaction_rate": ("满意率", "Satisfaction rate"),
    "mean_score": ("平均分", "Mean score"),
}
#: resolution-rate classes of the map, (lower bound, colour), highest first
CLASSES: tuple[tuple[float, str], ...] = (
    (0.95, "#1a9850"),
    (0.85, "#91cf60"),
    (0.75, "#fee08b"),
    (0.60, "#fc8d59"),
    (0.0, "#d73027"),
)
NO_DATA = "#d9d9d9"
#: trend lines: figure and colour
TREND_LINES = (
    ("resolution_rate", "#2166ac"),
    ("on_time_rate", "#1a9850"),
    ("satisfaction_rate", "#e08214"),
)
#: at most this many cases per list on paper; the rest are counted
LIST_ROWS = 60

CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Noto Serif CJK SC", sans-serif; font-size: 9.5pt;
       color: #222; margin: 0; }
h1 { font-size: 18pt; margin: 0 0 2mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; border-bottom: 0.4mm solid #2166ac;
     padding-bottom: 1mm; break-after: avoid; }
.chain { color: #555; margin-bottom: 2mm; }
.meta { display: flex; flex-wrap: wrap; gap: 2mm 8mm; margin-bottom: 2mm; }
.meta b { font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 0.2mm solid #bbb; padding: 0.8mm 1.5mm; text-align: right; }
th { background: #eef3f8; font-weight: 600; }
td.l, th.l { text-align: left; }
tr { break-inside: avoid; }
tr.total td { font-weight: 600; background: #f6f6f6; }
.reason { border-left: 1mm solid #e08214; padding: 1mm 3mm; background: #fff7ec; }
.map { display: flex; gap: 6mm; align-items: flex-start; }
.map svg { flex: 0 0 120mm; width: 120mm; height: 90mm; border: 0.2mm solid #ccc; }
.legend .key { display: flex; align-items: center; gap: 2mm; margin: 1mm 0; }
.legend i { display: inline-block; width: 5mm; height: 3.5mm; border: 0.2mm solid #888; }
.trend svg { width: 186mm; height: 62mm; }
.small { color: #666; font-size: 8pt; }
"""


def render(
    figures: dict[str, Any],
    version: dict[str, Any],
    lang: str = "zh",
    changes: list[dict[str, Any]] | None = None,
) -> str:
    """The page. ``version``: number, status, created_by/at, sent_by/at, reason (strings
    already written for people, or None); ``changes``: the diff since the previous sent
    version (versions.py ``diff``), None for a first version."""
    en = lang == "en"

    def w(key: str) -> str:
        return WORDS[key][1 if en else 0]

    e = html.escape
    unit = figures["unit"]
    chain = " › ".join(e(u["name"]) for u in figures["chain"])
    state = w("sent") if version.get("status") == "sent" else w("draft")
    meta = [
        (w("month"), figures["month"]),
        (w("version"), f"v{version['version']} · {state}"),
        (w("created_by"), f"{version.get('created_by') or ''} {version.get('created_at') or ''}"),
    ]
    if version.get("sent_at"):
        meta.append((w("sent_by"), f"{version.get('sent_by') or ''} {version['sent_at']}"))
    meta.append((w("computed_at"), f"{figures['computed_at']} ({figures['timezone']})"))
    parts = [
        f"<h1>{e(unit['name'])} · {w('title')} {e(figures['month'])}</h1>",
        f'<div class="chain">{chain}</div>',
        '<div class="meta">'
        + "".join(f"<span><b>{e(k)}</b> {e(v)}</span>" for k, v in meta)
        + "</div>",
    ]
    if version.get("reason"):
        parts.append(f'<div class="reason"><b>{w("reason")}</b>: {e(version["reason"])}</div>')
    if changes is not None:
        parts.append(f"<h2>{w('changes')}</h2>" + _changes(changes, w, e))
    parts.append(f"<h2>{w('map')}</h2>" + _map(figures, w, e))
    parts.append(f"<h2>{w('table')}</h2>" + _table(figures, w, e))
    parts.append(f"<h2>{w('trend')}</h2>" + _trend(figures["trend"], w, e))
    for name in ("overdue", "rework"):
        parts.append(f"<h2>{w(name)} ({len(figures[name])})</h2>" + _cases(figures[name], w, e, en))
    parts.append(f"<h2>{w('satisfaction')}</h2>" + _satisfaction(figures["satisfaction"], w))
    return (
        f'<!DOCTYPE html><html lang="{"en" if en else "zh-CN"}"><head><meta charset="utf-8">'
        f"<title>{e(unit['name'])} {w('title')} {e(figures['month'])}</title>"
        f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    )


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def show(figure: str, value: Any) -> str:
    """A figure as printed: rates as percentages, counts as integers, none as a dash."""
    if value is None:
        return "—"
    if figure.endswith("_rate"):
        return pct(value)
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def colour(rate: float | None) -> str:
    if rate is None:
        return NO_DATA
    return next(c for lo, c in CLASSES if rate >= lo)


def _map(figures: dict[str, Any], w, e) -> str:
    m = figures["map"]
    if not m["view_box"]:
        return f"<p>{w('no_data')}</p>"
    rates = {u["code"]: u for u in figures["table"]}
    shapes = []
    for u in m["units"]:
        row = rates.get(u["code"], {})
        rate = row.get("resolution_rate")
        shapes.append(
            f'<path d="{e(u["path"])}" fill="{colour(rate)}" stroke="#444" '
            f'stroke-width="0.8" vector-effect="non-scaling-stroke">'
            f"<title>{e(row.get('name', u['code']))} {pct(rate)}</title></path>"
        )
    legend = "".join(
        f'<div class="key"><i style="background:{c}"></i>≥ {lo * 100:.0f}%</div>'
        for lo, c in CLASSES
    )
    legend += f'<div class="key"><i style="background:{NO_DATA}"></i>{w("no_data")}</div>'
    names = "".join(
        f"<div>{e(u['name'])}: {pct(u['resolution_rate'])}</div>" for u in figures["table"][:30]
    )
    return (
        f'<div class="map"><svg xmlns="http://www.w3.org/2000/svg" viewBox="{m["view_box"]}" '
        f'preserveAspectRatio="xMidYMid meet">{"".join(shapes)}</svg>'
        f'<div class="legend"><b>{w("resolution_rate")}</b>{legend}'
        f'<div class="small">{names}</div></div></div>'
    )


def _table(figures: dict[str, Any], w, e) -> str:
    head = f'<th class="l">{w("unit")}</th>' + "".join(f"<th>{w(f)}</th>" for f in SHOWN)
    rows = [
        f'<tr><td class="l">{e(u["name"])}<br><span class="small">{e(u["code"])}</span></td>'
        + "".join(f"<td>{show(f, u[f])}</td>" for f in SHOWN)
        + "</tr>"
        for u in figures["table"]
    ]
    t = figures["totals"]
    rows.append(
        f'<tr class="total"><td class="l">{w("total")}</td>'
        + "".join(f"<td>{show(f, t[f])}</td>" for f in SHOWN)
        + "</tr>"
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _trend(trend: list[dict[str, Any]], w, e) -> str:
    """Rates over the months: a line per rate on a 0–100 % axis; months without a value
    leave a gap."""
    width, height, left, bottom, top = 700, 230, 40, 30, 10
    n = len(trend)
    step = (width - left - 10) / max(n - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return top + (1 - v) * (height - top - bottom)

    grid = "".join(
        f'<line x1="{left}" x2="{width - 10}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
        f'<text x="{left - 4}" y="{y(v) + 3:.1f}" font-size="9" text-anchor="end">'
        f"{v * 100:.0f}%</text>"
        for v in (0, 0.25, 0.5, 0.75, 1)
    )
    labels = "".join(
        f'<text x="{x(i):.1f}" y="{height - bottom + 14}" font-size="9" text-anchor="middle">'
        f"{e(t['month'][2:])}</text>"
        for i, t in enumerate(trend)
    )
    lines, legend = [], []
    for k, (name, col) in enumerate(TREND_LINES):
        segs, cur = [], []
        for i, t in enumerate(trend):
            if t[name] is None:
                if cur:
                    segs.append(cur)
                cur = []
            else:
                cur.append(f"{x(i):.1f},{y(t[name]):.1f}")
        if cur:
            segs.append(cur)
        for seg in segs:
            lines.append(
                f'<polyline points="{" ".join(seg)}" fill="none" stroke="{col}" '
                f'stroke-width="2"/>'
                + "".join(
                    f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.5" fill="{col}"/>'
                    for p in seg
                )
            )
        legend.append(
            f'<rect x="{left + k * 150}" y="{height - 10}" width="10" height="6" fill="{col}"/>'
            f'<text x="{left + k * 150 + 14}" y="{height - 4}" font-size="9">{w(name)}</text>'
        )
    counts = "".join(
        f'<text x="{x(i):.1f}" y="{y(0) - 3:.1f}" font-size="7" fill="#888" '
        f'text-anchor="middle">{t["reported"]}</text>'
        for i, t in enumerate(trend)
    )
    return (
        f'<div class="trend"><svg xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height + 6}">{grid}{labels}{counts}{"".join(lines)}'
        f"{''.join(legend)}</svg>"
        f'<div class="small">{w("reported")}: '
        + ", ".join(f"{t['month']} {t['reported']}" for t in trend)
        + "</div></div>"
    )


def _cases(cases: list[dict[str, Any]], w, e, en: bool) -> str:
    if not cases:
        return f"<p>{w('none')}</p>"
    cols = (
        "case_no",
        "category",
        "status",
        "reported_at",
        "deadline_at",
        "closed_at",
        "rework_count",
    )
    head = "".join(f'<th class="l">{w(c)}</th>' for c in cols)
    rows = []
    for c in cases[:LIST_ROWS]:
        cells = []
        for col in cols:
            v = c[col]
            if col == "status":
                v = STATUS_LABELS[Status(v)][1 if en else 0]
            elif col == "category":
                v = (c.get("category_name") or {}).get("en" if en else "zh") or v
            elif col.endswith("_at") and v:
                v = v[:16].replace("T", " ")
            cells.append(f'<td class="l">{e("" if v is None else str(v))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    more = ""
    if len(cases) > LIST_ROWS:
        more = f'<p class="small">{w("more").format(n=len(cases) - LIST_ROWS)}</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def _satisfaction(s: dict[str, Any], w) -> str:
    dist = s["distribution"]
    top = max(dist.values()) or 1
    bars = "".join(
        f'<tr><td>{score}</td><td>{n}</td><td class="l"><svg width="300" height="10">'
        f'<rect width="{300 * n / top:.1f}" height="10" fill="#2166ac"/></svg></td></tr>'
        for score, n in sorted(dist.items(), reverse=True)
    )
    mean = "—" if s["mean"] is None else f"{s['mean']:.2f}"
    return (
        f"<p>{w('rated')}: {s['rated']} · {w('mean')}: {mean}</p>"
        f"<table><thead><tr><th>{w('score')}</th><th>{w('count')}</th><th></th></tr></thead>"
        f"<tbody>{bars}</tbody></table>"
    )


def _changes(changes: list[dict[str, Any]], w, e) -> str:
    if not changes:
        return f"<p>{w('no_changes')}</p>"
    rows = "".join(
        f'<tr><td class="l">{e(c["name"])}</td><td class="l">{e(w(c["figure"]))}</td>'
        f"<td>{show(c['figure'], c['old'])}</td><td>{show(c['figure'], c['new'])}</td></tr>"
        for c in changes
    )
    return (
        f'<table><thead><tr><th class="l">{w("unit")}</th><th class="l">{w("figure")}</th>'
        f"<th>{w('old')}</th><th>{w('new')}</th></tr></thead><tbody>{rows}</tbody></table>"
    )
