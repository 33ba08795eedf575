"""/scenario: role-play an everyday situation, by button or typed (`/scenario pub`, `off`)."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.chat_action import ChatActionMiddleware
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.ai import speech as speech_ai
from bot.domain import LearnerSettings, Profile, Scene
from bot.handlers.filters import CommandIs
from bot.handlers.keyboards import ScenarioCb, scenario_menu
from bot.handlers.speaking import send_spoken
from bot.services.scenes import SceneService

OFF = "off"
CHOICES = " | ".join([*Scene, OFF])


async def typed(
    message: Message,
    command: CommandObject,
    bot: Bot,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    scenes: SceneService,
    voice: speech_ai.Voice,
) -> None:
    choice = (command.args or "").strip().lower()
    if not choice:
        await message.answer(texts.SCENARIO_MENU, reply_markup=scenario_menu(settings.scene))
        return
    if choice == OFF:
        await scenes.stop(session, profile)
        await message.answer(texts.SCENE_ENDED)
        return
    try:
        scene = Scene(choice)
    except ValueError:
        await message.answer(texts.SETTING_BAD_VALUE.format(values=CHOICES))
        return
    await message.answer(texts.SCENE_STARTED.format(scene=texts.SCENE_LABELS[scene.value]))
    await _open(bot, message.chat.id, scenes, session, profile, settings, scene, voice)


async def pressed(
    query: CallbackQuery,
    callback_data: ScenarioCb,
    bot: Bot,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    scenes: SceneService,
    voice: speech_ai.Voice,
) -> None:
    if not isinstance(query.message, Message):
        await query.answer(texts.STALE_BUTTON, show_alert=True)
        return
    await query.answer()
    scene = callback_data.scene
    if not isinstance(scene, Scene):  # "off"
        await scenes.stop(session, profile)
        await query.message.edit_text(texts.SCENE_ENDED)
        return
    await query.message.edit_text(texts.SCENE_STARTED.format(scene=texts.SCENE_LABELS[scene.value]))
    await _open(bot, query.message.chat.id, scenes, session, profile, settings, scene, voice)


async def _open(
    bot: Bot,
    chat_id: int,
    scenes: SceneService,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    scene: Scene,
    voice: speech_ai.Voice,
) -> None:
    """The scene's opening line, spoken too if the learner wants voice replies."""
    settings, line = await scenes.start(session, profile, settings, scene)
    if line is None:
        await bot.send_message(chat_id, texts.SCENE_NO_OPENING)
        return
    await bot.send_message(chat_id, line)
    if not settings.voice_replies:
        return
    await send_spoken(bot, chat_id, line, settings, voice)


def create_router() -> Router:
    router = Router(name="scenario")
    router.message.middleware(ChatActionMiddleware())
    router.message.register(typed, CommandIs("scenario"), flags={"chat_action": "typing"})
    router.callback_query.register(pressed, ScenarioCb.filter())
    return router
