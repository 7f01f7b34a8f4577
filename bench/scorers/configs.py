"""Suite-file configs of the open-ended scorers (`scorers:` entries of a task).

Kept free of bench.config (which imports this module), hence the local strict base.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bench.judge.config import JudgeConfig


Phrase = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RougeConfig(_Strict):
    name: Literal["rouge"]
    tokenizer: Literal["jieba", "char"] = Field("jieba", description=(
        "jieba words (whitespace dropped) or one token per non-space character"))
    max_tokens: int = Field(10_000, ge=1, description=(
        "tokens per side scored (the first ones): keeps long texts' time and memory bounded"))


class BleuConfig(_Strict):
    name: Literal["bleu"]


class _Check(_Strict):
    weight: float = Field(1.0, gt=0, allow_inf_nan=False, description="share in rules_score")
    label: str | None = Field(None, description="shown in details; a readable default otherwise")

    @property
    def title(self) -> str:
        """The label, or one made from the check's settings."""
        return self.label or self._default_label()

    def _default_label(self) -> str:
        return str(getattr(self, "type"))


class ForbiddenCheck(_Check):
    """Passes (1.0) when no phrase appears in the answer, else 0.0."""
    type: Literal["forbidden"]
    phrases: list[Phrase] = Field(min_length=1)

    def _default_label(self) -> str:
        return "forbidden: " + ", ".join(self.phrases)


class RequiredCheck(_Check):
    """Scores the share of phrases present; passes when it reaches `min_share`."""
    type: Literal["required"]
    phrases: list[Phrase] = Field(min_length=1)
    min_share: float = Field(1.0, ge=0, le=1)

    def _default_label(self) -> str:
        share = "" if self.min_share == 1 else f" (>={self.min_share:g})"
        return "required: " + ", ".join(self.phrases) + share


class RegexCheck(_Check):
    """Passes when `pattern` is found (re.search) in the answer, or, with must_match false, not."""
    type: Literal["regex"]
    pattern: str
    must_match: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return pattern

    def _default_label(self) -> str:
        return f"regex{'' if self.must_match else ' absent'}: {self.pattern}"


class LengthCheck(_Check):
    """Passes when the stripped answer's character count lies within the bounds."""
    type: Literal["length"]
    min_chars: int | None = Field(None, ge=0)
    max_chars: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> LengthCheck:
        if self.min_chars is None and self.max_chars is None:
            raise ValueError("length check needs min_chars or max_chars (or both)")
        if self.min_chars is not None and self.max_chars is not None and self.min_chars > self.max_chars:
            raise ValueError(f"length check: min_chars {self.min_chars} > max_chars {self.max_chars}")
        return self

    def _default_label(self) -> str:
        low = "" if self.min_chars is None else self.min_chars
        high = "" if self.max_chars is None else self.max_chars
        return f"length: {low}..{high} chars"


class JsonCheck(_Check):
    """Passes when the answer parses as JSON (a ```json fence around it is removed first)."""
    type: Literal["json"]


Check = Annotated[Union[ForbiddenCheck, RequiredCheck, RegexCheck, LengthCheck, JsonCheck],
                  Field(discriminator="type")]


class RulesConfig(_Strict):
    name: Literal["rules"]
    checks: list[Check] = Field(min_length=1)
    threshold: float | None = Field(None, ge=0, le=1, description=(
        "none: a sample passes when every check passes; a number: when the weighted mean of "
        "check scores reaches it"))


SCORER_CONFIGS = (RougeConfig, BleuConfig, RulesConfig, JudgeConfig)
