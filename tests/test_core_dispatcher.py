"""The real dispatcher from the composition root, fed updates, with a recording Bot session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from aiogram.types import PhotoSize, Sticker, Update
from fakeredis import FakeAsyncRedis
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.app import build_dispatcher
from bot.cache import Cache
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import User, UserSettings
from bot.handlers.keyboards import OnboardingCb, SettingsCb
from bot.i18n import speaking
from tests.conftest import make_config, make_resources
from tests.support import updates
from tests.support.recording import RecordingSession


def sent_texts(recorder: RecordingSession) -> list[str]:
    return [request.text for request in recorder.of(SendMessage)]


async def user_row(engine: AsyncEngine, telegram_id: int) -> tuple[User, UserSettings]:
    async with create_sessionmaker(engine)() as session:
        user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
        assert user is not None
        settings = await session.scalar(select(UserSettings).where(UserSettings.user_id == user.id))
        assert settings is not None
        return user, settings


async def test_start_welcomes_creates_learner_and_caches_context(
    feed: Any, recorder: RecordingSession, engine: AsyncEngine, fake_redis: FakeAsyncRedis
) -> None:
    await feed(updates.message("/start", user=updates.learner(501)))

    welcome, question = recorder.of(SendMessage)
    assert welcome.text == texts.welcome("Anna")
    assert question.text == texts.ASK_LANGUAGE
    buttons = [b.callback_data for row in question.reply_markup.inline_keyboard for b in row]
    assert OnboardingCb(step="language", value="uk").pack() in buttons

    user, settings = await user_row(engine, 501)
    assert (user.level, settings.voice_replies) == ("beginner", True)
    for key in ("user:501:profile", "user:501:settings"):
        assert 0 < await fake_redis.ttl(key) <= 3600


async def test_level_command_changes_db_and_cache_at_once(
    feed: Any, recorder: RecordingSession, engine: AsyncEngine, fake_redis: FakeAsyncRedis
) -> None:
    anna = updates.learner(502)
    await feed(updates.message("/help", user=anna))
    await feed(updates.message("/level advanced", user=anna))

    with speaking("cs"):  # advanced learners read the bot in Czech
        assert sent_texts(recorder)[-1] == texts.SETTING_SAVED.format(
            label="Úroveň", value=texts.value_label("level", "advanced")
        )
    user, _ = await user_row(engine, 502)
    assert user.level == "advanced"
    cached = json.loads(await fake_redis.get("user:502:profile"))
    assert cached["level"] == "advanced"
    assert 0 < await fake_redis.ttl("user:502:profile") <= 3600


async def test_bad_setting_value_lists_good_ones_and_changes_nothing(
    feed: Any, recorder: RecordingSession, engine: AsyncEngine
) -> None:
    anna = updates.learner(503)
    await feed(updates.message("/speed warp", user=anna))
    await feed(updates.message("/voice", user=anna))

    bad, current = sent_texts(recorder)
    assert bad == texts.SETTING_BAD_VALUE.format(values="very_slow | slow | normal | native")
    assert texts.value_label("voice", "on") in current and "/voice on | off" in current
    _, settings = await user_row(engine, 503)
    assert settings.voice_speed == "normal"


async def test_onboarding_buttons_store_language_and_level(
    feed: Any, recorder: RecordingSession, engine: AsyncEngine
) -> None:
    anna = updates.learner(504)
    await feed(updates.callback(OnboardingCb(step="language", value="pl").pack(), user=anna))
    await feed(updates.callback(OnboardingCb(step="level", value="intermediate").pack(), user=anna))

    edits = [request.text for request in recorder.of(EditMessageText)]
    assert edits == [texts.ASK_LEVEL, texts.ASK_REMINDER]  # the last question is optional
    user, _ = await user_row(engine, 504)
    assert (user.native_language, user.level, user.onboarded) == ("pl", "intermediate", True)


async def test_settings_menu_shows_truth_and_buttons_change_it(
    feed: Any, recorder: RecordingSession, engine: AsyncEngine
) -> None:
    anna = updates.learner(505)
    await feed(updates.message("/corrections detailed", user=anna))
    await feed(updates.message("/settings", user=anna))
    menu = recorder.of(SendMessage)[-1].reply_markup
    labels = [button.text for row in menu.inline_keyboard for button in row]
    assert (
        f"{texts.OPTION_LABELS['corrections']}: {texts.value_label('corrections', 'detailed')}"
        in labels
    )

    await feed(updates.callback(SettingsCb(option="character", value="novakova").pack(), user=anna))
    _, settings = await user_row(engine, 505)
    assert settings.character == "novakova"
    answer = recorder.of(AnswerCallbackQuery)[-1]
    assert answer.text is not None and texts.value_label("character", "novakova") in answer.text


async def test_forged_or_stale_buttons_get_an_alert(
    feed: Any, recorder: RecordingSession, engine: AsyncEngine
) -> None:
    anna = updates.learner(506)
    await feed(updates.message("/save pivo - beer", user=anna))
    forged = (
        "set:level:galactic",
        "garbage",
        "ob:level:",
        "ob:level:pl",  # a value of another option
        "ob:mood:happy",
        "set:nope:",
        "rv:good:" + "9" * 30,  # beyond any integer column: was an OverflowError
        "rv:show:" + "9" * 30,
        "rv:show:-1",
        "rv:shout:1",
        "rv:good",
        "words:" + "9" * 30,
        "words:0",
        "reset:everything",
        "reset:data:extra",
    )
    for data in forged:
        await feed(updates.callback(data, user=anna))

    answers = recorder.of(AnswerCallbackQuery)
    assert [(a.text, a.show_alert) for a in answers] == [(texts.STALE_BUTTON, True)] * len(forged)
    assert not recorder.of(EditMessageText)
    user, _ = await user_row(engine, 506)
    assert user.level == "beginner"


async def test_media_unknown_commands_and_groups_get_hints(
    feed: Any, recorder: RecordingSession
) -> None:
    sticker = Sticker(
        file_id="s",
        file_unique_id="s",
        type="regular",
        width=1,
        height=1,
        is_animated=False,
        is_video=False,
    )
    await feed(updates.message(None, sticker=sticker))
    await feed(updates.message("/teleport"))
    await feed(updates.message("/help", chat_type="group"))

    assert sent_texts(recorder) == [
        texts.UNSUPPORTED_MEDIA,
        texts.UNKNOWN_COMMAND,
        texts.GROUP_CHAT,
    ]


@pytest.mark.parametrize(
    "service",
    [
        {"pinned_message": {"message_id": 1, "date": 0, "chat": {"id": 512, "type": "private"}}},
        {"message_auto_delete_timer_changed": {"message_auto_delete_time": 86400}},
        {"write_access_allowed": {"from_request": True}},
        {"chat_background_set": {"type": {"type": "chat_theme", "theme_name": "🌷"}}},
    ],
    ids=lambda service: next(iter(service)),
)
async def test_service_messages_get_no_answer(
    feed: Any, recorder: RecordingSession, service: dict[str, Any]
) -> None:
    await feed(updates.message(None, user=updates.learner(512), **service))
    assert not recorder.requests


def album(size: int, group: str, user: Any) -> list[Update]:
    photo = PhotoSize(file_id="p", file_unique_id="p", width=1, height=1)
    return [updates.message(None, user=user, photo=[photo], media_group_id=group)] * size


async def test_an_album_gets_one_hint(feed: Any, recorder: RecordingSession) -> None:
    anna = updates.learner(513)
    for update in album(6, "album-1", anna) + album(2, "album-2", anna):
        await feed(update)
    assert sent_texts(recorder) == [texts.UNSUPPORTED_MEDIA] * 2


async def test_an_album_without_redis_gets_a_hint_per_photo(
    tmp_path: Path, engine: AsyncEngine, bot: Bot, recorder: RecordingSession
) -> None:
    """Fail-open: without Redis no replica can tell the first photo, so each is answered."""
    config = make_config(tmp_path, cache_enabled=False)
    dp = build_dispatcher(make_resources(config, engine, Cache(None)))
    for update in album(3, "album-3", updates.learner(514)):
        await dp.feed_update(bot, update)
    assert sent_texts(recorder) == [texts.UNSUPPORTED_MEDIA] * 3


async def test_bots_are_ignored(feed: Any, recorder: RecordingSession, engine: AsyncEngine) -> None:
    robot = updates.learner(507, is_bot=True)
    await feed(updates.message("/start", user=robot))
    assert not recorder.requests
    async with create_sessionmaker(engine)() as session:
        assert await session.scalar(select(User).where(User.telegram_id == 507)) is None


async def test_warm_update_runs_no_sql_and_a_fixed_set_of_redis_round_trips(
    feed: Any, recorder: RecordingSession, engine: AsyncEngine, cache: Cache
) -> None:
    anna = updates.learner(508)
    await feed(updates.message("/help", user=anna))

    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    calls: list[str] = []
    assert cache.redis is not None
    original_command, original_pipeline = cache.redis.execute_command, cache.redis.pipeline

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[0]))
        return await original_command(*args, **kwargs)

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        calls.append("PIPELINE")
        return original_pipeline(*args, **kwargs)

    cache.redis.execute_command = counting  # type: ignore[method-assign]
    cache.redis.pipeline = pipeline  # type: ignore[method-assign]
    await feed(updates.message("/help", user=anna))

    assert sent_texts(recorder)[-1] == texts.HELP
    assert statements == []
    # the rate limit and the learner context go out together: one round trip
    assert calls == ["PIPELINE"]


async def test_cache_disabled_writes_nothing(
    tmp_path: Path,
    engine: AsyncEngine,
    bot: Bot,
    recorder: RecordingSession,
    fake_redis: FakeAsyncRedis,
) -> None:
    config = make_config(tmp_path, cache_enabled=False)
    resources = make_resources(config, engine, Cache(None))
    dp = build_dispatcher(resources)
    await dp.feed_update(bot, updates.message("/level native", user=updates.learner(509)))

    assert "Rodilý" in sent_texts(recorder)[-1]
    assert await fake_redis.keys("*") == []
    assert await resources.cache.health() == "disabled"


async def test_redis_down_still_answers_from_database(
    tmp_path: Path, engine: AsyncEngine, bot: Bot, recorder: RecordingSession
) -> None:
    config = make_config(tmp_path, redis_url="redis://127.0.0.1:1/0")
    from bot.cache import create_cache

    cache = create_cache(config)
    resources = make_resources(config, engine, cache)
    dp = build_dispatcher(resources)
    anna = updates.learner(510)
    await dp.feed_update(bot, updates.message("/level advanced", user=anna))
    await dp.feed_update(bot, updates.message("/level", user=anna))

    with speaking("cs"):  # advanced learners read the bot in Czech
        assert texts.value_label("level", "advanced") in sent_texts(recorder)[-1]
    assert cache.counters.errors >= 1
    assert await cache.health() == "unavailable"
    await cache.close()


async def test_database_down_gets_a_kind_message(
    tmp_path: Path, bot: Bot, recorder: RecordingSession, cache: Cache
) -> None:
    config = make_config(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/no/such/dir.db")
    broken = create_engine(config.database_url)
    resources = make_resources(config, broken, cache)
    dp = build_dispatcher(resources)
    await dp.feed_update(bot, updates.message("/start", user=updates.learner(511)))

    assert sent_texts(recorder) == [texts.TEMPORARILY_UNAVAILABLE]
    await broken.dispose()
