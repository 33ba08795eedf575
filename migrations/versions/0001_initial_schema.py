"""Initial schema: learners, settings, messages, daily stats, saved words.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 23:24:28.967172
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("first_name", sa.String(length=128), nullable=True),
        sa.Column("native_language", sa.String(length=8), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("onboarded", sa.Boolean(), nullable=False),
        sa.Column("conversation_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_streak", sa.Integer(), nullable=False),
        sa.Column("best_streak", sa.Integer(), nullable=False),
        sa.Column("last_active_date", sa.Date(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "level IN ('beginner', 'intermediate', 'advanced', 'native')",
            name=op.f("ck_users_level_allowed"),
        ),
        sa.CheckConstraint(
            "native_language IN ('ru', 'uk', 'pl', 'sk', 'en', 'de', 'vi')",
            name=op.f("ck_users_native_language_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("telegram_id", name=op.f("uq_users_telegram_id")),
    )
    op.create_table(
        "daily_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("voice_messages", sa.Integer(), nullable=False),
        sa.Column("words_spoken", sa.Integer(), nullable=False),
        sa.Column("seconds_spoken", sa.Float(), nullable=False),
        sa.Column("mistakes", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Integer(), nullable=False),
        sa.Column("scored_messages", sa.Integer(), nullable=False),
        sa.Column("new_words", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_daily_stats_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_stats")),
        sa.UniqueConstraint("user_id", "date", name=op.f("uq_daily_stats_user_id_date")),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("corrected_text", sa.Text(), nullable=True),
        sa.Column("mistakes", sa.JSON(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("audio_file_id", sa.String(length=256), nullable=True),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('text', 'voice')", name=op.f("ck_messages_kind_allowed")),
        sa.CheckConstraint("role IN ('learner', 'teacher')", name=op.f("ck_messages_role_allowed")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_messages_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_user_id_created_at"), ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "saved_words",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("word", sa.String(length=128), nullable=False),
        sa.Column("translation", sa.String(length=256), nullable=False),
        sa.Column("example", sa.Text(), nullable=True),
        sa.Column("ease_factor", sa.Float(), nullable=False),
        sa.Column("interval_days", sa.Integer(), nullable=False),
        sa.Column("repetitions", sa.Integer(), nullable=False),
        sa.Column("next_review", sa.Date(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_saved_words_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_words")),
        sa.UniqueConstraint("user_id", "word", name=op.f("uq_saved_words_user_id_word")),
    )
    with op.batch_alter_table("saved_words", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_saved_words_user_id_next_review"),
            ["user_id", "next_review"],
            unique=False,
        )

    op.create_table(
        "user_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_style", sa.String(length=16), nullable=False),
        sa.Column("corrections_level", sa.String(length=16), nullable=False),
        sa.Column("voice_speed", sa.String(length=16), nullable=False),
        sa.Column("character", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("voice_replies", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "character IN ('honzik', 'novakova')", name=op.f("ck_user_settings_character_allowed")
        ),
        sa.CheckConstraint(
            "conversation_style IN ('friendly', 'tutor', 'casual')",
            name=op.f("ck_user_settings_conversation_style_allowed"),
        ),
        sa.CheckConstraint(
            "corrections_level IN ('minimal', 'balanced', 'detailed')",
            name=op.f("ck_user_settings_corrections_level_allowed"),
        ),
        sa.CheckConstraint(
            "voice_speed IN ('very_slow', 'slow', 'normal', 'native')",
            name=op.f("ck_user_settings_voice_speed_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_settings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_settings")),
        sa.UniqueConstraint("user_id", name=op.f("uq_user_settings_user_id")),
    )


def downgrade() -> None:
    op.drop_table("user_settings")
    with op.batch_alter_table("saved_words", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_words_user_id_next_review"))

    op.drop_table("saved_words")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_user_id_created_at"))

    op.drop_table("messages")
    op.drop_table("daily_stats")
    op.drop_table("users")
