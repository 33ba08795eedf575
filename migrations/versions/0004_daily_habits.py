"""Coming back every day: reminders, streak freezes, SM-2 learning steps, saving by choice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATE_CHECK = "state IN ('new', 'learning', 'review', 'relearning')"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("streak_freezes", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("blocked", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("user_settings") as batch:
        batch.add_column(
            sa.Column("autosave", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("reminder_time", sa.Time(), nullable=True))
        batch.add_column(sa.Column("next_reminder_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(
            op.f("ix_user_settings_next_reminder_at"), ["next_reminder_at"], unique=False
        )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("new_words", sa.JSON(), nullable=True))
    with op.batch_alter_table("saved_words") as batch:
        batch.add_column(
            sa.Column("state", sa.String(length=16), server_default="new", nullable=False)
        )
        batch.add_column(sa.Column("step", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("introduced_on", sa.Date(), nullable=True))
        batch.create_check_constraint(op.f("ck_saved_words_state_allowed"), STATE_CHECK)
    # Cards answered before are in review (a lapsed one kept its interval); the rest are new.
    op.execute("UPDATE saved_words SET state = 'review' WHERE repetitions > 0 OR interval_days > 0")
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_reminders_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
        sa.UniqueConstraint("user_id", "day", name=op.f("uq_reminders_user_id_day")),
    )
    op.create_index(op.f("ix_reminders_sent_at"), "reminders", ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_reminders_sent_at"), table_name="reminders")
    op.drop_table("reminders")
    with op.batch_alter_table("saved_words") as batch:
        batch.drop_constraint(op.f("ck_saved_words_state_allowed"), type_="check")
        batch.drop_column("introduced_on")
        batch.drop_column("due_at")
        batch.drop_column("step")
        batch.drop_column("state")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("new_words")
    with op.batch_alter_table("user_settings") as batch:
        batch.drop_index(op.f("ix_user_settings_next_reminder_at"))
        batch.drop_column("next_reminder_at")
        batch.drop_column("reminder_time")
        batch.drop_column("autosave")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("blocked")
        batch.drop_column("streak_freezes")
