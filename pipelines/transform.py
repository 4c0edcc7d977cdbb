"""Build the transform chain from config: the one chain Spark and Flink both execute."""

from __future__ import annotations

from pipelines.chain import Chain, Stage
from pipelines.config import PipelineConfig


def build_chain(config: PipelineConfig, entity: str) -> Chain:
    """The stages for one entity, in order: cleaning rules, privacy treatment, then the
    row-level quality checks of the entity's contract.

    Everything is loaded and validated here, on the driver: a bad rule pack, an invalid
    policy or a missing pseudonymisation key stops the run before it reads anything. The
    chain is then shipped to the workers as it is (its stages pickle).
    """
    from cleaning_rules.engine import load_packs
    from cleaning_rules.stage import CleaningStage

    stages: list[Stage] = [
        CleaningStage(
            load_packs(config.transform.rule_packs, timeout=config.transform.rule_timeout_s),
            entity,
        )
    ]
    policy_path = config.privacy.policy_for(entity) if config.privacy else None
    if policy_path is not None:
        from privacy.policy import load_policy
        from privacy.stage import PrivacyStage

        stages.append(PrivacyStage(load_policy(policy_path)))
    from pipelines.contracts import load_contracts
    from pipelines.quality_stage import QualityStage

    stages.append(QualityStage(load_contracts(config.quality.contracts_path), config.quality))
    return Chain(stages)
