"""Step verdicts and per-trace reports: the Verifier contract's vocabulary (DESIGN.md).

A step is ``proved`` (its claim checked true), ``refuted`` (checked false), ``no_check`` (nothing to
check, e.g. a start marker), ``unformalizable`` (outside the grammar, so no claim can be stated),
``vacuous`` (a formal statement that says nothing: conclusion ``True``, contradictory hypotheses; the Lean
backend's guard against contentless "proofs") or ``error`` (the checker itself failed: timeout, crash). A step *holds* when it is proved or needs no
check; a trace is *valid* when every step holds. ``error`` is never counted as refuted.

Example::

    python -c "from reasonpipe.verifiers.verdicts import StepVerdict, Verdict; print(StepVerdict(Verdict.PROVED, 'ok'))"
"""

from __future__ import annotations

import abc
import operator
from collections import Counter
from dataclasses import dataclass, field


class Verdict:
    """The verdicts, as plain strings (cheap to hash and count, and what the JSON output holds)."""

    PROVED = "proved"
    REFUTED = "refuted"
    NO_CHECK = "no_check"
    UNFORMALIZABLE = "unformalizable"
    VACUOUS = "vacuous"
    ERROR = "error"
    ALL = (PROVED, REFUTED, NO_CHECK, UNFORMALIZABLE, VACUOUS, ERROR)


HOLDING = frozenset({Verdict.PROVED, Verdict.NO_CHECK})


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """The verdict on one step; its index is its position in the list ``verify`` returns."""

    verdict: str  # one of Verdict.ALL
    reason: str = ""

    @property
    def holds(self) -> bool:
        return self.verdict in HOLDING


@dataclass
class TraceReport:
    """A trace's verdicts summed up: counts per verdict, first failing step, solved or not."""

    id: str
    task: str
    steps: int
    counts: dict[str, int]
    solved: bool
    first_failure: int | None = None  # 0-based step index
    first_failure_verdict: str = ""
    first_failure_reason: str = ""
    first_failure_text: str = ""
    line: int | None = None  # line of the record in its file
    verdicts: list[StepVerdict] = field(default_factory=list, repr=False)

    @property
    def valid(self) -> bool:
        return self.first_failure is None

    @property
    def step_score(self) -> float | None:
        """Fraction of steps that hold (a step-level reward); None when the checker failed on any step
        (``error``), so that a timeout is never read as a wrong step."""
        if self.counts.get(Verdict.ERROR, 0):
            return None
        return (self.counts[Verdict.PROVED] + self.counts[Verdict.NO_CHECK]) / self.steps if self.steps else 0.0

    def to_json(self, with_steps: bool = False) -> dict:
        out = {"id": self.id, "task": self.task, "line": self.line, "steps": self.steps, "valid": self.valid,
               "solved": self.solved, "counts": self.counts}
        if self.first_failure is not None:
            out["first_failure"] = {"step": self.first_failure + 1, "verdict": self.first_failure_verdict,
                                    "reason": self.first_failure_reason, "text": self.first_failure_text}
        if with_steps:  # every step's verdict; the reason of every step that is not proved, by 1-based step
            out["verdicts"] = [v.verdict for v in self.verdicts]
            out["reasons"] = {str(i + 1): v.reason for i, v in enumerate(self.verdicts) if v.verdict != Verdict.PROVED}
        return out


_VERDICT_OF = operator.attrgetter("verdict")


def summarize(trace_id: str, task: str, verdicts: list[StepVerdict], solved: bool, steps: list,
              line: int | None = None) -> TraceReport:
    """Build a TraceReport from the verdicts a verifier returned for ``steps`` (grammar steps)."""
    counts = dict.fromkeys(Verdict.ALL, 0)
    counts.update(Counter(map(_VERDICT_OF, verdicts)))  # counted in C: this runs once per step
    first = None
    if counts[Verdict.PROVED] + counts[Verdict.NO_CHECK] != len(verdicts):
        first = next(i for i, v in enumerate(verdicts) if v.verdict not in HOLDING)
    report = TraceReport(id=trace_id, task=task, steps=len(verdicts), counts=counts, solved=solved, line=line,
                         verdicts=verdicts)
    if first is not None:
        report.first_failure = first
        report.first_failure_verdict = verdicts[first].verdict
        report.first_failure_reason = verdicts[first].reason
        report.first_failure_text = steps[first].to_line() if first < len(steps) else ""
    return report


class ExactVerifier(abc.ABC):
    """The Verifier contract on top of one method, ``_check(trace) -> (verdicts, solved)``, that subclasses
    write: ``verify`` returns the verdicts, ``report`` sums them up. ``check`` never raises: a checker failure
    becomes ``error`` verdicts, never ``refuted`` (a subclass that can keep the verdicts before the crash
    overrides ``check`` itself)."""

    task = ""

    def check(self, trace) -> tuple[list[StepVerdict], bool]:
        """One verdict per step of ``trace``, and whether it reached a verified solution: :meth:`_check`,
        with a crash of the checker turned into ``error`` verdicts for every step (never ``refuted``)."""
        try:
            return self._check(trace)
        except Exception as e:  # a checker bug must never read as a refutation
            return [StepVerdict(Verdict.ERROR, f"verifier crashed: {type(e).__name__}: {e}")] * len(trace.steps), False

    @abc.abstractmethod
    def _check(self, trace) -> tuple[list[StepVerdict], bool]:
        """What :meth:`check` returns; may raise."""

    def verify(self, trace) -> list[StepVerdict]:
        return self.check(trace)[0]

    def report(self, trace, line: int | None = None) -> TraceReport:
        verdicts, solved = self.check(trace)
        return summarize(trace.id, self.task, verdicts, solved, trace.steps, line)
