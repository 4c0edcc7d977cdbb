"""Build the transform chain from config: the one chain Spark and Flink both execute."""

from __future__ import annotations

from pipelines.chain import Chain
from pipelines.config import TransformConfig


def build_chain(config: TransformConfig) -> Chain:
    """The stages in order. Loading validates every rule pack, so a bad pack stops the run
    before it reads anything."""
    from cleaning_rules.engine import load_packs
    from cleaning_rules.stage import CleaningStage

    ruleset = load_packs(config.rule_packs, timeout=config.rule_timeout_s)
    return Chain([CleaningStage(ruleset)])
