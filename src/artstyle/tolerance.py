"""Is a run the committed result? Each evaluation metric against its stated tolerance.

Under the pipeline's own settings (``train.repeatable: true``, ``boost.device: cpu``) a
run on any x86-64 CPU gives the committed numbers exactly, so the tolerance is zero: any
difference is a change of code, data or params, not noise. Where exactness cannot be had
(``train.repeatable: false``, XGBoost on a GPU, another library version) the
tolerances below apply: the largest absolute difference that is still the same result.
They are the spread measured between two CPUs without the repeatable setting (an AMD EPYC
and an Intel Xeon with AMX, issue 29: up to 0.08 in test accuracy, 2-4 of 40-50 images),
rounded up; ``docs/development.md`` ("What is repeatable") says where each applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Per metric of ``reports/eval/<model>/metrics.json``: the tolerance when the run is
#: not repeatable (absolute, in the metric's unit: a fraction of the split's images).
TOLERANCE: dict[str, float] = {
    "accuracy": 0.10,
    "macro_f1": 0.10,
    "macro_precision": 0.12,
    "macro_recall": 0.10,
}
#: The tolerance of every metric when the run is repeatable: the same digits.
EXACT: dict[str, float] = {name: 0.0 for name in TOLERANCE}


@dataclass(frozen=True)
class Difference:
    """One metric of one split of one model, run against committed."""

    model: str
    split: str
    metric: str
    committed: float | None
    run: float | None
    tolerance: float

    @property
    def within(self) -> bool:
        """True when both exist and ``|run - committed| <= tolerance``."""
        if self.committed is None or self.run is None:
            return False
        return abs(self.run - self.committed) <= self.tolerance + 1e-12


def compare_metrics(model: str, run: Mapping, committed: Mapping,
                    tolerance: Mapping[str, float] = EXACT) -> list[Difference]:
    """Compare two ``metrics.json`` documents of the evaluate stage, metric by metric.

    Parameters
    ----------
    model : str
        The model's name (copied into each row).
    run, committed : mapping
        ``{split: {metric: float, ...}, ...}`` as written by
        :func:`artstyle.evaluation.write_evaluation`; keys not in ``tolerance`` (``n``)
        are not compared.
    tolerance : mapping of str to float
        Metric -> largest absolute difference still counted as the same
        (:data:`EXACT` or :data:`TOLERANCE`).

    Returns
    -------
    list of Difference
        One row per split and metric present in either document.
    """
    rows = []
    for split in sorted(set(run) | set(committed)):
        a, b = run.get(split) or {}, committed.get(split) or {}
        if not isinstance(a, Mapping) or not isinstance(b, Mapping):
            continue
        for metric in tolerance:
            if metric in a or metric in b:
                rows.append(Difference(model, split, metric, b.get(metric), a.get(metric),
                                       float(tolerance[metric])))
    return rows


__all__ = ["EXACT", "TOLERANCE", "Difference", "compare_metrics"]
