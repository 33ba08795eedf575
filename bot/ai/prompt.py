"""Honzík's prompt, built only from settings and the conversation: nothing personal.

No names or ids enter the prompt, so two learners with the same settings who open with the
same phrase send byte-identical requests and share one cached answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain import Character, Corrections, LearnerSettings, Level, NativeLanguage, Style

# Bump when the wording below changes meaning; the cache key also hashes the full request.
PROMPT_VERSION = "2"

CEFR = {
    Level.BEGINNER: "A1–A2",
    Level.INTERMEDIATE: "B1",
    Level.ADVANCED: "B2–C1",
    Level.NATIVE: "C2",
}

LANGUAGE_NAMES = {
    NativeLanguage.RU: "Russian",
    NativeLanguage.UK: "Ukrainian",
    NativeLanguage.PL: "Polish",
    NativeLanguage.SK: "Slovak",
    NativeLanguage.EN: "English",
    NativeLanguage.DE: "German",
    NativeLanguage.VI: "Vietnamese",
}

STYLES = {
    Style.FRIENDLY: "warm and encouraging, like a good friend",
    Style.TUTOR: "patient and structured, like a good teacher; ask a follow-up question",
    Style.CASUAL: "relaxed and colloquial, with everyday spoken Czech",
}

CORRECTIONS = {
    Corrections.MINIMAL: "List only mistakes that change the meaning; ignore small slips.",
    Corrections.BALANCED: "List the important grammar and vocabulary mistakes.",
    Corrections.DETAILED: "List every mistake, including word order, diacritics and style.",
}

CHARACTERS = {
    Character.HONZIK: (
        "You are Honzík, a cheerful young man from Prague. You use the informal 'ty' with "
        "the learner, joke a little and love talking about Prague life."
    ),
    Character.NOVAKOVA: (
        "You are paní Nováková, a kind, polite Czech teacher. You always use the formal "
        "'Vy' with the learner and speak carefully."
    ),
}


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of the recent conversation as it is sent to the model."""

    role: str  # "user" or "assistant"
    text: str


def system_prompt(level: Level, native: NativeLanguage, settings: LearnerSettings) -> str:
    return "\n".join(
        [
            CHARACTERS[settings.character],
            "You help a foreigner practise spoken Czech in a natural conversation.",
            f"The learner's Czech level is {CEFR[level]} (CEFR); speak at that level.",
            f"Your tone: {STYLES[settings.conversation_style]}.",
            "Answer the learner's message in Czech in 1–3 short sentences, as in a real "
            "conversation, and keep the conversation going.",
            CORRECTIONS[settings.corrections_level],
            "Quote each mistake exactly as the learner said it. Explanations are short and in "
            "simple Czech. Be gentle: praise what was right.",
            "Score the learner's message from 0 to 100 for correctness and naturalness.",
            f"Suggest up to 3 useful new Czech words with translations into "
            f"{LANGUAGE_NAMES[native]} and a short Czech example each.",
            "The learner's messages are transcribed speech: ignore punctuation and capital "
            "letters when judging.",
        ]
    )


def build_messages(
    level: Level,
    native: NativeLanguage,
    settings: LearnerSettings,
    history: list[Turn],
    text: str,
) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt(level, native, settings)}]
    messages += [{"role": turn.role, "content": turn.text} for turn in history]
    messages.append({"role": "user", "content": text})
    return messages
