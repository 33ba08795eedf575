"""The tutor for beginners: the language of the bot's texts, role-play scenes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCENES = (
    "pub",
    "doctor",
    "station",
    "foreign_police",
    "shop",
    "job_interview",
    "flat",
    "hairdresser",
)
SCENE_CHECK = "scene IN ({})".format(", ".join(f"'{scene}'" for scene in SCENES))


def upgrade() -> None:
    # Batch mode: SQLite adds a column with a CHECK constraint only by copying the table.
    with op.batch_alter_table("user_settings") as batch:
        batch.add_column(sa.Column("ui_language", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("scene", sa.String(length=32), nullable=True))
        batch.create_check_constraint(
            op.f("ck_user_settings_ui_language_allowed"), "ui_language IN ('czech', 'native')"
        )
        batch.create_check_constraint(op.f("ck_user_settings_scene_allowed"), SCENE_CHECK)
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("scene", sa.String(length=32), nullable=True))
        batch.create_check_constraint(op.f("ck_messages_scene_allowed"), SCENE_CHECK)


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint(op.f("ck_messages_scene_allowed"), type_="check")
        batch.drop_column("scene")
    with op.batch_alter_table("user_settings") as batch:
        batch.drop_constraint(op.f("ck_user_settings_scene_allowed"), type_="check")
        batch.drop_constraint(op.f("ck_user_settings_ui_language_allowed"), type_="check")
        batch.drop_column("scene")
        batch.drop_column("ui_language")
