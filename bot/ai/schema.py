"""The structured answer Honzík returns (OpenAI Structured Outputs, strict JSON schema).

The bounds keep a whole answer readable and close to one Telegram message. Strict mode
documents `maxItems` for arrays but no length keyword for strings (only `pattern` and
`format`), and a keyword outside that subset risks a 400 for every request, so lists are
bounded in the schema and strings by their descriptions. Nothing here rejects a longer
string: the answer is still delivered, in messages that fit (`bot.texts.split_message`).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

MAX_MISTAKES = 10


class Mistake(BaseModel):
    original: str = Field(description="What the learner said, exactly; at most 300 characters")
    corrected: str = Field(description="The correct Czech; at most 300 characters")
    explanation: str = Field(
        description="A short explanation in simple Czech; at most 300 characters"
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
        description="One optional short tip in simple Czech; at most 300 characters"
    )
    new_words: list[NewWord] = Field(max_length=3, description="Up to three new words")
