"""Learning diagnostics: has a model learned its task, or only the format of its traces?

A trace's loss says little: almost every token of a DFS trace is format or copying, so a model that writes
``Exploring Operation: 2*2=12`` and ``12,19 equal: Goal Reached`` can reach a low loss per token. These measures
look at what carries the task instead:

- **task-token accuracy** (teacher-forced, on held-out traces): the model's next-token prediction at the tokens
  each task's grammar marks as carrying the task (``grammar.task_spans``: CountDown's operation results, the
  numbers they leave and the goal checks; Sudoku's placed values and candidate lists; reachability's frontiers and
  answer; the gym tasks' ``Check`` verdicts and ``Answer``), beside the accuracy over all completion tokens;
- on sampled completions: the rate of **well-formed** traces (every complete line in the grammar), of **claimed**
  answers (the task's parser finds one, e.g. CountDown's ``Goal Reached``), of **claimed but wrong** ones (the
  exact scorer refutes them) and of **solved** problems, each with its 95% Wilson interval;
- the **verdict**: a model has learned its task when its task-token accuracy is at least :data:`TASK_TOKEN_MIN`
  and it solves, at its largest budget, at least :data:`SOLVED_MIN_OF_BOUND` of what the data bound (the symbolic
  search that wrote its training traces, on the same problems and budget) solves; where a guess already solves
  some (reachability's choice of two candidates: half), that fraction of the way from the guess to the bound. A comparison between two models
  means something only when both have learned (:func:`comparison_sentence`).

The thresholds are the project's documented definition (docs/architecture.md, "Learning diagnostics"), set before
any recipe was tuned: 0.90 because a model below it gets about one task token in ten wrong, which sinks a trace
with dozens of them; half the bound because a model under it has not learned the search its data shows.

Example::

    python -c "from reasonpipe.diagnostics import completion_stats; from reasonpipe.tasks import make_task; t = make_task('countdown'); p = t.generate(__import__('random').Random(0)); print(completion_stats(t, [p], [t.prompt(p)], ['Exploring Operation: 2*2=12, Resulting Numbers: [12]\\n12,12 equal: Goal Reached\\n']))"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from reasonpipe.stats import Rate, rate_text
from reasonpipe.tasks import completion_text
from reasonpipe.traces.lines import Unparsed

TASK_TOKEN_MIN = 0.90
SOLVED_MIN_OF_BOUND = 0.5


# -- teacher-forced accuracy on held-out traces ----------------------------------------------------------

@dataclass
class TokenAccuracy:
    """Next-token accuracy under teacher forcing: on the task's tokens, and on every completion token."""

    task_correct: int = 0
    task_total: int = 0
    correct: int = 0
    total: int = 0
    traces: int = 0

    @property
    def task(self) -> float | None:
        return self.task_correct / self.task_total if self.task_total else None

    @property
    def all(self) -> float | None:
        return self.correct / self.total if self.total else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "task_token_accuracy": self.task, "token_accuracy": self.all}


def task_token_mask(hf: Any, task: Any, text: str, prompt: str,
                    text_format: Any = None) -> tuple[list[int], list[bool], list[bool]]:
    """``text`` (a whole trace, prompt first) as the model sees it: the prompt's ids (BOS and the prompt's tokens
    for the task tokenizer; a pretrained model's prompt as ``text_format``, a :class:`reasonpipe.textformat.TextFormat`,
    writes it), then the completion's; and two masks over those ids: the completion's tokens (the prompt is given, not
    predicted), and those of them that overlap one of the task's spans (``task.grammar.task_spans``)."""
    spans = task.grammar.task_spans(text)
    if text_format is not None and text_format.pretrained:
        ids = text_format.prompt_ids(hf, text_format.wrap(task, prompt))
        completion_text = text_format.completion_of(task, prompt, text) or ""
        shift = len(prompt) - text_format.body_offset()  # completion position -> trace position
        enc = hf(completion_text, add_special_tokens=False, return_offsets_mapping=True)
        body_end = text_format.body_offset() + len(text) - len(prompt)
        completion = [False] * len(ids)
        on_task = [False] * len(ids)
        ids = ids + list(enc["input_ids"])
        j = 0
        for start, end in enc["offset_mapping"]:
            completion.append(True)
            inside = text_format.body_offset() <= start < body_end
            start, end = start + shift, end + shift
            while j < len(spans) and spans[j][1] <= start:
                j += 1
            on_task.append(inside and j < len(spans) and spans[j][0] < end and start < spans[j][1])
        return ids, completion, on_task
    enc = hf(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = [hf.bos_token_id] + list(enc["input_ids"])
    completion = [False]
    on_task = [False]
    j = 0
    for start, end in enc["offset_mapping"]:
        completion.append(start >= len(prompt))
        while j < len(spans) and spans[j][1] <= start:
            j += 1
        on_task.append(start >= len(prompt) and j < len(spans) and spans[j][0] < end and start < spans[j][1])
    return ids, completion, on_task


def token_accuracy(model: Any, hf: Any, task: Any, texts: Sequence[str], prompts: Sequence[str],
                   max_len: int = 1024, batch_size: int = 16, text_format: Any = None) -> TokenAccuracy:
    """Teacher-forced next-token accuracy of ``model`` on held-out traces ``texts`` (each starting with its
    ``prompts`` entry), cut to ``max_len`` tokens; argmax prediction, padding ignored."""
    import torch

    rows = []
    for text, prompt in zip(texts, prompts):
        ids, completion, on_task = task_token_mask(hf, task, text, prompt, text_format)
        ids, completion, on_task = ids[:max_len], completion[:max_len], on_task[:max_len]
        if len(ids) > 1:
            rows.append((ids, completion, on_task))
    out = TokenAccuracy(traces=len(rows))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    pad = hf.pad_token_id if hf.pad_token_id is not None else 0
    try:
        with torch.no_grad():
            for b in range(0, len(rows), batch_size):
                chunk = rows[b:b + batch_size]
                width = max(len(r[0]) for r in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                attn = torch.zeros((len(chunk), width), dtype=torch.long)
                comp = torch.zeros((len(chunk), width), dtype=torch.bool)
                on = torch.zeros((len(chunk), width), dtype=torch.bool)
                for i, (r_ids, r_comp, r_on) in enumerate(chunk):
                    n = len(r_ids)
                    ids[i, :n] = torch.tensor(r_ids)
                    attn[i, :n] = 1
                    comp[i, :n] = torch.tensor(r_comp)
                    on[i, :n] = torch.tensor(r_on)
                logits = model(input_ids=ids.to(device), attention_mask=attn.to(device)).logits.float()
                hit = (logits[:, :-1].argmax(-1).cpu() == ids[:, 1:])
                comp, on = comp[:, 1:], on[:, 1:]
                out.correct += int((hit & comp).sum())
                out.total += int(comp.sum())
                out.task_correct += int((hit & on).sum())
                out.task_total += int(on.sum())
    finally:
        model.train(was_training)
    return out


# -- sampled completions ---------------------------------------------------------------------------------

@dataclass
class CompletionStats:
    """Counts over sampled completions, one per problem (or every sample of every problem)."""

    n: int = 0
    well_formed: int = 0
    claimed: int = 0
    claimed_wrong: int = 0
    solved: int = 0

    def rate(self, name: str) -> Rate:
        return Rate(getattr(self, name), self.n)

    def rows(self) -> list[tuple[str, str]]:
        return [(label, rate_text(getattr(self, name), self.n)) for name, label in
                (("well_formed", "well-formed traces"), ("claimed", "claimed an answer"),
                 ("claimed_wrong", "claimed but wrong"), ("solved", "solved"))]

    def __add__(self, other: CompletionStats) -> CompletionStats:
        return CompletionStats(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))


def well_formed(task: Any, text: str, finished: bool = True) -> bool:
    """Every complete line of ``text`` is in the task's grammar (a line cut by the budget, unfinished, is not
    judged) and there is at least one line after the prompt's."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif not finished and lines:
        lines.pop()  # cut mid-line by the token budget
    if len(lines) < 2:
        return False
    return not any(isinstance(step, Unparsed) for step in task.grammar.parse("\n".join(lines) + "\n"))


def completion_stats(task: Any, problems: Sequence[Any], prompts: Sequence[str], completions: Sequence[str],
                     finished: Sequence[bool] | None = None, text_format: Any = None) -> CompletionStats:
    """Well-formed, claimed, claimed-but-wrong and solved counts over ``completions`` (one per problem), of the trace
    each holds (``text_format``'s answer layout: the ``<think>`` content; ``prompts`` are then the task's prompt
    lines)."""
    out = CompletionStats()
    for i, (problem, prompt, completion) in enumerate(zip(problems, prompts, completions)):
        if text_format is not None and text_format.layout == "answer":
            text = text_format.trace_text(task, problem, completion)
        else:
            text = completion_text(prompt, completion)
        ok = task.score(problem, text) == 1.0
        claimed = task.parse_answer(text) is not None
        out.n += 1
        out.well_formed += well_formed(task, text, True if finished is None else finished[i])
        out.claimed += claimed
        out.claimed_wrong += claimed and not ok
        out.solved += ok
    return out


# -- the verdict -----------------------------------------------------------------------------------------

@dataclass
class Verdict:
    """Whether a model has learned its task, and the figures that decided it, in words."""

    learned: bool
    reason: str


def learned_verdict(task_accuracy: float | None, solved: Rate, bound: float | None, chance: float = 0.0) -> Verdict:
    """Learned when task-token accuracy >= TASK_TOKEN_MIN and ``solved`` (at the largest budget) >=
    SOLVED_MIN_OF_BOUND of the way from ``chance`` (what a guess solves: 0.5 for a choice of two, 0 for a search) to
    ``bound`` (the data bound's solved fraction there; None: 1.0, the task's own answer)."""
    reference = 1.0 if bound is None else bound
    need = chance + SOLVED_MIN_OF_BOUND * (reference - chance)
    missing = []
    if task_accuracy is None:
        missing.append("no task-token accuracy measured")
    elif task_accuracy < TASK_TOKEN_MIN:
        missing.append(f"task-token accuracy {task_accuracy:.1%} < {TASK_TOKEN_MIN:.0%}")
    if solved.value < need:
        what = f"the data bound's {reference:.1%}" if bound is not None else "all problems"
        missing.append(f"solves {solved.text()}, under half of {what}" if not chance else
                       f"solves {solved.text()}, under half-way from chance ({chance:.0%}) to {what}")
    if missing:
        return Verdict(False, "not learned: " + "; ".join(missing))
    acc = f"task-token accuracy {task_accuracy:.1%}" if task_accuracy is not None else ""
    return Verdict(True, f"learned: {acc}, solves {solved.text()} (needs {need:.1%})")


def comparison_sentence(verdicts: dict[str, Verdict]) -> str:
    """One sentence on whether comparing these models means anything."""
    not_learned = [name for name, v in verdicts.items() if not v.learned]
    if not verdicts:
        return "No model was evaluated."
    if not not_learned:
        return (f"Every model here has learned its task ({', '.join(verdicts)}): the comparison below measures the "
                "strategies, within the intervals shown.")
    verb = "has" if len(not_learned) == 1 else "have"
    return (f"This comparison is not meaningful: {' and '.join(not_learned)} {verb} not learned the task "
            f"({'; '.join(f'{n}: {verdicts[n].reason}' for n in not_learned)}). A difference between the curves "
            "says how the models failed, not which strategy is better.")
