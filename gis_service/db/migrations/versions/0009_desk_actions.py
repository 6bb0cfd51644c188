"""The desk's case actions (issue 15 item 4): the member of the team a case is assigned to
(指派, ``cases.assignee_id``) and reply and reason templates per category (回复模板/理由模板,
``case_template``), seeded with a few defaults. The rules live in cases/workflow.py (the
actions), cases/actions.py and cases/templates.py; word lists are rendered from
gis_service/vocabulary.py as in the earlier migrations.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy import text

from gis_service.vocabulary import sql_constants

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

V = sql_constants()

#: (category code or None = any category, action, text_zh, text_en): the defaults; a
#: domain code applies to all its sub-categories (cases/templates.py)
DEFAULT_TEMPLATES: tuple[tuple[str | None, str, str, str], ...] = (
    (
        None,
        "reject",
        "经核实，该问题不属于网格管理受理范围，不予立案。",
        "On checking, this problem is outside what grid management handles: not accepted.",
    ),
    (
        None,
        "reject",
        "现场核实未发现所报问题。",
        "The reported problem was not found on site.",
    ),
    (
        "public_order",
        "reject",
        "属于民事纠纷，建议当事人通过人民调解或诉讼途径解决。",
        "A civil dispute: the parties are advised to use mediation or the courts.",
    ),
    (
        None,
        "return",
        "该问题不属于本队伍职责范围，请重新派遣。",
        "This problem is not within our team's duties: please dispatch it again.",
    ),
    (
        None,
        "reply",
        "已收到督办，正在加紧处置，将尽快完成。",
        "Urging received: the work is being speeded up and will be finished soon.",
    ),
    (
        None,
        "void",
        "上报信息有误，经核实问题不存在，予以作废。",
        "The report was mistaken and the problem does not exist: voided.",
    ),
    (
        None,
        "note",
        "已电话联系上报人核实情况。",
        "Called the reporter to check the details.",
    ),
    (
        "environment",
        "comment",
        "已联系环卫人员，正在清运处理。",
        "Sanitation workers are on their way to clear it.",
    ),
    (
        "environment.garbage",
        "handle",
        "垃圾已清运完毕，现场已清理干净。",
        "The rubbish has been removed and the site cleaned.",
    ),
    (
        "facilities.streetlight",
        "handle",
        "路灯已修复，恢复正常照明。",
        "The street light is repaired and working again.",
    ),
)


def upgrade() -> None:
    # 指派: the member of the team the case is dispatched to who does the work; a dispatch
    # to a team the member is not in clears it (cases/actions.py). A foreign key, unlike
    # the report's columns (0002): it is written by a dispatcher's action, never by the
    # report path, and a NULL needs no check.
    op.execute("ALTER TABLE cases ADD COLUMN assignee_id integer REFERENCES app_user (id)")
    op.execute(
        f"""
        CREATE TABLE case_template (
            id             serial PRIMARY KEY,
            -- NULL: any category; a domain code: every sub-category of it. No foreign key:
            -- the taxonomy is loaded after the migrations (and replaced by `gis-service
            -- categories load`); the API checks the code (cases/templates.py).
            category_code  text CHECK (category_code ~ {V["category_code_pattern"]}),
            action         text NOT NULL CHECK (action IN {V["template_actions"]}),
            text_zh        text NOT NULL CHECK (length(btrim(text_zh)) BETWEEN 1 AND 2000),
            text_en        text CHECK (length(btrim(text_en)) BETWEEN 1 AND 2000),
            active         boolean NOT NULL DEFAULT true,
            created_at     timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX case_template_action_idx ON case_template (action) WHERE active")
    insert = text(
        "INSERT INTO case_template (category_code, action, text_zh, text_en) "
        "VALUES (:code, :action, :zh, :en)"
    )
    for code, action, zh, en in DEFAULT_TEMPLATES:
        op.get_bind().execute(insert, {"code": code, "action": action, "zh": zh, "en": en})


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS case_template")
    op.execute("ALTER TABLE cases DROP COLUMN IF EXISTS assignee_id")
