"""`bench train` configs: one pydantic model (extra="forbid"), errors with file and line.

Names follow TRL where it has them; README "Training" maps XTuner's and LLaMA-Factory's keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bench.config import Strict, _validate
from bench.rows import MAX_BAD_FRACTION

# keys that change nothing learned: a config differing only in these trains nothing again
NOT_LEARNED = ("output", "logging_steps", "save_steps", "save_total_limit", "evaluation_inputs",
               "evaluation_freq", "merge", "held_out")


class DataRef(Strict):
    path: str = Field(description="a data file or folder (any format bench reads), or a "
                      "LLaMA-Factory dataset_info.json with `dataset`; relative to the config")
    dataset: str | None = Field(None, description="the dataset_info.json entry")
    format: str = Field("auto", description="alpaca | sharegpt | messages | xtuner (SFT); "
                        "lf-ranking | lf-sharegpt-ranking | trl (DPO); auto: told by the keys")


class Lora(Strict):
    r: int = Field(64, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class TrainConfig(Strict):
    method: Literal["sft", "dpo"]
    base: str = Field(description="a models.yaml name, or an earlier `bench train` output")
    output: str = Field(description="the trained model's name (bench run --model NAME)")
    data: list[DataRef] = Field(min_length=1)
    finetuning: Literal["lora", "full"] = "lora"
    quantization: Literal["nf4", "int8", "none"] = Field(
        "nf4", description="the base while training: nf4 (4-bit NormalFloat, double "
        "quantization: QLoRA, XTuner's default), int8, or none")
    lora: Lora = Lora()
    max_length: int = Field(2048, ge=16)
    packing: bool = False
    train_on_prompt: bool = Field(False, description="loss on prompt tokens too")
    system: str | None = Field(None, description="system prompt for rows without one; the "
                               "trained model is evaluated with it")
    batch_size: int = Field(1, ge=1)
    gradient_accumulation: int = Field(16, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="wins over epochs")
    seed: int = 42
    save_steps: int = Field(500, ge=1)
    save_total_limit: int = Field(2, ge=1)
    validation_split: float | None = Field(None, gt=0, lt=1)
    evaluation_inputs: list[str] = Field([], description="questions answered (greedy) before "
                                         "training and every evaluation_freq steps")
    evaluation_freq: int = Field(500, ge=1)
    logging_steps: int = Field(10, ge=1)
    beta: float = Field(0.1, gt=0, description="DPO")
    loss_type: list[str] = Field(["sigmoid"], description="DPO, TRL's names (sigmoid, ipo, "
                                 "hinge, ...); several are summed")
    sft_weight: float = Field(0.0, ge=0, description="DPO: weight of an SFT loss on chosen "
                              "(LLaMA-Factory's pref_ftx)")
    merge: bool = Field(False, description="also save base + adapter merged")
    held_out: list[str] = Field([], description="held-out sets the model will be judged on "
                                "(relative to the config): their questions that share a 13-character "
                                "span with the training data are reported before training")
    max_bad_fraction: float = Field(MAX_BAD_FRACTION, ge=0, le=1)

    @field_validator("data", mode="before")
    @classmethod
    def paths_as_entries(cls, data):
        if isinstance(data, str):
            data = [data]
        return [{"path": d} if isinstance(d, str) else d for d in data] if isinstance(data, list) else data

    @field_validator("loss_type", mode="before")
    @classmethod
    def one_loss(cls, value):
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def consistent(self):
        if self.finetuning == "full" and self.quantization != "none":
            raise ValueError("finetuning: full trains every weight, which a quantized base "
                             "cannot; set quantization: none (or finetuning: lora)")
        return self

    def learned(self) -> dict:
        """What decides the trained weights (with the base and the data): the training key."""
        return self.model_dump(exclude=set(NOT_LEARNED))


def load_train_config(path: str | Path) -> TrainConfig:
    return _validate(TrainConfig, Path(path), "is empty; a training config needs method, base, "
                     "output and data (see README, Training)", "data")
