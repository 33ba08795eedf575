"""The structured answer Honzík returns (OpenAI Structured Outputs, strict JSON schema).

The bounds keep a whole answer readable and close to one Telegram message. Strict mode
documents `maxItems` for arrays but no length keyword for strings (only `pattern` and
`format`), and a keyword outside that subset risks a 400 for every request, so lists are
bounded in the schema and strings by their descriptions. Nothing here rejects a longer
string: the answer is still delivered, in messages that fit (`bot.texts.split_message`).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

MAX_MISTAKES = 10


class MistakeCategory(StrEnum):
    """What kind of mistake, stored with the message for the weekly summary; "other" keeps
    a mistake that fits no kind from being forced into a wrong one."""

    CASE = "case"
    VERB_FORM = "verb_form"
    AGREEMENT = "agreement"
    WORD_ORDER = "word_order"
    VOCABULARY = "vocabulary"
    SPELLING = "spelling"
    REGISTER = "register"
    OTHER = "other"


class Mistake(BaseModel):
    original: str = Field(description="What the learner said, exactly; at most 300 characters")
    corrected: str = Field(description="The correct Czech; at most 300 characters")
    explanation: str = Field(
        description="A short explanation, in the language the instructions name; "
        "at most 300 characters"
    )
    category: MistakeCategory = Field(
        description="case: a case ending; verb_form: conjugation, tense or aspect; agreement: "
        "gender or number agreement; word_order: e.g. where 'se', 'jsem' go; vocabulary: a "
        "wrong word or preposition; spelling: spelling or diacritics; register: ty/Vy, "
        "formal or colloquial; other: none of these"
    )


class NewWord(BaseModel):
    word: str = Field(
        description="A useful Czech word from this exchange, in its basic form; "
        "at most 60 characters"
    )
    translation: str = Field(
        description="Its translation into the learner's native language; at most 100 characters"
    )
    example: str = Field(description="A short Czech example sentence; at most 200 characters")


class HonzikReply(BaseModel):
    reply: str = Field(
        description="The teacher's natural spoken answer in Czech; at most 1000 characters"
    )
    corrected_text: str = Field(description="The learner's message, corrected")
    mistakes: list[Mistake] = Field(
        max_length=MAX_MISTAKES,
        description=f"The learner's mistakes, most important first; at most {MAX_MISTAKES}",
    )
    score: int = Field(ge=0, le=100, description="How correct and natural the Czech was")
    tip: str | None = Field(
        description="One optional short tip, in the language the instructions name; "
        "at most 300 characters"
    )
    new_words: list[NewWord] = Field(
        max_length=3, description="Up to three new words useful at the learner's level"
    )


class SceneOpening(BaseModel):
    """The character's first line of a role-play scene: nothing said yet, so nothing graded."""

    reply: str = Field(
        description="The opening line in Czech, in character; at most 300 characters"
    )
