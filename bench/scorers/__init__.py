"""Scorers for open-ended answers against references: ROUGE, BLEU and rule checks.

`SCORER_CONFIGS` are the suite-file config models; `build(config)` turns one into its scorer
(the Scorer protocol of bench/tasks/kinds.py). rouge-score, jieba and sacrebleu load on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.errors import BenchError, suggest
from bench.scorers.bleu import BleuScorer
from bench.scorers.configs import SCORER_CONFIGS, BleuConfig, RougeConfig, RulesConfig
from bench.scorers.rouge import RougeScorer
from bench.scorers.rules import RulesScorer

FACTORIES: dict[str, Callable[[Any], Any]] = {
    "rouge": lambda config: RougeScorer(tokenizer=config.tokenizer, max_tokens=config.max_tokens),
    "bleu": lambda config: BleuScorer(),
    "rules": lambda config: RulesScorer(config),
}


def build(config: RougeConfig | BleuConfig | RulesConfig) -> RougeScorer | BleuScorer | RulesScorer:
    """The scorer a config names."""
    try:
        factory = FACTORIES[config.name]
    except KeyError:
        raise BenchError(f"unknown text scorer '{config.name}'{suggest(config.name, FACTORIES)}") from None
    return factory(config)


__all__ = ["SCORER_CONFIGS", "BleuConfig", "BleuScorer", "RougeConfig", "RougeScorer",
           "RulesConfig", "RulesScorer", "build"]
