"""docs/adding-a-task.md, followed for a toy task: a new task, its grammar, a searcher and a verifier, registered
in the three plain-dict registries and nothing else changed; trace generation, verification and the tokenizer then
work for it as for the built-in tasks.

The toy task, "parity": the problem is a row of bits, the trace reads them one by one keeping the running parity,
and the answer is the parity of the row.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from reasonpipe.errors import InputError
from reasonpipe.traces import Trace, TraceMeta
from reasonpipe.traces.lines import Unparsed, parse_lines
from reasonpipe.traces.tokens import vocabulary_from
from reasonpipe.verifiers.verdicts import ExactVerifier, StepVerdict, Verdict

# -- 1. the grammar: steps <-> lines (in a real task: reasonpipe/traces/parity.py) ----------------------------


@dataclass(frozen=True, slots=True)
class Bits:
    kind: ClassVar[str] = "bits"
    bits: tuple[int, ...]

    def to_line(self) -> str:
        return "Bits " + " ".join(map(str, self.bits))

    def to_json(self) -> list:
        return [self.kind, list(self.bits)]


@dataclass(frozen=True, slots=True)
class Read:
    kind: ClassVar[str] = "read"
    index: int
    bit: int
    parity: int

    def to_line(self) -> str:
        return f"Bit {self.index} = {self.bit} , parity {self.parity}"

    def to_json(self) -> list:
        return [self.kind, self.index, self.bit, self.parity]


@dataclass(frozen=True, slots=True)
class Answer:
    kind: ClassVar[str] = "answer"
    parity: int

    def to_line(self) -> str:
        return f"Answer {self.parity}"

    def to_json(self) -> list:
        return [self.kind, self.parity]


class ParityGrammar:
    """The grammar module's interface: ``parse_line``, ``parse`` and ``task_spans``."""

    @staticmethod
    def parse_line(line: str) -> Any:
        if m := re.fullmatch(r"Bits((?: [01])+)", line):
            return Bits(tuple(int(b) for b in m[1].split()))
        if m := re.fullmatch(r"Bit (\d+) = ([01]) , parity ([01])", line):
            return Read(int(m[1]), int(m[2]), int(m[3]))
        if m := re.fullmatch(r"Answer ([01])", line):
            return Answer(int(m[1]))
        return Unparsed(line)

    @staticmethod
    def parse(text: str) -> list:
        return parse_lines(text, ParityGrammar.parse_line)

    @staticmethod
    def task_spans(text: str) -> list[tuple[int, int]]:
        """The running parity after each bit and the answer: what the learning diagnostics score."""
        return [m.span(1) for m in re.finditer(r"(?:parity|Answer) ([01])", text)]


# -- 2. the task: problems, rules, score, vocabulary, records (reasonpipe/tasks/parity.py) --------------------

@dataclass(frozen=True)
class ParityProblem:
    bits: tuple[int, ...]


@dataclass
class ParityConfig:
    length: int = 6  # bits per problem


class ParityTask:
    name = "parity"
    grammar = ParityGrammar

    def __init__(self, config: ParityConfig | None = None) -> None:
        self.config = config or ParityConfig()

    def generate(self, rng: random.Random) -> ParityProblem:
        return ParityProblem(tuple(rng.randint(0, 1) for _ in range(self.config.length)))

    @staticmethod
    def prompt(problem: ParityProblem) -> str:
        return Bits(problem.bits).to_line() + "\n"

    @staticmethod
    def parse_answer(text: str) -> int | None:
        found = re.findall(r"^Answer ([01])$", text, re.M)
        return int(found[-1]) if found else None

    def score(self, problem: ParityProblem, text: str) -> float:
        return float(self.parse_answer(text) == sum(problem.bits) % 2)

    @staticmethod
    def vocabulary() -> tuple[str, ...]:
        return vocabulary_from("Bits Bit = , parity Answer\n")

    @staticmethod
    def problem_of(steps: list) -> ParityProblem | None:
        return ParityProblem(steps[0].bits) if steps and isinstance(steps[0], Bits) else None

    @staticmethod
    def problem_to_json(problem: ParityProblem) -> dict[str, Any]:
        return {"bits": list(problem.bits)}

    @staticmethod
    def problem_from_json(obj: Any, field: str = "problem") -> ParityProblem:
        if not (isinstance(obj, dict) and isinstance(obj.get("bits"), list)
                and all(b in (0, 1) for b in obj["bits"])):
            raise InputError("expected {\"bits\": [0 or 1, ...]}", field=field)
        return ParityProblem(tuple(obj["bits"]))


# -- 3. a searcher (searchers/parity.py) and a verifier (verifiers/parity.py) -----------------------------------

def direct(task: ParityTask, problem: ParityProblem, options: Any, rng: random.Random) -> Trace:
    steps: list[Any] = [Bits(problem.bits)]
    parity = 0
    for i, bit in enumerate(problem.bits):
        parity ^= bit
        steps.append(Read(i, bit, parity))
    steps.append(Answer(parity))
    return Trace(task=task.name, problem=problem, steps=steps,
                 meta=TraceMeta(searcher="direct", nodes_expanded=len(problem.bits), backtracks=0, solved=True))


class ParityVerifier(ExactVerifier):
    task = "parity"

    def _check(self, trace: Trace) -> tuple[list[StepVerdict], bool]:
        verdicts, parity, solved = [], 0, False
        for step in trace.steps:
            if isinstance(step, Bits):
                verdicts.append(StepVerdict(Verdict.NO_CHECK, "the problem"))
            elif isinstance(step, Read):
                ok = step.index < len(trace.problem.bits) and trace.problem.bits[step.index] == step.bit \
                    and step.parity == parity ^ step.bit
                parity ^= step.bit
                verdicts.append(StepVerdict(Verdict.PROVED if ok else Verdict.REFUTED, "bit and running parity"))
            elif isinstance(step, Answer):
                solved = step.parity == sum(trace.problem.bits) % 2
                verdicts.append(StepVerdict(Verdict.PROVED if solved else Verdict.REFUTED, "parity of the row"))
            else:
                verdicts.append(StepVerdict(Verdict.UNFORMALIZABLE, "not in the parity grammar"))
        return verdicts, solved


# -- 4. registration: one line in each registry ------------------------------------------------------------------

@pytest.fixture
def parity_registered(monkeypatch):
    """In the repository these are one line each in reasonpipe/tasks/__init__.py (TASKS), searchers/__init__.py
    (SEARCHERS) and verifiers/__init__.py (VERIFIERS); here they are added for the test only."""
    from reasonpipe import searchers
    from reasonpipe import verifiers
    from reasonpipe import tasks

    monkeypatch.setitem(tasks.TASKS, "parity", (ParityTask, ParityConfig))
    monkeypatch.setitem(searchers.SEARCHERS, "parity", {"direct": direct})
    monkeypatch.setitem(verifiers.VERIFIERS, "parity", ParityVerifier)


def test_the_toy_task_generates_verifies_and_tokenizes(parity_registered, tmp_path):
    from reasonpipe.tokenizer import TaskTokenizer
    from reasonpipe.tracegen import GenRequest, generate
    from reasonpipe.verify import verify_file

    path = tmp_path / "parity.jsonl"
    summary = generate(GenRequest(task="parity", searcher="direct", out=str(path), n=20, seed=3,
                                  task_options={"length": 5}))
    assert summary.traces == 20 and summary.solved == 20
    first = json.loads(path.read_text().splitlines()[0])
    assert first["task"] == "parity" and first["text"].startswith("Bits ") and first["meta"]["tokens"] > 0
    again = tmp_path / "again.jsonl"
    generate(GenRequest(task="parity", searcher="direct", out=str(again), n=20, seed=3, task_options={"length": 5}))
    assert again.read_bytes() == path.read_bytes()  # same seed, same bytes

    result = verify_file(str(path))
    assert result.traces == 20 and result.valid == 20

    # a wrong running parity is refuted at its step, through the same file path
    lines = path.read_text().splitlines()
    record = json.loads(lines[0])
    record["text"] = re.sub(r", parity ([01])", lambda m: f", parity {1 - int(m[1])}", record["text"], count=1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(record) + "\n" + "\n".join(lines[1:]) + "\n")
    result = verify_file(str(bad))
    assert result.valid == 19

    # the task tokenizer covers every trace and round-trips it
    hf = TaskTokenizer.for_task("parity").hf()
    text = record["text"]
    assert TaskTokenizer.for_task("parity").unknown(text) == set()
    assert hf.decode(hf(text, add_special_tokens=False)["input_ids"]) == text

    # the learning diagnostics read the task through its grammar's task_spans and its scorer
    from reasonpipe.diagnostics import completion_stats, task_token_mask
    from reasonpipe.tasks import make_task

    task = make_task("parity", length=5)
    good = json.loads(lines[1])
    problem = task.problem_from_json(good["problem"])
    prompt = task.prompt(problem)
    _, _, on_task = task_token_mask(hf, task, good["text"], prompt)
    assert sum(on_task) == 5 + 1  # a running parity per bit, and the answer
    stats = completion_stats(task, [problem], [prompt], [good["text"][len(prompt):]])
    assert stats.well_formed == stats.solved == 1 and stats.claimed_wrong == 0


def test_an_unregistered_task_is_named_in_the_error():
    from reasonpipe.tasks import make_task

    with pytest.raises(InputError, match="unknown task 'parity'"):
        make_task("parity")
