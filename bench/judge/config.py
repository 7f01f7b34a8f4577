"""The judge scorer's suite-file config: who judges (models.yaml entries on the openai backend),
on which rubric, combined how. Free of bench.config (which imports it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RUBRICS = Path(__file__).parent / "rubrics"  # built-in rubrics by name: <name>.yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dimension(_Strict):
    name: str = Field(description="the key the judge answers under (letters, digits, _)")
    label: str | None = Field(None, description="how the rubric names it, e.g. 安全合规性")
    description: str

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise ValueError(f"dimension name {name!r}: use letters, digits and _ (the label "
                             "holds the human name)")
        return name


class Rubric(_Strict):
    description: str | None = None
    dimensions: list[Dimension] = Field(min_length=1)
    low: int = 1
    high: int = 10
    instructions: str | None = Field(None, description="more guidance, after the dimensions")

    @model_validator(mode="after")
    def _sane(self) -> Rubric:
        names = [d.name for d in self.dimensions]
        if len(set(names)) != len(names):
            raise ValueError(f"dimension names repeat: {names}")
        if self.low >= self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        return self


def builtin_rubrics() -> list[str]:
    return sorted(p.stem for p in RUBRICS.glob("*.yaml"))


class JudgeConfig(_Strict):
    name: Literal["judge"]
    judges: list[str] = Field(min_length=1, description="models.yaml entries (backend: openai)")
    reducer: Literal["mean", "majority"] = Field("mean", description=(
        "several judges: the mean of their scores, or the score most of them gave"))
    rubric: Rubric = Field(description="inline, or a built-in name: "
                           + ", ".join(builtin_rubrics()))
    template: str | None = Field(None, description=(
        "the system message as a Jinja template (variables: rubric, fence_note); default: "
        "bench/judge/templates/rubric.j2"))
    reference: bool = Field(True, description="show the judge the reference answer")
    max_tokens: int = Field(1024, ge=16)
    repair: bool = Field(True, description="one more request when a reply cannot be parsed")

    @field_validator("rubric", mode="before")
    @classmethod
    def _named(cls, rubric):
        if isinstance(rubric, str):
            path = RUBRICS / f"{rubric}.yaml"
            if not path.is_file():
                raise ValueError(f"unknown rubric '{rubric}'; built-in: "
                                 f"{', '.join(builtin_rubrics())}, or give it inline")
            return yaml.safe_load(path.read_text(encoding="utf-8"))
        return rubric
