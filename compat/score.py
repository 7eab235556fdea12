"""Compare a loop's run with stock asyncio's run of the same tests.

Role: the score (tests passing under the loop / tests passing under stock
asyncio in the same interpreter, per tier) and the list of tests that fail
under stock asyncio too, which are the environment's fault (no network, a
resource-gated test, a slow machine), not the loop's.

Invariant owned here: both sides are compared through canonical test ids
(:func:`compat.variants.canonical_id`), only over modules present in both
runs, and the numerator only counts tests that also pass in the baseline, so
a score is never above 100% and never compares different test populations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compat import results


@dataclass
class TierScore:
    tier: str
    baseline_passed: int = 0
    loop_passed: int = 0
    # Pass under the loop but not under stock asyncio: shown, not scored.
    loop_only: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        if not self.baseline_passed:
            return 0.0
        return self.loop_passed / self.baseline_passed


def _canonical_outcomes(run: results.RunResult, tier: str, modules: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for test_id, (module, record) in run.records(tier).items():
        if module not in modules:
            continue
        key = run.canonical(test_id)
        if key is not None:
            out[key] = record.outcome
    return out


def score(run: results.RunResult, baseline: results.RunResult, tier: str) -> TierScore:
    modules = set(run.modules) & set(baseline.modules)
    mine = _canonical_outcomes(run, tier, modules)
    theirs = _canonical_outcomes(baseline, tier, modules)
    result = TierScore(tier=tier)
    for key, outcome in sorted(theirs.items()):
        if results.is_pass(outcome):
            result.baseline_passed += 1
            if key not in mine:
                result.missing.append(key)
            elif results.is_pass(mine[key]):
                result.loop_passed += 1
        elif results.is_fail(outcome):
            result.environment.append(key)
    for key, outcome in sorted(mine.items()):
        if results.is_pass(outcome) and not results.is_pass(theirs.get(key, "")):
            result.loop_only.append(key)
    return result


def environment_failures(run: results.RunResult, baseline: results.RunResult | None) -> set[str]:
    """Ids of ``run`` whose canonical test also fails under the baseline."""
    if baseline is None:
        return set()
    failing = {
        key
        for test_id, (_, record) in baseline.records().items()
        if results.is_fail(record.outcome) and (key := baseline.canonical(test_id)) is not None
    }
    return {test_id for test_id in run.records() if run.canonical(test_id) in failing}
