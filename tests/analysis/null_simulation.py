"""False-positive rates of the preference tests when people differ in taste but the population
has no preference (each answer BLA-T with the participant's own probability, mean 1/2).

Used small by the tests; run as a script for the rates quoted in the report:

    .venv/bin/python tests/analysis/null_simulation.py --runs 4000 --participants 62 --answers 12 --gee
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from analysis.statistics import participant_sign_test, sign_flip_test, sign_test  # noqa: E402

TIE_PROBABILITY = 0.15
ALPHA = 0.05


def tastes(kind: str, participants: int, rng: np.random.Generator) -> np.ndarray:
    """Each person's probability of BLA-T in a decisive answer; population mean 1/2.

    'uniform': spread evenly over 0–1 (symmetric). 'skewed': a fifth of the people choose BLA-T
    9 times in 10, the rest 4 in 10 (mean 1/2, but not symmetric).
    """
    if kind == "uniform":
        return rng.uniform(0, 1, participants)
    return np.where(rng.random(participants) < 0.2, 0.9, 0.4)


def gee_p(bla: np.ndarray, decisive: np.ndarray, cov_type: str) -> float:
    """Wald p of the intercept of a GEE logistic model with participant clusters."""
    from statsmodels.genmod.cov_struct import Exchangeable
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_estimating_equations import GEE

    person = np.repeat(np.arange(len(decisive)), decisive)
    y = np.concatenate([np.r_[np.ones(b), np.zeros(d - b)] for b, d in zip(bla, decisive)])
    fit = GEE(y, np.ones((len(y), 1)), groups=person, family=Binomial(),
              cov_struct=Exchangeable()).fit(cov_type=cov_type)
    return float(fit.pvalues[0])


def simulate(runs: int, participants: int, answers: int, seed: int, kind: str = "uniform",
             with_gee: bool = False) -> dict[str, float]:
    """Share of runs in which each test rejects at α = 0.05."""
    rng = np.random.default_rng(seed)
    names = ["naive_answers", "participant_sign", "sign_flip"]
    if with_gee:
        names += ["gee_robust", "gee_bias_reduced"]
    rejected = dict.fromkeys(names, 0)
    for _ in range(runs):
        decisive = rng.binomial(answers, 1 - TIE_PROBABILITY, participants)
        bla = rng.binomial(decisive, tastes(kind, participants, rng))
        other = decisive - bla
        p = {"naive_answers": sign_test(bla.sum(), other.sum()),
             "participant_sign": participant_sign_test(bla, other),
             "sign_flip": sign_flip_test(bla - other)}
        if with_gee:
            p["gee_robust"] = gee_p(bla, decisive, "robust")
            p["gee_bias_reduced"] = gee_p(bla, decisive, "bias_reduced")
        for name in names:
            rejected[name] += p[name] < ALPHA
    return {name: count / runs for name, count in rejected.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--participants", type=int, default=62)
    parser.add_argument("--answers", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gee", action="store_true", help="also fit GEE models (slow)")
    args = parser.parse_args()
    for kind in ("uniform", "skewed"):
        start = time.perf_counter()
        rates = simulate(args.runs, args.participants, args.answers, args.seed, kind, args.gee)
        shown = ", ".join(f"{name} {100 * rate:.1f}%" for name, rate in rates.items())
        print(f"{kind} tastes, {args.participants} participants × {args.answers} answers, "
              f"{args.runs} runs ({time.perf_counter() - start:.0f} s): {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
