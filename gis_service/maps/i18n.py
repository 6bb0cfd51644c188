"""Page text in Simplified Chinese (default) and English."""

from __future__ import annotations

from gis_service.cases.workflow import STATUS_LABELS

LANGS = ("zh", "en")

TEXT: dict[str, dict[str, str]] = {
    "resolution.title": {"zh": "问题办结率", "en": "Case resolution rate"},
    "cases.title": {"zh": "问题分布", "en": "Cases"},
    "coverage.title": {
        "zh": "千米党组织覆盖与一刻钟生活圈",
        "en": "One-kilometre reach and quarter-hour living circle",
    },
    "units.title": {"zh": "四级网格与网格员", "en": "The four-level grid and its people"},
    "hotspots.title": {"zh": "问题热点与反复发生点位", "en": "Hotspots and recurring spots"},
    "gi_star": {"zh": "热点分析（Gi*）", "en": "Hotspot analysis (Gi*)"},
    "gi_star_z": {"zh": "Gi* Z 值", "en": "Gi* z-score"},
    "gi_bin.3": {"zh": "热点（99% 置信）", "en": "Hot spot, 99 % confidence"},
    "gi_bin.2": {"zh": "热点（95% 置信）", "en": "Hot spot, 95 % confidence"},
    "gi_bin.1": {"zh": "热点（90% 置信）", "en": "Hot spot, 90 % confidence"},
    "gi_bin.0": {"zh": "不显著", "en": "Not significant"},
    "gi_bin.-1": {"zh": "冷点（90% 置信）", "en": "Cold spot, 90 % confidence"},
    "gi_bin.-2": {"zh": "冷点（95% 置信）", "en": "Cold spot, 95 % confidence"},
    "gi_bin.-3": {"zh": "冷点（99% 置信）", "en": "Cold spot, 99 % confidence"},
    "gi_none": {"zh": "无统计", "en": "No statistic"},
    "spots": {"zh": "反复发生点位", "en": "Recurring spots"},
    "cases_n": {"zh": "问题数", "en": "Cases"},
    "open_cases": {"zh": "未办结", "en": "Still open"},
    "spots_rule": {
        "zh": "同类问题 {radius} 米内 {days} 天内出现至少 {n} 次",
        "en": "One category at least {n} times within {radius} m in {days} days",
    },
    "walks.title": {"zh": "巡查地图", "en": "Grid walks"},
    "walks": {"zh": "巡查次数", "en": "Walks"},
    "walk_streets": {"zh": "巡查路线（越粗越常走）", "en": "Walked streets (thicker: more often)"},
    "distance_km": {"zh": "巡查里程（千米）", "en": "Distance walked (km)"},
    "visited_share_7d": {"zh": "近7天楼栋走访率", "en": "Buildings visited, last 7 days"},
    "visited_share_30d": {"zh": "近30天楼栋走访率", "en": "Buildings visited, last 30 days"},
    "problems_per_km": {"zh": "每千米发现问题", "en": "Problems per km"},
    "days_since": {"zh": "距上次走访（天）", "en": "Days since the last visit"},
    "walk_bin.1": {"zh": "1天内", "en": "Within a day"},
    "walk_bin.7": {"zh": "7天内", "en": "Within 7 days"},
    "walk_bin.14": {"zh": "8–14天", "en": "8–14 days"},
    "walk_bin.30": {"zh": "15–30天", "en": "15–30 days"},
    "walk_bin.older": {"zh": "超过30天", "en": "Over 30 days"},
    "walk_bin.never": {"zh": "从未走访", "en": "Never visited"},
    "walk_note": {
        "zh": "里程 {km} 千米；楼栋走访率 7天 {s7}，30天 {s30}；每千米问题 {ppk}",
        "en": "{km} km walked; buildings visited {s7} in 7 days, {s30} in 30 days; "
        "{ppk} problems per km",
    },
    "worker": {"zh": "网格员", "en": "Worker"},
    "login.title": {"zh": "登录", "en": "Sign in"},
    "login.username": {"zh": "用户名", "en": "Username"},
    "login.password": {"zh": "密码", "en": "Password"},
    "login.submit": {"zh": "登录", "en": "Sign in"},
    "login.failed": {"zh": "用户名或密码错误", "en": "Wrong username or password"},
    "data_as_of": {"zh": "数据截至", "en": "Data as of"},
    "filters": {"zh": "筛选", "en": "Filters"},
    "level": {"zh": "层级", "en": "Level"},
    "period": {"zh": "时段", "en": "Period"},
    "unit": {"zh": "范围", "en": "Within"},
    "all": {"zh": "全部", "en": "all"},
    "viewer": {"zh": "当前用户", "en": "Signed in as"},
    "sign_out": {"zh": "退出", "en": "Sign out"},
    "lang_switch": {"zh": "English", "en": "中文"},
    "district": {"zh": "区", "en": "District"},
    "subdistrict": {"zh": "街道", "en": "Subdistrict"},
    "community": {"zh": "社区", "en": "Community"},
    "grid": {"zh": "网格", "en": "Grid"},
    "building": {"zh": "楼栋", "en": "Building"},
    "reported": {"zh": "上报", "en": "Reported"},
    "accepted": {"zh": "立案", "en": "Accepted"},
    "closed": {"zh": "结案", "en": "Closed"},
    "resolution_rate": {"zh": "办结率", "en": "Resolution rate"},
    "on_time_rate": {"zh": "按期办结率", "en": "On-time rate"},
    "rework_rate": {"zh": "返工率", "en": "Rework rate"},
    "satisfaction_rate": {"zh": "满意率", "en": "Satisfaction"},
    "overdue_now": {"zh": "当前超期", "en": "Overdue now"},
    "overdue_cases": {"zh": "超期未办结问题", "en": "Overdue open cases"},
    "no_cases": {"zh": "无问题", "en": "no cases"},
    "click_drill": {"zh": "点击单元查看下一级", "en": "Click a unit to see the level below"},
    "cases.legend": {"zh": "问题状态", "en": "Case status"},
    "cluster": {"zh": "聚合（数字为问题数）", "en": "Grouped (number of cases)"},
    # status names from their home (cases/workflow.py)
    **{f"status.{s}": {"zh": zh, "en": en} for s, (zh, en) in STATUS_LABELS.items()},
    "timeline": {"zh": "办理过程", "en": "Timeline"},
    "category": {"zh": "类别", "en": "Category"},
    "status": {"zh": "状态", "en": "Status"},
    "roster": {"zh": "网格员", "en": "Roster"},
    "population": {"zh": "人口", "en": "Residents"},
    "party_distance": {
        "zh": "到最近党组织步行距离",
        "en": "Walk to the nearest party organisation",
    },
    "gap": {"zh": "千米覆盖缺口", "en": "Beyond one kilometre"},
    "circles": {"zh": "一刻钟服务圈", "en": "Quarter-hour circles"},
    "complete_share": {"zh": "六类服务齐全的居民比例", "en": "Residents with all six services"},
    "most_missing": {"zh": "最常缺少", "en": "Most often missing"},
    "sites": {"zh": "建议选址", "en": "Proposed sites"},
    "adds": {"zh": "新增覆盖人口", "en": "Residents added"},
    "basemap": {"zh": "底图（本地）", "en": "Basemap (local)"},
    "m": {"zh": "米", "en": "m"},
}


def t(key: str, lang: str) -> str:
    entry = TEXT.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry["zh"]


def table(keys: list[str], lang: str) -> dict[str, str]:
    return {k: t(k, lang) for k in keys}
