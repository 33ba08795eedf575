"""Honzík's prompt, built only from settings and the conversation: nothing personal.

No names or ids enter the prompt, so two learners with the same settings who open with the
same phrase send byte-identical requests and share one cached answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain import (
    Character,
    Corrections,
    LearnerSettings,
    Level,
    NativeLanguage,
    Scene,
    Style,
)

# Bump when the wording below changes meaning; the cache key also hashes the full request.
PROMPT_VERSION = "3"

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

# Beginners and intermediates cannot yet read explanations in Czech (as `ui_language_of`).
EXPLAINED_IN_NATIVE = frozenset({Level.BEGINNER, Level.INTERMEDIATE})

# What each level is expected to get right, so the same message scores the same every day.
RUBRICS = {
    Level.BEGINNER: "Expect simple sentences: judge basic forms (být, mít, the present tense, "
    "the nominative and accusative) and whether the meaning is clear; simple vocabulary is fine.",
    Level.INTERMEDIATE: "Expect the past tense, cases after common prepositions and everyday "
    "vocabulary; small slips in rarer cases cost little.",
    Level.ADVANCED: "Expect correct cases, aspect, agreement, word order and register; "
    "unnatural phrasing costs points.",
    Level.NATIVE: "Judge as a native speaker's message: style, idiom and register count.",
}
SCORE_BANDS = (
    "Score 0–100 against that: 90–100 correct and natural (no mistakes: at least 90); "
    "70–89 small slips that do not hinder understanding; 40–69 understandable with effort, "
    "several mistakes; below 40 hard to understand or mostly not Czech."
)

SPOKEN = (
    "The learner's last message was spoken and transcribed by speech recognition: punctuation, "
    "capital letters and diacritics were written by the transcriber, so never count them as "
    "mistakes or in the score; a word that looks misheard is not the learner's mistake."
)
TYPED = (
    "The learner's last message was typed: spelling and diacritics (háček, čárka, kroužek) "
    "count as mistakes; punctuation and capital letters only where they change the meaning."
)

# Who the character plays in each role-play scene, and who the learner is there.
SCENES = {
    Scene.PUB: ("a barman in a Czech pub", "a guest ordering drinks and food"),
    Scene.DOCTOR: ("a general practitioner", "a patient describing what is wrong"),
    Scene.STATION: (
        "a ticket clerk at a railway station",
        "a traveller buying a ticket and asking about trains",
    ),
    Scene.FOREIGN_POLICE: (
        "an officer at the foreign police office (residence permits)",
        "a foreigner applying for or extending a residence permit",
    ),
    Scene.SHOP: ("a shop assistant", "a customer"),
    Scene.JOB_INTERVIEW: ("an interviewer at a job interview", "the candidate"),
    Scene.FLAT: ("a landlord showing a flat to rent", "someone who wants to rent it"),
    Scene.HAIRDRESSER: ("a hairdresser", "a customer"),
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


def explanation_language(level: Level, native: NativeLanguage) -> str:
    """Mistakes and the tip in the learner's language until they can read Czech well."""
    return LANGUAGE_NAMES[native] if level in EXPLAINED_IN_NATIVE else "simple Czech"


def _persona(level: Level, settings: LearnerSettings) -> list[str]:
    """Who speaks and how: shared by answers and a scene's opening line."""
    lines = [CHARACTERS[settings.character]]
    if settings.scene is not None:
        role, learner = SCENES[settings.scene]
        lines.append(
            f"This is a role-play: you play {role} and the learner is {learner}. Stay in the "
            "role and the situation, and in the role address the learner with 'Vy', as Czechs "
            "do with customers and strangers. If the learner drifts off, answer briefly and "
            "bring them back to the situation."
        )
    lines += [
        f"The learner's Czech level is {CEFR[level]} (CEFR); speak at that level.",
        f"Your tone: {STYLES[settings.conversation_style]}.",
    ]
    return lines


def system_prompt(
    level: Level, native: NativeLanguage, settings: LearnerSettings, *, spoken: bool
) -> str:
    explained_in = explanation_language(level, native)
    return "\n".join(
        [
            *_persona(level, settings),
            "You help a foreigner practise Czech in a natural conversation.",
            "Answer the learner's message in Czech in 1–3 short sentences, as in a real "
            "conversation, and keep the conversation going. Your answer is always in Czech.",
            CORRECTIONS[settings.corrections_level]
            + (" Correct them in the role-play too." if settings.scene else ""),
            "Quote each mistake exactly as the learner wrote it and give it a category. Be "
            "gentle: praise what was right.",
            f"Write the explanations of mistakes and the tip in {explained_in}.",
            f"{RUBRICS[level]} {SCORE_BANDS}",
            f"Suggest at most 3 new Czech words, only ones useful at the learner's level, with "
            f"translations into {LANGUAGE_NAMES[native]} and a short Czech example each; "
            "none if nothing fits.",
            SPOKEN if spoken else TYPED,
        ]
    )


def scene_opening_messages(level: Level, settings: LearnerSettings) -> list[dict[str, str]]:
    """The request for a scene's first line: nothing of the learner's (not even their
    language, since the line is Czech), so all who open the scene at a level share it."""
    if settings.scene is None:
        raise ValueError("a scene's opening needs settings with a scene")
    role, _ = SCENES[settings.scene]
    prompt = [
        *_persona(level, settings),
        f"Open the scene with your first line as {role}, in Czech, in 1–2 short sentences: "
        "greet the learner and ask what the situation calls for.",
    ]
    return [
        {"role": "system", "content": "\n".join(prompt)},
        {"role": "user", "content": "(The scene begins.)"},
    ]


def build_messages(
    level: Level,
    native: NativeLanguage,
    settings: LearnerSettings,
    history: list[Turn],
    text: str,
    *,
    spoken: bool,
) -> list[dict[str, str]]:
    messages = [
        {"role": "system", "content": system_prompt(level, native, settings, spoken=spoken)}
    ]
    messages += [{"role": turn.role, "content": turn.text} for turn in history]
    messages.append({"role": "user", "content": text})
    return messages
