"""The demo's people and teams, and a year of generated case history.

``seed_people`` creates the "1+5" service teams of the seed articles (a community committee
per community; a walking team, party volunteers, social forces and deputies per
subdistrict; one district work team) and the accounts that use them: an admin, a planner,
supervisors at district, subdistrict and community level, a grid worker per grid and a
member per team, all with one shared demo password.

``generate_case_history`` writes a year of cases as grid work would produce them: located
in residential compounds weighted by population (more in the old town), with seasonal
peaks per domain, weekday and working-hour rhythms, and the closed loop of the workflow
(report, accept or reject, dispatch, start, handle, verify, rework, escalate, rate) with
deadlines from the taxonomy. The overall resolution rate (closed / accepted) is calibrated
to the seed article's 98.1% (790 of 805). Everything is vectorised with numpy and loaded
with COPY, streamed while it is generated, inside the caller's transaction.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from sqlalchemy import Connection, text

from gis_service.auth.passwords import hash_password
from gis_service.auth.principal import Role
from gis_service.cases.workflow import OPEN_STATUSES, PRIORITIES, Status
from gis_service.demo import hierarchy
from gis_service.units.codes import CODE_LENGTH, HANDLING_LEVELS, Level, ancestors, depth
from gis_service.units.codes import LEVELS as LEVEL_LIST

DEMO_PASSWORD = "demo-2026"
DEFAULT_TZ = "Asia/Shanghai"
# Seed 001: grid walks found 805 problems and resolved 790.
TARGET_RESOLUTION = 790 / 805
OLD_TOWN = (113.672, 34.775)  # lon, lat: the old town between 经三路 and 花园路
CHUNK_CASES = 50_000
CHUNK_EVENTS = 250_000
BULK_FROM = 100_000

Progress = Callable[[str], None]

# ---------------------------------------------------------------------------------------
# People and teams

SUBDISTRICT_TEAMS = {
    "walking_team": "走访队",
    "party_volunteers": "党员志愿服务队",
    "social_forces": "社会力量服务队",
    "deputies": "人大代表政协委员联络站",
}


@dataclass
class People:
    """What seed_people made (or found already there) for the demo district."""

    teams: int
    users: int
    password: str
    usernames: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.teams} teams, {self.users} users (password {self.password!r}; e.g. "
            + ", ".join(f"{k} {v}" for k, v in self.usernames.items())
            + ")"
        )


def seed_people(
    conn: Connection, district_code: str = "410105", password: str = DEMO_PASSWORD
) -> People:
    """Teams and accounts for the demo district. Idempotent: what exists is kept."""
    units = conn.execute(
        text(
            "SELECT code, level, name FROM admin_unit WHERE code LIKE :p "
            "AND level = ANY(:levels) ORDER BY code"
        ),
        {"p": district_code + "%", "levels": LEVELS},
    ).all()
    by_level: dict[str, list[tuple[str, str]]] = {}
    for code, level, name in units:
        by_level.setdefault(level, []).append((code, name))
    if not by_level.get("district") or not by_level.get("grid"):
        raise ValueError(f"no grid below district {district_code}: load the demo first")
    district_name = by_level["district"][0][1]
    subs = by_level.get("subdistrict", [])
    comms = by_level.get("community", [])
    grids = by_level["grid"]

    teams: list[tuple[str, str, str]] = []  # name, kind, unit_code
    for code, name in comms:
        teams.append((name.removesuffix("社区") + "社区两委", "community_committee", code))
    for code, name in subs:
        teams.extend((name + zh, kind, code) for kind, zh in SUBDISTRICT_TEAMS.items())
    teams.append((district_name + "区直工作队", "district_work_team", district_code))
    conn.execute(
        text(
            """
        INSERT INTO team (name, kind, unit_code)
        SELECT * FROM unnest(CAST(:names AS text[]), CAST(:kinds AS text[]),
                             CAST(:units AS text[]))
        ON CONFLICT (unit_code, name) DO NOTHING
        """
        ),
        {
            "names": [t[0] for t in teams],
            "kinds": [t[1] for t in teams],
            "units": [t[2] for t in teams],
        },
    )
    wanted = {(t[2], t[0]) for t in teams}
    team_rows = [
        r
        for r in conn.execute(
            text("SELECT id, unit_code, name, kind FROM team WHERE unit_code LIKE :p ORDER BY id"),
            {"p": district_code + "%"},
        ).all()
        if (r.unit_code, r.name) in wanted
    ]

    rng = np.random.default_rng(int(district_code) * 7 + 11)
    staff = dict(
        conn.execute(
            text(
                """
        SELECT DISTINCT ON (unit_code) unit_code, name FROM unit_staff
         WHERE role = 'grid_worker' AND unit_code LIKE :p ORDER BY unit_code, sort
        """
            ),
            {"p": district_code + "%"},
        ).all()
    )
    # username, display name, role, scope (or None), team id (or None), phone
    users: list[tuple[str, str, str, str | None, int | None, str | None]] = [
        ("admin", "系统管理员", "admin", None, None, None),
        ("planner", hierarchy._person(rng), "planner", district_code, None, hierarchy._phone(rng)),
    ]
    for code, _name in [*by_level["district"], *subs, *comms]:
        users.append(
            (f"sup{code}", hierarchy._person(rng), "supervisor", code, None, hierarchy._phone(rng))
        )
    for code, _name in grids:
        users.append(
            (
                f"gw{code}",
                staff.get(code) or hierarchy._person(rng),
                "grid_worker",
                code,
                None,
                hierarchy._phone(rng),
            )
        )
    for t in team_rows:
        users.append(
            (
                f"team{t.id}",
                hierarchy._person(rng),
                "team_member",
                None,
                t.id,
                hierarchy._phone(rng),
            )
        )
    names = [u[0] for u in users]
    existing = conn.execute(
        text("SELECT count(*) FROM app_user WHERE username = ANY(:u)"), {"u": names}
    ).scalar_one()
    if existing < len(users):
        # One argon2 hash (about 50 ms) shared by every demo account.
        pw_hash = hash_password(password)
        conn.execute(
            text(
                """
            INSERT INTO app_user (username, password_hash, display_name, role, scopes,
                                  team_id, phone)
            SELECT u, :hash, d, r, CASE WHEN s IS NULL THEN '{}'::text[] ELSE ARRAY[s] END,
                   t, ph
              FROM unnest(CAST(:u AS text[]), CAST(:d AS text[]), CAST(:r AS text[]),
                          CAST(:s AS text[]), CAST(:t AS integer[]), CAST(:ph AS text[]))
                   AS x(u, d, r, s, t, ph)
            ON CONFLICT (username) DO NOTHING
            """
            ),
            {
                "hash": pw_hash,
                "u": names,
                "d": [u[1] for u in users],
                "r": [u[2] for u in users],
                "s": [u[3] for u in users],
                "t": [u[4] for u in users],
                "ph": [u[5] for u in users],
            },
        )
    n_users = conn.execute(
        text("SELECT count(*) FROM app_user WHERE username = ANY(:u)"), {"u": names}
    ).scalar_one()

    first_comm = comms[0][0] if comms else None
    example_grid = next(
        (g for g, _ in grids if first_comm and g.startswith(first_comm)), grids[0][0]
    )
    committee = next((t.id for t in team_rows if t.unit_code == first_comm), team_rows[0].id)
    usernames = {
        "admin": "admin",
        "planner": "planner",
        "district_supervisor": f"sup{district_code}",
    }
    if subs:
        usernames["subdistrict_supervisor"] = f"sup{subs[0][0]}"
    if comms:
        usernames["community_supervisor"] = f"sup{first_comm}"
    usernames["grid_worker"] = f"gw{example_grid}"
    usernames["team_member"] = f"team{committee}"
    return People(teams=len(team_rows), users=int(n_users), password=password, usernames=usernames)


# ---------------------------------------------------------------------------------------
# The shape of the work

# Share of each domain in a year of grid walks (environment and facilities most common),
# and how strongly its cases gather in the old town (exponent on the old-town factor).
DOMAINS: dict[str, tuple[float, float]] = {
    "environment": (0.29, 1.0),
    "facilities": (0.21, 1.0),
    "public_order": (0.15, 0.8),
    "safety": (0.12, 1.0),
    "courtyard": (0.08, 2.0),
    "disputes": (0.08, 0.6),
    "livelihood": (0.07, 1.2),
}
SUB_WEIGHTS = {
    "environment.garbage": 3.0,
    "environment.ads": 1.5,
    "environment.other": 0.8,
    "public_order.parking": 2.5,
    "public_order.vending": 1.5,
    "public_order.noise": 1.5,
    "safety.ebike_charging": 2.0,
    "safety.fire_lane": 1.5,
    "safety.gas": 0.5,
    "facilities.road": 1.5,
    "facilities.streetlight": 1.5,
    "facilities.stairwell": 1.5,
    "facilities.manhole": 0.7,
    "disputes.neighbours": 2.0,
    "disputes.property": 1.5,
    "disputes.wages": 0.5,
    "livelihood.elderly_alone": 2.0,
    "courtyard.sanitation": 1.5,
    "courtyard.renovation": 0.6,
}
# Who gets dispatched first, by domain: team kind -> weight.
DISPATCH = {
    "environment": {"community_committee": 6, "walking_team": 2, "party_volunteers": 2},
    "public_order": {"community_committee": 7, "walking_team": 2, "social_forces": 1},
    "safety": {
        "community_committee": 6,
        "walking_team": 1.5,
        "social_forces": 1.5,
        "district_work_team": 1,
    },
    "facilities": {"community_committee": 3, "social_forces": 3, "district_work_team": 4},
    "disputes": {"community_committee": 6, "deputies": 3, "party_volunteers": 1},
    "livelihood": {"community_committee": 4, "party_volunteers": 5, "social_forces": 1},
    "courtyard": {
        "community_committee": 3,
        "district_work_team": 4,
        "deputies": 1.5,
        "social_forces": 1.5,
    },
}
DEFAULT_DISPATCH = {"community_committee": 1.0}
KIND_ORDER = [
    "community_committee",
    "walking_team",
    "party_volunteers",
    "social_forces",
    "deputies",
    "district_work_team",
]
ESCALATION = {"courtyard": 0.08, "disputes": 0.05, "facilities": 0.04, "safety": 0.02}
REWORK = {"facilities": 0.07, "courtyard": 0.07, "environment": 0.05}
LEVELS = [lvl.value for lvl in HANDLING_LEVELS]
# Report hour of day (local): mostly 08:00-20:00 with morning and afternoon peaks.
HOURS = np.array(
    [
        0.15,
        0.08,
        0.05,
        0.05,
        0.05,
        0.1,
        0.4,
        1.2,
        3.5,
        6.0,
        6.5,
        5.5,
        3.0,
        3.0,
        5.0,
        6.0,
        6.0,
        5.0,
        3.5,
        2.5,
        1.6,
        0.9,
        0.5,
        0.25,
    ]
)
WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.65, 0.55])
SPRING_FESTIVAL = {
    2023: (1, 22),
    2024: (2, 10),
    2025: (1, 29),
    2026: (2, 17),
    2027: (2, 6),
    2028: (1, 26),
    2029: (2, 13),
    2030: (2, 3),
    2031: (1, 23),
}

SPOTS = [
    "东门",
    "西门",
    "南门",
    "北门",
    "中心广场",
    "停车棚",
    "围墙边",
    "主干道旁",
    "垃圾站旁",
    "花园内",
    "大门口",
    "南侧路边",
]
TEMPLATES: dict[str, list[str]] = {
    "environment.garbage": [
        "{p}{b}号楼门口垃圾堆放，已影响通行",
        "{p}{s}生活垃圾堆积未及时清运，气味较大",
        "{p}{s}有人倾倒建筑垃圾",
    ],
    "environment.sewage": [
        "{p}{b}号楼下水道堵塞，污水外溢",
        "{p}{s}化粪池满溢，污水流到路面",
        "{p}{b}号楼{u}单元门前污水积存",
    ],
    "environment.ads": [
        "{p}{b}号楼{u}单元楼道内小广告贴满墙面",
        "{p}{s}电线杆上乱贴小广告",
        "{p}{b}号楼外墙被喷涂办证广告",
    ],
    "environment.greenery": [
        "{p}{s}绿化带被毁种菜",
        "{p}{b}号楼旁树木被折断",
        "{p}{s}草坪被车辆碾压损毁",
    ],
    "environment.other": [
        "{p}{s}积水长期未清",
        "{p}{b}号楼楼顶堆放杂物",
        "{p}{s}餐饮油烟扰民，居民多次反映",
    ],
    "public_order.patrol": [
        "{p}{s}监控探头损坏，存在治安隐患",
        "{p}{b}号楼单元门禁损坏，外来人员随意进出",
        "{p}{s}夜间照明不足，存在安全隐患",
    ],
    "public_order.noise": [
        "{p}{b}号楼附近夜间施工噪音扰民",
        "{p}{s}广场舞音响声音过大",
        "{p}{b}号楼{u}单元住户装修噪音扰民",
    ],
    "public_order.parking": [
        "{p}{s}机动车乱停乱放，堵塞通道",
        "{p}{b}号楼门口共享单车堆积",
        "{p}{s}僵尸车长期占用车位",
    ],
    "public_order.vending": [
        "{p}{s}流动摊贩占道经营",
        "{p}{s}商户店外经营，占用人行道",
        "{p}{s}早市摊点散市后未清理",
    ],
    "safety.electrical": [
        "{p}{b}号楼{u}单元楼道电线私拉乱接",
        "{p}{s}配电箱门损坏，线路裸露",
        "{p}{b}号楼楼道照明线路老化",
    ],
    "safety.fire_lane": [
        "{p}{s}消防通道被车辆堵塞",
        "{p}{b}号楼楼道堆放杂物，堵塞疏散通道",
        "{p}{s}消防通道被摊位占用",
    ],
    "safety.ebike_charging": [
        "{p}{b}号楼{u}单元电动车在楼道内充电",
        "{p}{b}号楼住户飞线为电动车充电",
        "{p}{s}电动车停放充电无人管理",
    ],
    "safety.gas": [
        "{p}{b}号楼{u}单元楼道内有燃气异味",
        "{p}{s}燃气管道锈蚀",
        "{p}{b}号楼底商违规使用液化气罐",
    ],
    "safety.falling_objects": [
        "{p}{b}号楼外墙瓷砖松动脱落",
        "{p}{b}号楼窗台花盆有坠落危险",
        "{p}{b}号楼空调外机支架锈蚀松动",
    ],
    "facilities.road": [
        "{p}{s}路面破损坑洼，雨后积水",
        "{p}{s}人行道砖松动翘起",
        "{p}{b}号楼门前路面塌陷",
    ],
    "facilities.streetlight": [
        "{p}{s}路灯不亮",
        "{p}{b}号楼附近路灯损坏多日",
        "{p}{s}路灯灯杆倾斜",
    ],
    "facilities.manhole": [
        "{p}{s}井盖缺失，存在安全隐患",
        "{p}{b}号楼门口井盖破损",
        "{p}{s}雨水井盖下沉",
    ],
    "facilities.water": [
        "{p}{b}号楼供水管道漏水",
        "{p}{b}号楼{u}单元水压不足，高层停水",
        "{p}{s}消防栓漏水",
    ],
    "facilities.stairwell": [
        "{p}{b}号楼{u}单元楼道扶手损坏",
        "{p}{b}号楼{u}单元声控灯不亮",
        "{p}{b}号楼单元门锁损坏",
    ],
    "disputes.neighbours": [
        "{p}{b}号楼{u}单元上下楼因漏水产生纠纷",
        "{p}{b}号楼邻里因占用公共空间发生争执",
        "{p}{b}号楼{u}单元邻居因噪音问题产生矛盾",
    ],
    "disputes.property": [
        "{p}业主与物业因收费问题产生纠纷",
        "{p}居民反映物业服务不到位",
        "{p}{b}号楼业主与物业因停车管理发生争执",
    ],
    "disputes.family": [
        "{p}{b}号楼{u}单元住户家庭矛盾，需上门调解",
        "{p}{b}号楼老人赡养问题引发家庭纠纷",
        "{p}{b}号楼{u}单元夫妻矛盾激化",
    ],
    "disputes.wages": [
        "{p}附近工地工人反映被拖欠工资",
        "{p}{s}商户拖欠员工工资",
        "{p}装修工人反映工钱未结清",
    ],
    "livelihood.elderly_alone": [
        "{p}{b}号楼{u}单元独居老人行动不便，需定期探访",
        "{p}{b}号楼独居老人家中无人照料",
        "{p}{b}号楼{u}单元高龄老人需要助餐服务",
    ],
    "livelihood.disability": [
        "{p}{b}号楼{u}单元残疾人需要办理补贴",
        "{p}{b}号楼残疾居民出行需要无障碍设施",
        "{p}{b}号楼残疾人家庭需要康复帮扶",
    ],
    "livelihood.hardship": [
        "{p}{b}号楼{u}单元困难家庭需要救助",
        "{p}{b}号楼居民因病致困申请帮扶",
        "{p}{b}号楼低保户反映生活困难",
    ],
    "livelihood.employment": [
        "{p}{b}号楼居民失业需要就业帮扶",
        "{p}{b}号楼高校毕业生咨询就业岗位",
        "{p}{b}号楼{u}单元居民希望参加技能培训",
    ],
    "courtyard.no_management": [
        "{p}无物业管理，公共区域无人维护",
        "{p}原物业撤离，楼院处于失管状态",
        "{p}门岗无人值守，楼院管理缺失",
    ],
    "courtyard.sanitation": [
        "{p}楼院内卫生死角长期无人清扫",
        "{p}{s}杂物堆积，蚊蝇滋生",
        "{p}楼院化粪池长期未清掏",
    ],
    "courtyard.renovation": [
        "{p}居民申请老旧小区改造",
        "{p}{b}号楼外墙保温层脱落，居民要求改造",
        "{p}居民希望加装电梯",
    ],
    "courtyard.parking": [
        "{p}楼院内停车无序，车辆进出困难",
        "{p}{s}私装地锁占用公共车位",
        "{p}楼院车位不足，居民要求规划停车位",
    ],
}
HANDLE_NOTES = {
    "environment": ["已组织保洁人员清理完毕", "已联系环卫部门清运", "已清除并张贴文明提示"],
    "public_order": ["已现场劝导，秩序恢复", "已联合派出所处置", "已清理并安排定时巡查"],
    "safety": ["隐患已排除，已张贴安全提示", "已督促责任人整改完毕", "已联系专业单位处置"],
    "facilities": ["已联系维修单位修复", "已更换损坏设施", "已修复并设置警示标志"],
    "disputes": ["经调解双方达成一致", "已协调物业与业主协商解决", "已上门调解，矛盾化解"],
    "livelihood": ["已上门走访并落实帮扶措施", "已对接相关部门办理救助", "已安排志愿者结对帮扶"],
    "courtyard": ["已协调引入物业服务", "已纳入改造计划并答复居民", "已组织居民议事协商解决"],
}
DEFAULT_HANDLE = ["已处置完毕"]
REJECT_NOTES = [
    "不属于网格受理范围，已告知居民向相关部门反映",
    "经核实为重复上报",
    "现场核实问题不存在",
    "信息不全，无法核实具体位置",
]
FAIL_NOTES = [
    "现场核查未整改到位，退回重办",
    "问题反复出现，要求彻底整改",
    "居民反映仍未解决，退回重办",
]
ESCALATE_NOTES = ["超出本级处置能力，申请上级协调", "涉及多个部门，需上级统筹解决"]
PASS_NOTE = "现场核查已整改到位"

# Timeline slots of one case, in order; absent or not yet reached slots are NEVER.
(
    S_REPORT,
    S_DECIDE,
    S_DISPATCH,
    S_ESCALATE,
    S_REDISPATCH,
    S_START,
    S_HANDLE,
    S_VERIFY,
    S_RESTART,
    S_REHANDLE,
    S_REVERIFY,
    S_RATE,
) = range(12)
SLOTS = 12
NEVER = np.int64(2**62)


@dataclass
class CaseHistory:
    cases: int
    events: int
    photos: int
    seconds: float
    resolution_rate: float
    on_time_rate: float
    overdue_open: int
    rework: int
    rejected: int = 0
    escalated: int = 0
    open: int = 0
    satisfaction_rate: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.cases:,} cases, {self.events:,} timeline events in "
            f"{self.seconds:.1f} s: resolution {self.resolution_rate:.1%}, on time "
            f"{self.on_time_rate:.1%}, satisfaction {self.satisfaction_rate:.1%}, "
            f"{self.open:,} open ({self.overdue_open:,} overdue), {self.rework:,} rework, "
            f"{self.escalated:,} escalated, {self.rejected:,} rejected"
        )


# ---------------------------------------------------------------------------------------
# Helpers


def _lognormal(
    rng: np.random.Generator, median: float | np.ndarray, sigma: float, n: int
) -> np.ndarray:
    return np.asarray(median) * np.exp(rng.normal(0.0, sigma, n))


def _gauss(x: np.ndarray, mu: float, width: float) -> np.ndarray:
    return np.exp(-(((x - mu) / width) ** 2))


def _season(domain: str, days: list[date]) -> np.ndarray:
    """Relative report volume per day for a domain: seasons, holidays and weekdays."""
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    weekday = WEEKDAY[[d.weekday() for d in days]]
    holiday = np.zeros(len(days), dtype=bool)
    before_sf = np.zeros(len(days))  # days until the Spring Festival (for bumps before it)
    for i, d in enumerate(days):
        m, dd = SPRING_FESTIVAL.get(d.year, (2, 1))
        sf = date(d.year, m, dd)
        nxt = date(d.year + 1, *SPRING_FESTIVAL.get(d.year + 1, (2, 1)))
        holiday[i] = (
            -1 <= (d - sf).days <= 6
            or (d.month, d.day) == (1, 1)
            or (d.month == 5 and d.day <= 5)
            or (d.month == 10 and d.day <= 7)
        )
        before_sf[i] = (
            min(x for x in ((sf - d).days, (nxt - d).days) if x >= 0)
            if (sf - d).days >= 0 or (nxt - d).days >= 0
            else 400
        )
    phase = 2 * math.pi / 365.25
    if domain == "environment":  # heat, rain and flies: a summer peak
        s = 1 + 0.45 * np.cos(phase * (doy - 200))
    elif domain == "safety":  # the heating season (15 Nov - 15 Mar): gas, electricity
        s = np.where((doy >= 319) | (doy <= 74), 1.6, 1.0) + 0.3 * _gauss(before_sf, 0, 10)
    elif domain == "public_order":  # holidays and summer evenings
        s = 1 + 0.2 * np.cos(phase * (doy - 200)) + 0.9 * holiday
    elif domain == "facilities":  # the July-August rains; frozen pipes in January
        s = 1 + 0.6 * _gauss(doy, 205, 25) + 0.3 * _gauss(doy, 20, 18)
    elif domain == "disputes":  # unpaid wages before the Spring Festival
        s = 1 + 0.6 * _gauss(before_sf, 20, 15)
    elif domain == "livelihood":  # winter, and visits before the Spring Festival
        s = 1 + 0.3 * np.cos(phase * (doy - 15)) + 0.5 * _gauss(before_sf, 10, 10)
    elif domain == "courtyard":  # spring clean-ups and renovation season
        s = 1 + 0.25 * np.cos(phase * (doy - 110))
    else:
        s = np.ones(len(days))
    if domain == "public_order":
        return s * np.where(holiday, 1.0, weekday)
    return s * np.where(holiday, 0.6, weekday)


def _pick(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """n indices drawn with the given (unnormalised) weights."""
    cdf = np.cumsum(weights, dtype=float)
    return np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(weights) - 1)


def _ts(values: np.ndarray) -> list[str]:
    """Epoch seconds as timestamptz text (UTC), NEVER/negative as NULL."""
    ok = (values >= 0) & (values < NEVER)
    s = np.datetime_as_string(np.where(ok, values, 0).astype("datetime64[s]"), timezone="UTC")
    return np.where(ok, s, "\\N").tolist()


def _ints(values: np.ndarray) -> list[str]:
    """Whole numbers as text, negative ones as NULL."""
    out = list(map(str, values.tolist()))
    for i in np.flatnonzero(values < 0).tolist():
        out[i] = "\\N"
    return out


def _month_ids(conn: Connection, reported: np.ndarray) -> np.ndarray:
    """The month part of each case id (epoch seconds ``reported``): the first id of its
    reporting month, from the database's month rule (cases/partitions.py), whose
    partitions are made here if missing."""
    from gis_service.cases import partitions

    lo, hi = int(reported.min()), int(reported.max())
    months = partitions.months_between(
        conn, datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)
    )
    partitions.ensure(conn, months)
    rows = conn.execute(
        text(
            "SELECT extract(epoch FROM case_month_start(m))::bigint, case_first_id(m) "
            "FROM generate_series(CAST(:a AS integer), :b) m ORDER BY m"
        ),
        {"a": months.start, "b": months.stop - 1},
    ).all()
    starts = np.array([r[0] for r in rows], dtype=np.int64)
    first = np.array([r[1] for r in rows], dtype=np.int64)
    return first[np.searchsorted(starts, reported, side="right") - 1]


def drop_foreign_keys(conn: Connection, tables: list[str]) -> list[str]:
    """Drop the foreign keys of the tables about to be bulk-loaded; return the statements
    that put them back (and check every row, in one join each, when they run)."""
    rows = conn.execute(
        text(
            """
        SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
               format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
                      pg_get_constraintdef(oid))
          FROM pg_constraint
         WHERE contype = 'f' AND conrelid = ANY(CAST(:t AS regclass[])) AND conparentid = 0
         ORDER BY conrelid, conname
        """
        ),
        {"t": tables},
    ).all()
    for drop, _add in rows:
        conn.execute(text(drop))
    return [add for _drop, add in rows]


class _Stream:
    """A file-like object for copy_expert, fed by a producer thread so that formatting the
    next chunk overlaps with the server storing the last one."""

    def __init__(self, chunks: Iterator[str]):
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=3)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, args=(chunks,), daemon=True)
        self._thread.start()

    def _produce(self, chunks: Iterator[str]) -> None:
        try:
            for chunk in chunks:
                if self._stop.is_set():
                    return
                self._queue.put(chunk.encode())
            self._queue.put(None)
        except BaseException as exc:  # handed to the reading thread
            self._queue.put(exc)

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if item is None:
            self._done = True
            return b""
        return item

    def close(self) -> None:
        # Stop the producer, and drain so that it is not left blocked on a full queue.
        self._done = True
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)


def _copy(conn: Connection, sql: str, chunks: Iterator[str]) -> None:
    raw = conn.connection.dbapi_connection
    stream = _Stream(chunks)
    try:
        with raw.cursor() as cur:
            cur.copy_expert(sql, stream, size=1 << 20)
    finally:
        stream.close()


# ---------------------------------------------------------------------------------------
# The generator


@dataclass
class _Place:
    """The buildings cases are located in, with who and what serves each of them."""

    code: np.ndarray
    name: list[str]
    address: list[str]
    geoms: np.ndarray
    bounds: np.ndarray
    weight: np.ndarray  # population x old-town factor (before the domain's exponent)
    old_town: np.ndarray
    reporter: np.ndarray
    sup: dict[str, np.ndarray]  # level -> supervisor user id (dispatcher of that level)
    teams: dict[str, np.ndarray]  # team kind -> team id serving the building
    members: dict[int, int]  # team id -> a member's user id
    team_names: dict[int, str]


def _load_places(conn: Connection, district_code: str) -> _Place:
    rows = conn.execute(
        text(
            """
        SELECT b.code, b.name, coalesce(b.population, 0) AS population,
               ST_AsBinary(b.geom) AS wkb, coalesce(s.name, '') AS sub_name,
               coalesce(d.name, '') AS district_name
          FROM admin_unit b
          LEFT JOIN admin_unit s ON s.code = unit_at_level(b.code, 'subdistrict')
          LEFT JOIN admin_unit d ON d.code = unit_at_level(b.code, 'district')
         WHERE b.level = 'building' AND b.code LIKE :p AND coalesce(b.population, 0) > 0
         ORDER BY b.code
        """
        ),
        {"p": district_code + "%"},
    ).all()
    if not rows:
        raise ValueError(f"no populated buildings below {district_code}: load the demo first")
    codes = [r.code for r in rows]
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows])
    shapely.prepare(geoms)
    centroids = shapely.centroid(geoms)
    cx, cy = shapely.get_x(centroids), shapely.get_y(centroids)
    kx = 111_320.0 * math.cos(math.radians(OLD_TOWN[1]))
    dist = np.hypot((cx - OLD_TOWN[0]) * kx, (cy - OLD_TOWN[1]) * 110_574.0)
    old_town = 1.0 + 0.8 * np.exp(-((dist / 2500.0) ** 2))

    users = conn.execute(
        text(
            """
        SELECT id, role, scopes[1] AS scope FROM app_user
         WHERE active AND role = ANY(:roles)
           AND cardinality(scopes) = 1 AND starts_with(scopes[1], :d)
         ORDER BY id
        """
        ),
        {"d": district_code, "roles": [Role.grid_worker.value, Role.supervisor.value]},
    ).all()
    workers: dict[str, int] = {}
    sups: dict[str, int] = {}
    for u in users:
        (workers if u.role == "grid_worker" else sups).setdefault(u.scope, u.id)
    if not workers:
        raise ValueError("no grid workers: run seed_people first")
    admin = conn.execute(
        text("SELECT id FROM app_user WHERE role = 'admin' AND active ORDER BY id LIMIT 1")
    ).scalar()

    team_rows = conn.execute(
        text(
            "SELECT id, kind, unit_code, name FROM team WHERE active AND unit_code LIKE :p "
            "ORDER BY id"
        ),
        {"p": district_code + "%"},
    ).all()
    teams_at: dict[tuple[str, str], int] = {}
    for t in team_rows:
        teams_at.setdefault((t.unit_code, t.kind), t.id)

    def team_for(code: str, kind: str) -> int:
        for unit in (code, *reversed(ancestors(code))):
            if (unit, kind) in teams_at:
                return teams_at[(unit, kind)]
        return -1

    teams: dict[str, np.ndarray] = {}
    for kind in KIND_ORDER:
        teams[kind] = np.array([team_for(c, kind) for c in codes])
    # Fall back to the community committee, then to any team that serves the building.
    serving = np.array(
        [next((tid for (u, _k), tid in teams_at.items() if c.startswith(u)), -1) for c in codes]
    )
    for kind in KIND_ORDER:
        teams[kind] = np.where(
            teams[kind] >= 0,
            teams[kind],
            np.where(teams["community_committee"] >= 0, teams["community_committee"], serving),
        )
    if (teams["community_committee"] < 0).any():
        raise ValueError("buildings without any serving team: run seed_people first")

    def sup(code: str, *units: str) -> int:
        for u in units:
            if u in sups:
                return sups[u]
        return admin if admin is not None else -1

    def up(code: str, level: Level) -> list[str]:
        """The codes of the unit at ``level`` above ``code`` and of its ancestors, nearest
        first."""
        return [code[: CODE_LENGTH[lvl]] for lvl in reversed(LEVEL_LIST[: depth(level) + 1])]

    sup_by_level = {
        lvl.value: np.array([sup(c, *up(c, lvl)) for c in codes])
        for lvl in (Level.community, Level.subdistrict, Level.district)
    }
    sup_by_level[Level.grid.value] = sup_by_level[Level.community.value]
    grid_length = CODE_LENGTH[Level.grid]
    reporter = np.array(
        [
            workers.get(c[:grid_length], sup_by_level[Level.community.value][i])
            for i, c in enumerate(codes)
        ]
    )
    return _Place(
        code=np.array(codes),
        name=[r.name for r in rows],
        address=[f"{r.district_name}{r.sub_name}{r.name}" for r in rows],
        geoms=geoms,
        bounds=shapely.bounds(geoms),
        weight=np.array([r.population for r in rows], dtype=float),
        old_town=old_town,
        reporter=reporter,
        sup=sup_by_level,
        teams=teams,
        team_names={t.id: t.name for t in team_rows},
        members=dict(
            conn.execute(
                text(
                    "SELECT DISTINCT ON (team_id) team_id, id FROM app_user "
                    "WHERE role = 'team_member' AND active ORDER BY team_id, id"
                )
            ).all()
        ),
    )


def _points_in(
    rng: np.random.Generator, place: _Place, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random point inside each chosen building (rejection on its bbox)."""
    x = np.empty(len(b))
    y = np.empty(len(b))
    todo = np.arange(len(b))
    for _ in range(200):
        if not len(todo):
            break
        bb = place.bounds[b[todo]]
        px = bb[:, 0] + rng.random(len(todo)) * (bb[:, 2] - bb[:, 0])
        py = bb[:, 1] + rng.random(len(todo)) * (bb[:, 3] - bb[:, 1])
        ok = shapely.contains_xy(place.geoms[b[todo]], px, py)
        x[todo[ok]], y[todo[ok]] = px[ok], py[ok]
        todo = todo[~ok]
    if len(todo):  # pathological slivers: their representative point
        rp = shapely.point_on_surface(place.geoms[b[todo]])
        x[todo], y[todo] = shapely.get_x(rp), shapely.get_y(rp)
    return x, y


def _start_of_today(tz: ZoneInfo) -> datetime:
    return datetime.combine(datetime.now(tz).date(), dtime(0), tzinfo=tz)


def _as_end(end: Any, tz: ZoneInfo) -> datetime:
    if end is None:
        return _start_of_today(tz)
    if isinstance(end, datetime):
        return end if end.tzinfo else end.replace(tzinfo=tz)
    if isinstance(end, date):
        return datetime.combine(end, dtime(0), tzinfo=tz)
    raise TypeError("end must be a date or a datetime")


def generate_case_history(
    conn: Connection,
    *,
    n: int = 20_000,
    seed: int = 2026,
    district_code: str = "410105",
    events: bool = True,
    end: date | datetime | None = None,
    progress: Progress | None = None,
    tz: str = DEFAULT_TZ,
    bulk: bool | None = None,
    days: int = 365,
) -> CaseHistory:
    """n cases reported in the ``days`` days (default a year) before ``end`` (default: the
    start of today, local time), with their timelines when ``events``. Written in the caller's
    transaction; run seed_people first.

    ``bulk`` (default: when n >= 100,000) drops the foreign keys of cases and case_event
    for the load and adds them back afterwards, which checks every row in one join instead
    of one lookup and row lock per row (about 2x faster for the timeline). It holds
    exclusive locks on those tables until the caller's transaction ends."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    zone = ZoneInfo(tz)
    end_dt = _as_end(end, zone)
    end_s = int(end_dt.timestamp())
    now_s = max(end_s, int(time.time()))
    rng = np.random.default_rng(seed)

    say("cases: reading buildings, people, teams and categories")
    place = _load_places(conn, district_code)
    cats = conn.execute(
        text(
            """
        SELECT c.code, c.parent_code, c.name_zh, c.deadline_hours, c.handling_level
          FROM case_category c JOIN case_category p ON p.code = c.parent_code
         WHERE c.active AND p.active ORDER BY c.sort, c.code
        """
        )
    ).all()
    if not cats:
        raise ValueError("no active sub-categories: load the taxonomy first")
    cat_code = np.array([c.code for c in cats])
    cat_domain = [c.parent_code for c in cats]
    cat_hours = np.array([c.deadline_hours for c in cats], dtype=np.int64)
    cat_level = np.array([LEVELS.index(c.handling_level) for c in cats])
    domains = list(dict.fromkeys(cat_domain))
    dom_of_cat = np.array([domains.index(d) for d in cat_domain])

    # -- when, what and where -------------------------------------------------------
    say(f"cases: drawing {n:,} reports")
    span = days
    days = [end_dt.date() - timedelta(days=span - i) for i in range(span)]
    day_start = np.array(
        [int(datetime.combine(d, dtime(0), tzinfo=zone).timestamp()) for d in days], dtype=np.int64
    )
    dom_w = np.array([DOMAINS.get(d, (0.04, 1.0))[0] for d in domains])
    dom = _pick(rng, dom_w, n)
    cat = np.empty(n, dtype=np.int64)
    bld = np.empty(n, dtype=np.int64)
    day = np.empty(n, dtype=np.int64)
    for k, d in enumerate(domains):
        idx = np.flatnonzero(dom == k)
        subs = np.flatnonzero(dom_of_cat == k)
        cat[idx] = subs[
            _pick(rng, np.array([SUB_WEIGHTS.get(str(cat_code[s]), 1.0) for s in subs]), len(idx))
        ]
        exponent = DOMAINS.get(d, (0.0, 1.0))[1]
        bld[idx] = _pick(rng, place.weight * place.old_town**exponent, len(idx))
        day[idx] = _pick(rng, _season(d, days), len(idx))
    hour = _pick(rng, HOURS, n)
    reported = day_start[day] + hour * 3600 + rng.integers(0, 3600, n)
    day_end = np.append(day_start[1:], end_s)
    reported = np.minimum(reported, day_end[day] - 1)

    order = np.argsort(reported, kind="stable")
    dom, cat, bld, day, reported = dom[order], cat[order], bld[order], day[order], reported[order]
    hours = cat_hours[cat]
    deadline_s = hours * 3600
    level = cat_level[cat]

    # -- the workflow: every step's time, as if the year went on -----------------------
    say("cases: simulating the workflow")
    when = np.full((n, SLOTS), NEVER, dtype=np.int64)
    when[:, S_REPORT] = reported
    rejected = rng.random(n) < 0.02
    delay = np.clip(_lognormal(rng, 1200.0, 0.9, n), 60, 2 * 86400)
    tod = reported - day_start[day]
    # Reports outside office hours wait for the morning, unless they cannot wait.
    deferrable = hours >= 24
    next_morning = (
        np.where(tod >= 20 * 3600, day_start[day] + 86400 + 8 * 3600, day_start[day] + 8 * 3600)
        - reported
    )
    night = deferrable & ((tod < 8 * 3600) | (tod >= 20 * 3600))
    delay = np.where(night, next_morning + _lognormal(rng, 1800.0, 0.6, n), delay)
    when[:, S_DECIDE] = reported + delay.astype(np.int64)
    ok = ~rejected
    dispatched = when[:, S_DECIDE] + np.clip(_lognormal(rng, 900.0, 0.8, n), 60, 86400)
    when[ok, S_DISPATCH] = dispatched[ok].astype(np.int64)

    esc_p = np.array([ESCALATION.get(d, 0.015) for d in domains])[dom]
    escalated = ok & (level < len(LEVELS) - 1) & (rng.random(n) < esc_p)
    esc_at = when[:, S_DISPATCH] + np.maximum(600, deadline_s * _lognormal(rng, 0.08, 0.6, n))
    when[escalated, S_ESCALATE] = esc_at[escalated].astype(np.int64)
    redispatch = when[:, S_ESCALATE] + np.clip(_lognormal(rng, 2400.0, 0.7, n), 120, 86400)
    when[escalated, S_REDISPATCH] = redispatch[escalated].astype(np.int64)
    work_from = np.where(escalated, when[:, S_REDISPATCH], when[:, S_DISPATCH])

    # Dispatch to verification takes a lognormal share of the deadline (median 42%):
    # about one case in twelve overruns it, more with rework and escalations.
    work = np.maximum(1800.0, deadline_s * _lognormal(rng, 0.42, 0.55, n))
    share = rng.gamma(np.array([1.5, 5.0, 1.5]), size=(n, 3))
    share /= share.sum(axis=1, keepdims=True)
    steps = np.maximum(60, (work[:, None] * share).astype(np.int64))
    when[ok, S_START] = work_from[ok] + steps[ok, 0]
    when[ok, S_HANDLE] = when[ok, S_START] + steps[ok, 1]
    when[ok, S_VERIFY] = when[ok, S_HANDLE] + steps[ok, 2]
    rework_p = np.array([REWORK.get(d, 0.04) for d in domains])[dom]
    rework = ok & (rng.random(n) < rework_p)
    restart = when[:, S_VERIFY] + np.clip(_lognormal(rng, 5400.0, 0.8, n), 300, 3 * 86400)
    when[rework, S_RESTART] = restart[rework].astype(np.int64)
    rehandle = when[:, S_RESTART] + np.maximum(600, deadline_s * _lognormal(rng, 0.15, 0.6, n))
    when[rework, S_REHANDLE] = rehandle[rework].astype(np.int64)
    reverify = when[:, S_REHANDLE] + np.clip(_lognormal(rng, 7200.0, 0.8, n), 300, 3 * 86400)
    when[rework, S_REVERIFY] = reverify[rework].astype(np.int64)
    closed_full = np.where(rework, when[:, S_REVERIFY], when[:, S_VERIFY])
    rated = ok & (rng.random(n) < 0.8)
    rate_at = closed_full + np.clip(_lognormal(rng, 10800.0, 1.0, n), 60, 7 * 86400)
    when[rated, S_RATE] = rate_at[rated].astype(np.int64)

    # -- calibration: some cases stall, so that closed / accepted is the seed's rate ----
    happened = when < end_s
    accepted = ok & happened[:, S_DECIDE]
    closed = ok & (closed_full < end_s)
    surplus = int(closed.sum()) - round(TARGET_RESOLUTION * int(accepted.sum()))
    if surplus > 0:
        say(f"cases: calibrating ({surplus:,} cases left open)")
        cand = np.flatnonzero(closed)
        stall_w = np.array(
            [{"courtyard": 4.0, "disputes": 2.0, "facilities": 2.0}.get(d, 1.0) for d in domains]
        )[dom[cand]]
        stall_w = stall_w * np.exp((reported[cand] - end_s) / (120 * 86400.0))
        keys = np.log(rng.random(len(cand))) / stall_w  # weighted sampling (Efraimidis)
        stalled = cand[np.argpartition(-keys, surplus - 1)[:surplus]]
        at = np.array([S_START, S_HANDLE, S_VERIFY])[
            _pick(rng, np.array([0.35, 0.5, 0.15]), len(stalled))
        ]
        cols = np.arange(SLOTS)
        when[stalled] = np.where(cols[None, :] >= at[:, None], NEVER, when[stalled])
        happened = when < end_s

    last = (happened * np.arange(SLOTS)).max(axis=1)
    verify_pass = np.where(rework, S_REVERIFY, S_VERIFY)
    is_closed = happened[np.arange(n), verify_pass] & ok
    # the status a case has after each slot of its history
    status_of_slot = np.array(
        [
            Status.reported.value,
            Status.accepted.value,
            Status.dispatched.value,
            Status.accepted.value,
            Status.dispatched.value,
            Status.in_progress.value,
            Status.handled.value,
            Status.closed.value,
            Status.in_progress.value,
            Status.handled.value,
            Status.closed.value,
            Status.closed.value,
        ],
        dtype=object,
    )
    status = status_of_slot[last]
    status[(last == S_DECIDE) & rejected] = Status.rejected.value
    status[(last == S_VERIFY) & rework] = Status.dispatched.value

    accepted_at = np.where(ok & happened[:, S_DECIDE], when[:, S_DECIDE], NEVER)
    rejected_at = np.where(rejected & happened[:, S_DECIDE], when[:, S_DECIDE], NEVER)
    deadline_at = np.where(accepted_at < NEVER, accepted_at + deadline_s, NEVER)
    # A failed check sends the case back to its team: dispatched again at that moment.
    dispatched_at = np.where(
        rework & happened[:, S_VERIFY],
        when[:, S_VERIFY],
        np.where(
            happened[:, S_REDISPATCH],
            when[:, S_REDISPATCH],
            np.where(happened[:, S_DISPATCH], when[:, S_DISPATCH], NEVER),
        ),
    )
    handled_at = np.where(
        happened[:, S_REHANDLE],
        when[:, S_REHANDLE],
        np.where(happened[:, S_HANDLE], when[:, S_HANDLE], NEVER),
    )
    closed_at = np.where(is_closed, when[np.arange(n), verify_pass], NEVER)
    rework_count = (rework & happened[:, S_VERIFY]).astype(np.int64)
    escalation_count = happened[:, S_ESCALATE].astype(np.int64)
    case_level = np.minimum(level + escalation_count, len(LEVELS) - 1)
    updated_at = when[np.arange(n), last]

    # Teams: first by the domain's habits; escalated cases go one level up.
    team_a = np.empty(n, dtype=np.int64)
    for k, d in enumerate(domains):
        idx = np.flatnonzero(dom == k)
        kinds = DISPATCH.get(d, DEFAULT_DISPATCH)
        names = list(kinds)
        choice = _pick(rng, np.array([kinds[x] for x in names]), len(idx))
        for j, kind in enumerate(names):
            sel = idx[choice == j]
            team_a[sel] = place.teams[kind][bld[sel]]
    esc_first = np.where(
        level == 0,
        place.teams["walking_team"][bld],
        np.where(
            level == 1, place.teams["community_committee"][bld], place.teams["social_forces"][bld]
        ),
    )
    esc_second = np.where(
        level == 0,
        place.teams["community_committee"][bld],
        np.where(
            (level == 1) & (rng.random(n) < 0.5),
            place.teams["social_forces"][bld],
            place.teams["district_work_team"][bld],
        ),
    )
    esc_second = np.where(
        esc_second == esc_first, place.teams["district_work_team"][bld], esc_second
    )
    team_a = np.where(escalated, esc_first, team_a)
    team_b = np.where(escalated, esc_second, -1)
    current_team = np.where(
        happened[:, S_REDISPATCH],
        team_b,
        np.where(happened[:, S_DISPATCH] & ~happened[:, S_ESCALATE], team_a, -1),
    )
    # Rating: mostly 4-5; lower after rework or a late closure.
    late = is_closed & (closed_at > deadline_at)
    good = _pick(rng, np.array([0.004, 0.006, 0.02, 0.15, 0.82]), n) + 1
    poor = _pick(rng, np.array([0.02, 0.04, 0.09, 0.30, 0.55]), n) + 1
    rating = np.where(late | (rework_count > 0), poor, good)
    rated_now = happened[:, S_RATE]
    rated_at = np.where(rated_now, when[:, S_RATE], NEVER)
    rating = np.where(rated_now, rating, -1)

    # Priority: gas is urgent, safety often high, the rest mostly normal.
    pri_names = np.array([p.value for p in PRIORITIES], dtype=object)
    safety_dom = np.array([d == "safety" for d in domains])[dom]
    priority = pri_names[
        np.where(
            safety_dom,
            _pick(rng, np.array([0.0, 0.65, 0.3, 0.05]), n),
            _pick(rng, np.array([0.05, 0.87, 0.07, 0.01]), n),
        )
    ]
    gas = cat_code[cat] == "safety.gas"
    priority[gas] = pri_names[2 + (rng.random(int(gas.sum())) < 0.6)]

    # -- numbers, places and words ------------------------------------------------------
    seq = np.arange(n) - np.searchsorted(day, day, side="left")
    base = dict(
        conn.execute(
            text(
                """
        SELECT substr(case_no, :o, 8), max(right(case_no, 6)::int) FROM cases
         WHERE case_no >= :lo AND case_no < :hi GROUP BY 1
        """
            ),
            {
                "o": len(district_code) + 1,
                "lo": district_code + days[0].strftime("%Y%m%d"),
                "hi": district_code + end_dt.strftime("%Y%m%d") + "999999",
            },
        ).all()
    )
    day_str = np.array([d.strftime("%Y%m%d") for d in days], dtype=object)
    offset = np.array([base.get(s, 0) for s in day_str], dtype=np.int64)
    numbers = seq + 1 + offset[day]
    if numbers.max() > 999_999:
        raise ValueError("more than 999,999 cases on one day: the case number overflows")

    x, y = _points_in(rng, place, bld)
    first_id = conn.execute(
        text("SELECT nextval(pg_get_serial_sequence('cases', 'id'))")
    ).scalar_one()
    if n > 1:
        # Sequences are not transactional: reserving the block is safe beside live reports.
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence('cases', 'id'), :v)"),
            {"v": first_id + n - 1},
        )
    ids = _month_ids(conn, reported) + np.arange(first_id, first_id + n, dtype=np.int64)
    tmpl_choice = rng.integers(0, 3, n)
    b_no = rng.integers(1, 13, n)
    u_no = rng.integers(1, 5, n)
    spot = rng.integers(0, len(SPOTS), n)
    cat_templates = [
        TEMPLATES.get(str(c), [f"{{p}}{{s}}发现{cats[i].name_zh}问题，请尽快处理"])
        for i, c in enumerate(cat_code)
    ]

    def case_chunks() -> Iterator[str]:
        for lo in range(0, n, CHUNK_CASES):
            s = slice(lo, min(n, lo + CHUNK_CASES))
            b = bld[s]
            desc = [
                cat_templates[c][t % len(cat_templates[c])].format(
                    p=place.name[bi], b=bn, u=un, s=SPOTS[sp]
                )
                for c, t, bi, bn, un, sp in zip(
                    cat[s].tolist(),
                    tmpl_choice[s].tolist(),
                    b.tolist(),
                    b_no[s].tolist(),
                    u_no[s].tolist(),
                    spot[s].tolist(),
                    strict=True,
                )
            ]
            geom = shapely.to_wkb(
                shapely.set_srid(shapely.points(x[s], y[s]), 4326), hex=True, include_srid=True
            ).tolist()
            case_no = (district_code + day_str[day[s]]).tolist()
            case_no = [
                f"{a}{int(m):06d}" for a, m in zip(case_no, numbers[s].tolist(), strict=True)
            ]
            hist_a, hist_b = team_a[s], team_b[s]
            history = np.where(
                happened[s, S_REDISPATCH] & (hist_a != hist_b),
                np.char.add(
                    np.char.add(np.char.add("{", hist_a.astype(str)), ","),
                    np.char.add(hist_b.astype(str), "}"),
                ),
                np.where(
                    happened[s, S_DISPATCH],
                    np.char.add(np.char.add("{", hist_a.astype(str)), "}"),
                    "{}",
                ),
            ).tolist()
            address = [place.address[i] for i in b.tolist()]
            cols = [
                _ints(ids[s]),
                [district_code] * len(case_no),
                case_no,
                cat_code[cat[s]].tolist(),
                status[s].tolist(),
                priority[s].tolist(),
                desc,
                address,
                geom,
                place.code[b].tolist(),
                np.array(LEVELS)[case_level[s]].tolist(),
                _ints(place.reporter[b]),
                _ints(current_team[s]),
                history,
                _ts(reported[s]),
                _ts(accepted_at[s]),
                _ts(deadline_at[s]),
                _ts(dispatched_at[s]),
                _ts(handled_at[s]),
                _ts(closed_at[s]),
                _ts(rejected_at[s]),
                _ints(rework_count[s]),
                _ints(escalation_count[s]),
                _ints(rating[s]),
                _ts(rated_at[s]),
                _ts(updated_at[s]),
            ]
            yield "\n".join(map("\t".join, zip(*cols, strict=True))) + "\n"

    restore: list[str] = []
    if bulk if bulk is not None else n >= BULK_FROM:
        restore = drop_foreign_keys(conn, ["cases", "case_event"] if events else ["cases"])
    say(f"cases: writing {n:,} cases")
    _copy(
        conn,
        """
        COPY cases (id, district_code, case_no, category_code, status, priority, description,
                    address, geom, unit_code, handling_level, reporter_id, team_id, team_history,
                    reported_at, accepted_at, deadline_at, dispatched_at, handled_at,
                    closed_at, rejected_at, rework_count, escalation_count, rating, rated_at,
                    updated_at)
        FROM STDIN""",
        case_chunks(),
    )

    # -- the timeline -----------------------------------------------------------------
    n_events = 0
    if events:
        say("events: building the timeline")
        ev = _timeline(
            rng,
            when,
            happened,
            ids,
            rejected,
            rework,
            escalated,
            hours,
            level,
            case_level,
            dom,
            domains,
            bld,
            place,
            team_a,
            team_b,
            rating,
        )
        n_events = len(ev[0])
        say(f"events: writing {n_events:,} timeline events")
        # a year of history notifies nobody: no outbox rows for it (migration 0014)
        conn.execute(text("SELECT set_config('gis.outbox', 'off', true)"))
        _copy(
            conn,
            """
            COPY case_event (district_code, case_id, at, actor_id, action, from_status,
                             to_status, note, data)
            FROM STDIN""",
            _event_chunks(district_code, *ev),
        )
    if restore:
        say("cases: adding the foreign keys back (checking every row)")
        for stmt in restore:
            conn.execute(text(stmt))
    say("cases: analysing")
    conn.execute(text("ANALYZE cases"))
    if events:
        conn.execute(text("ANALYZE case_event"))

    n_accepted = int((accepted_at < NEVER).sum())
    n_closed = int(is_closed.sum())
    is_open = np.isin(status, [s.value for s in OPEN_STATUSES])
    n_rated = int(rated_now.sum())
    return CaseHistory(
        cases=n,
        events=n_events,
        photos=0,
        seconds=time.perf_counter() - started,
        resolution_rate=n_closed / n_accepted if n_accepted else 0.0,
        on_time_rate=float((is_closed & ~late).sum() / n_closed) if n_closed else 0.0,
        overdue_open=int((is_open & (deadline_at < now_s)).sum()),
        rework=int((rework_count > 0).sum()),
        rejected=int((status == "rejected").sum()),
        escalated=int((escalation_count > 0).sum()),
        open=int(is_open.sum()),
        satisfaction_rate=float((rating[rated_now] >= 4).sum() / n_rated) if n_rated else 0.0,
    )


def _timeline(
    rng: np.random.Generator,
    when: np.ndarray,
    happened: np.ndarray,
    ids: np.ndarray,
    rejected: np.ndarray,
    rework: np.ndarray,
    escalated: np.ndarray,
    hours: np.ndarray,
    level: np.ndarray,
    case_level: np.ndarray,
    dom: np.ndarray,
    domains: list[str],
    bld: np.ndarray,
    place: _Place,
    team_a: np.ndarray,
    team_b: np.ndarray,
    rating: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every event that happened, in time order: case id, time, actor, and the rest of the
    row (action, statuses, note, data) as one interned string."""
    vocab: dict[str, int] = {}

    def v(action: str, frm: str | None, to: str | None, note: str | None, data: str) -> int:
        row = "\t".join([action, frm or "\\N", to or "\\N", note or "\\N", data])
        return vocab.setdefault(row, len(vocab))

    reporter = place.reporter[bld]
    dispatcher = {lvl: place.sup[lvl][bld] for lvl in LEVELS}

    def dispatcher_at(lv: np.ndarray) -> np.ndarray:
        out = dispatcher["community"].copy()
        out[lv == 2] = dispatcher["subdistrict"][lv == 2]
        out[lv == 3] = dispatcher["district"][lv == 3]
        return out

    member = np.full(max(int(team_a.max()), int(team_b.max()), 0) + 1, -1, dtype=np.int64)
    for tid, uid in place.members.items():
        if tid < len(member):
            member[tid] = uid
    cur_team = np.where(escalated, team_b, team_a)
    parts: list[tuple[np.ndarray, ...]] = []

    def emit(slot: int, mask: np.ndarray, actor: np.ndarray, kind: np.ndarray | int) -> None:
        m = mask & happened[:, slot]
        k = np.broadcast_to(np.asarray(kind, dtype=np.int64), m.shape)
        parts.append((ids[m], when[m, slot], actor[m], k[m]))

    all_ = np.ones(len(ids), dtype=bool)
    emit(S_REPORT, all_, reporter, v("report", None, "reported", None, '{"source": "app"}'))
    accept_lut = np.array(
        [
            v("accept", "reported", "accepted", None, f'{{"deadline_hours": {h}}}')
            for h in range(int(hours.max()) + 1)
        ]
    )
    reject_note = rng.integers(0, len(REJECT_NOTES), len(ids))
    reject_lut = np.array([v("reject", "reported", "rejected", r, "{}") for r in REJECT_NOTES])
    decider = dispatcher_at(level)
    emit(S_DECIDE, ~rejected, decider, accept_lut[hours])
    emit(S_DECIDE, rejected, decider, reject_lut[reject_note])
    dispatch_lut = np.array(
        [
            v(
                "dispatch",
                "accepted",
                "dispatched",
                None,
                json.dumps(
                    {"team_id": t, "team_name": place.team_names.get(t, "")}, ensure_ascii=False
                ),
            )
            for t in range(len(member))
        ]
    )
    emit(S_DISPATCH, all_, decider, dispatch_lut[team_a])
    esc_note = rng.integers(0, len(ESCALATE_NOTES), len(ids))
    esc_lut = np.array(
        [
            [
                v(
                    "escalate",
                    "dispatched",
                    "accepted",
                    note,
                    f'{{"from_level": "{LEVELS[lv]}", "to_level": "{LEVELS[lv + 1]}"}}',
                )
                for note in ESCALATE_NOTES
            ]
            for lv in range(len(LEVELS) - 1)
        ]
    )
    emit(S_ESCALATE, escalated, member[team_a], esc_lut[np.minimum(level, 2), esc_note])
    emit(S_REDISPATCH, escalated, dispatcher_at(case_level), dispatch_lut[np.maximum(team_b, 0)])
    team_actor = member[cur_team]
    start = v("start", "dispatched", "in_progress", None, "{}")
    emit(S_START, all_, team_actor, start)
    notes = [HANDLE_NOTES.get(d, DEFAULT_HANDLE) for d in domains]
    handle_lut = np.array(
        [
            [v("handle", "in_progress", "handled", ns[j % len(ns)], "{}") for j in range(3)]
            for ns in notes
        ]
    )
    handle_note = rng.integers(0, 3, len(ids))
    emit(S_HANDLE, all_, team_actor, handle_lut[dom, handle_note])
    fail_lut = np.array(
        [v("verify", "handled", "dispatched", f, '{"passed": false}') for f in FAIL_NOTES]
    )
    passed = v("verify", "handled", "closed", PASS_NOTE, '{"passed": true}')
    emit(S_VERIFY, ~rework, reporter, passed)
    emit(S_VERIFY, rework, reporter, fail_lut[rng.integers(0, len(FAIL_NOTES), len(ids))])
    emit(S_RESTART, all_, team_actor, start)
    emit(S_REHANDLE, all_, team_actor, handle_lut[dom, (handle_note + 1) % 3])
    emit(S_REVERIFY, all_, reporter, passed)
    # Residents rate through the grid worker, or themselves through the public link.
    score_lut = np.array(
        [v("rate", "closed", "closed", None, f'{{"score": {s}}}') for s in range(6)]
    )
    link_lut = np.array(
        [
            v("rate", "closed", "closed", None, f'{{"score": {s}, "via": "public_link"}}')
            for s in range(6)
        ]
    )
    by_link = rng.random(len(ids)) < 0.4
    emit(S_RATE, ~by_link, reporter, score_lut[np.maximum(rating, 0)])
    emit(S_RATE, by_link, np.full(len(ids), -1), link_lut[np.maximum(rating, 0)])

    case_id = np.concatenate([p[0] for p in parts])
    at = np.concatenate([p[1] for p in parts])
    actor = np.concatenate([p[2] for p in parts])
    kind = np.concatenate([p[3] for p in parts])
    order = np.lexsort((case_id, at))
    table = np.array(list(vocab), dtype=object)
    return case_id[order], at[order], actor[order], table[kind[order]]


def _event_chunks(
    district_code: str, case_id: np.ndarray, at: np.ndarray, actor: np.ndarray, rest: np.ndarray
) -> Iterator[str]:
    """The timeline's COPY lines; every case of a run is in ``district_code`` (its
    buildings are, ``_load_places``), which the cases' CHECK confirms."""
    for lo in range(0, len(case_id), CHUNK_EVENTS):
        s = slice(lo, lo + CHUNK_EVENTS)
        n = len(case_id[s])
        cols = [
            [district_code] * n,
            _ints(case_id[s]),
            _ts(at[s]),
            _ints(actor[s]),
            rest[s].tolist(),
        ]
        yield "\n".join(map("\t".join, zip(*cols, strict=True))) + "\n"
