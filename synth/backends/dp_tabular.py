"""``dp-tabular``: structured records from a small model trained with opacus DP-SGD.

The model is autoregressive over the columns, label first: one small MLP per column predicts
its category or numeric bin from the one-hot codes of the columns before it, so sampling
can fix the label and draw the rest in order. Bounds and categories come from the config
(public), so the only access to the data is the DP-SGD training.

Privacy: ``make_private_within_budget`` picks the noise for the planned epochs from what the
dataset has left, reserves it in the budget ledger, and the steps actually taken are
committed as soon as training stops, whatever happens next: the data was used, so the
charge stands even if nothing is published. Samples carry no ``_seed_keys``: no record is
their seed, which is the point of the guarantee; their params carry the epsilon spent.

torch and opacus are imported inside ``generate``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from pipelines.errors import ConfigError
from privacy.ledger import BudgetLedger
from synth.backends import register
from synth.config import DpTabularBackend
from synth.fidelity import fidelity_report
from synth.samples import Candidate, GenerationJob, GenerationResult
from synth.tabular import TabularCodec


@register("dp-tabular")
class DpTabularGenerator:
    name = "dp-tabular"

    def __init__(self, config: DpTabularBackend):
        self.config = config

    def generate(self, job: GenerationJob) -> GenerationResult:
        import torch

        config = self.config
        columns = list(config.columns)
        # The label column goes first so sampling can condition on it.
        columns.sort(key=lambda c: c.name != job.task.label_field)
        codec = TabularCodec(columns)
        encoded = [codec.encode(r) for r in job.seed.records]
        codes = np.array([c for c in encoded if c is not None], dtype=np.int64)
        skipped = len(encoded) - len(codes)
        if len(codes) < config.batch_size:
            raise ConfigError(
                f"synth task {job.task.name}: dp-tabular needs at least batch_size"
                f" ({config.batch_size}) valid records, found {len(codes)}"
            )
        torch.manual_seed(config.seed)
        model = _autoregressive(codec.sizes, config.hidden)
        ledger = BudgetLedger.for_lake(job.context.lake_root)
        training, epsilon = self._train(model, codec, codes, job, ledger)

        rng = random.Random(f"{config.seed}:{job.task.name}")
        generator = torch.Generator().manual_seed(config.seed)
        params = {
            "epsilon": round(epsilon, 4),
            "delta": config.budget.delta,
            "noise_multiplier": round(training.noise_multiplier, 4),
            "trained_rows": len(codes),
        }
        label_values = columns[0].values or []
        candidates, sampled = [], []
        for request in job.requests:
            drawn = model.sample(label_values.index(request.label), request.count, generator)
            sampled.append(drawn)
            for row in drawn:
                candidates.append(
                    Candidate(
                        record=codec.decode(row.tolist(), rng),
                        label=request.label,
                        seed_keys=(),
                        params=params,
                    )
                )
        synthetic = np.concatenate(sampled) if sampled else np.zeros((0, len(columns)), np.int64)
        report = {
            **params,
            "skipped_invalid_rows": skipped,
            "dataset_epsilon_spent": round(ledger.spent(job.task.dataset, config.budget), 4),
            "fidelity": self._fidelity(codec, codes, synthetic, job, rng),
        }
        return GenerationResult(candidates, report=report)

    def _train(
        self,
        model: Any,
        codec: TabularCodec,
        codes: np.ndarray,
        job: GenerationJob,
        ledger: BudgetLedger,
    ) -> tuple[Any, float]:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        from privacy.dpsgd import make_private_within_budget

        config = self.config
        features = torch.from_numpy(codec.one_hot(codes))
        targets = torch.from_numpy(codes)
        loader = DataLoader(TensorDataset(features, targets), batch_size=config.batch_size)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9)
        training = make_private_within_budget(
            ledger,
            job.task.dataset,
            config.budget,
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            epochs=config.epochs,
            max_grad_norm=config.max_grad_norm,
            epsilon=config.epsilon,
            description=f"synth task {job.task.name}: dp-tabular generator",
            run_id=job.context.run_id,
        )
        try:
            training.module.train()
            for _ in range(config.epochs):
                for x, y in training.data_loader:
                    if len(x) == 0:
                        continue
                    training.optimizer.zero_grad()
                    loss = model.loss(training.module(x), y)
                    loss.backward()
                    training.optimizer.step()
        finally:
            # Charged for the steps taken, even when training failed part way.
            training.commit(reference=f"synth:{job.task.name}:{job.context.run_id}")
        model.eval()
        return training, float(training.engine.get_epsilon(config.budget.delta))

    @staticmethod
    def _fidelity(
        codec: TabularCodec,
        real: np.ndarray,
        synthetic: np.ndarray,
        job: GenerationJob,
        rng: random.Random,
    ) -> dict[str, Any]:
        numeric = [c.name for c in codec.columns if c.kind == "numeric"]
        real_numeric = np.array(
            [[float(r[n]) for n in numeric] for r in job.seed.records if codec.encode(r)],
            dtype=np.float64,
        ).reshape(-1, len(numeric))
        synth_numeric = np.array(
            [[float(codec.decode(row.tolist(), rng)[n]) for n in numeric] for row in synthetic],
            dtype=np.float64,
        ).reshape(-1, len(numeric))
        return fidelity_report(codec, real, synthetic, real_numeric, synth_numeric)


def _module_class() -> type:
    import torch
    from torch import nn

    class Autoregressive(nn.Module):
        """Column j's logits from the one-hot codes of columns < j (column 0 from a bias)."""

        def __init__(self, sizes: list[int], hidden: int):
            super().__init__()
            self.sizes = sizes
            self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
            self.first = nn.Linear(1, sizes[0])
            self.heads = nn.ModuleList(
                nn.Sequential(
                    nn.Linear(self.offsets[j], hidden), nn.ReLU(), nn.Linear(hidden, sizes[j])
                )
                for j in range(1, len(sizes))
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            parts = [self.first(x.new_ones(x.shape[0], 1))]
            parts += [head(x[:, : self.offsets[j + 1]]) for j, head in enumerate(self.heads)]
            return torch.cat(parts, dim=1)

        def loss(self, logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
            total = logits.new_zeros(())
            for j in range(len(self.sizes)):
                part = logits[:, self.offsets[j] : self.offsets[j + 1]]
                total = total + nn.functional.cross_entropy(part, codes[:, j])
            return total

        @torch.no_grad()
        def sample(self, label: int, count: int, generator: torch.Generator) -> np.ndarray:
            codes = torch.zeros(count, len(self.sizes), dtype=torch.long)
            onehot = torch.zeros(count, self.offsets[-1])
            codes[:, 0] = label
            onehot[:, label] = 1
            for j, head in enumerate(self.heads, start=1):
                probs = torch.softmax(head(onehot[:, : self.offsets[j]]), dim=1)
                drawn = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                codes[:, j] = drawn
                onehot[torch.arange(count), self.offsets[j] + drawn] = 1
            return codes.numpy()

    return Autoregressive


def _autoregressive(sizes: list[int], hidden: int) -> Any:
    return _module_class()(sizes, hidden)
