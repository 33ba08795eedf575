"""The structured answer Honzík returns (OpenAI Structured Outputs, strict JSON schema)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Mistake(BaseModel):
    original: str = Field(description="What the learner said, exactly")
    corrected: str = Field(description="The correct Czech")
    explanation: str = Field(description="A short explanation in simple Czech")


class NewWord(BaseModel):
    word: str = Field(description="A useful Czech word from this exchange, in its basic form")
    translation: str = Field(description="Its translation into the learner's native language")
    example: str = Field(description="A short Czech example sentence")


class HonzikReply(BaseModel):
    reply: str = Field(description="The teacher's natural spoken answer in Czech")
    corrected_text: str = Field(description="The learner's message, corrected")
    mistakes: list[Mistake] = Field(description="The learner's mistakes, most important first")
    score: int = Field(ge=0, le=100, description="How correct and natural the Czech was")
    tip: str | None = Field(description="One optional short tip in simple Czech")
    new_words: list[NewWord] = Field(max_length=3, description="Up to three new words")
