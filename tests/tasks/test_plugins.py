"""docs/plugins.md, run: the example plug-in package (examples/plugins/sumtask: a task, its searchers, its verifier,
its rewards) named as ``module:attr`` in the real config paths (the tracegen and verify jobs' configs, the GRPO
config, ``reasonpipe gen``/``verify`` as documented), and the errors a wrong name gives, each naming its field.
The built-in names resolve as before."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

from reasonpipe.config import load_config
from reasonpipe.errors import InputError

EXAMPLE = REPO / "examples" / "plugins"
TASK = "sumtask.task:SumTask"


@pytest.fixture
def plugins(monkeypatch):
    """examples/plugins on the import path, as ``PYTHONPATH=examples/plugins`` puts it there."""
    monkeypatch.syspath_prepend(str(EXAMPLE))


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """``user_module(name, source)``: a module of the user's own, importable for this test."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(name, None)
        return name

    yield write


def _generate(tmp_path, **overrides):
    from reasonpipe.jobs.tracegen import TracegenConfig, main

    out = tmp_path / "sum.jsonl"
    cfg = load_config(TracegenConfig, str(EXAMPLE / "tracegen.yaml"),
                      {"out": str(out), "n": 40, "quiet": True, **overrides})
    assert cfg.task == TASK and cfg.searcher == "sumtask.search:dfs"
    assert main(cfg) == 0
    return out


# -- the example through the config paths ---------------------------------------------------------------------

def test_tracegen_config_writes_the_plugin_tasks_traces(plugins, tmp_path):
    out = _generate(tmp_path)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 40 and all(r["task"] == TASK for r in records)  # the record names the plug-in again
    assert all(r["meta"]["solved"] and r["text"].startswith("Numbers ") for r in records)
    assert sum(r["meta"]["backtracks"] for r in records) > 0  # dfs: dead ends and backtracks are in the traces
    assert {tuple(r["problem"]) for r in records} == {("numbers", "target")}
    assert all(len(r["problem"]["numbers"]) == 6 for r in records)  # task_options: {count: 6} reached the task

    again = _generate(tmp_path / "again")
    assert again.read_bytes() == out.read_bytes()  # same config, same bytes


def test_verify_config_gives_verdicts_and_refutes_a_wrong_step(plugins, tmp_path):
    from reasonpipe.jobs.verify import VerifyJobConfig, main
    from reasonpipe.verify import verify_file

    traces = _generate(tmp_path)
    verdicts = tmp_path / "verdicts.jsonl"
    cfg = load_config(VerifyJobConfig, str(EXAMPLE / "verify.yaml"),
                      {"file": str(traces), "out": str(verdicts), "quiet": True})
    assert cfg.verifier == "sumtask.verifier:SumVerifier"
    assert main(cfg) == 0
    rows = [json.loads(line) for line in verdicts.read_text().splitlines()]
    assert len(rows) == 40 and all(r["valid"] and r["solved"] for r in rows)
    assert all(r["counts"]["proved"] == r["steps"] - 1 and r["counts"]["no_check"] == 1 for r in rows)

    # one wrong sum, one number that is not there: refuted at their steps; the task's default verifier (no
    # verifier: field, SumTask.verifier) gives the same verdicts
    lines = traces.read_text().splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])
    first["text"] = first["text"].replace(" sum ", " sum 1", 1)  # "Take 4 at 0 sum 14"
    second["text"] = second["text"].replace("\nAnswer ", "\nAnswer 99 ", 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([json.dumps(first), json.dumps(second), *lines[2:]]) + "\n")
    for verifier in ("sumtask.verifier:SumVerifier", None):
        result = verify_file(str(bad), verifier=verifier)
        assert (result.traces, result.valid) == (40, 38) and result.solved <= 39
        reasons = {r.id: (r.first_failure, r.first_failure_verdict) for r in result.failing}
        assert reasons[first["id"]] == (1, "refuted")
        assert reasons[second["id"]] == (len(second["text"].splitlines()) - 1, "refuted")

    with pytest.raises(InputError, match="field 'verifier': a plug-in verifier runs as the exact backend"):
        verify_file(str(bad), verifier="sumtask.verifier:SumVerifier", backend="lean")


def test_the_documented_commands_run(tmp_path):
    """docs/plugins.md's commands, as a user types them: PYTHONPATH names the plug-ins' folder."""
    env = {**os.environ, "PYTHONPATH": "examples/plugins", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "sum.jsonl"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "reasonpipe", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120)

    gen = run("gen", TASK, "--searcher", "sumtask.search:direct", "--n", "20", "--out", str(out), "--quiet")
    assert gen.returncode == 0, gen.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 20 and all(r["meta"]["backtracks"] == 0 and r["meta"]["searcher"] == "direct"
                                      for r in records)
    ver = run("verify", str(out), "--quiet")  # the task's own verifier, found from the records' task
    assert ver.returncode == 0 and "valid traces (every step holds) │ 20" in ver.stdout, ver.stdout + ver.stderr


def test_plugin_rewards_score_completions(plugins):
    from reasonpipe.rewards import StepScore, make_reward
    from sumtask import rewards

    prompt = ["<bos>Numbers 4 6 3 target 7\n"] * 3
    completions = ["Take 4 at 0 sum 4\nTake 6 at 1 sum 10\nSkip 6 at 1 sum 4\nTake 3 at 2 sum 7\nAnswer 4 3\n",
                   "Take 4 at 0 sum 4\nSkip 6 at 1 sum 4\nTake 3 at 2 sum 8\nAnswer 4 6\n",
                   "Take 4 at 0 sum 4\n"]
    problem = [json.dumps({"numbers": [4, 6, 3], "target": 7})] * 3

    solved = make_reward("sumtask.rewards:Solved", TASK, {"count": 3}, text_format=None)  # a class: built, settings
    assert isinstance(solved, rewards.Solved) and solved.__name__ == "solved"            # it does not take dropped
    assert solved(prompt, completions, problem=problem) == [1.0, 0.0, 0.0]
    assert pickle.loads(pickle.dumps(solved))(prompt, completions, problem=problem) == [1.0, 0.0, 0.0]

    answered = make_reward("sumtask.rewards:answered", TASK)  # a function: the reward as it is
    assert answered is rewards.answered and answered.__name__ == "answered"
    assert answered(prompt, completions) == [0.1, 0.1, 0.0]

    # a built-in reward on the plug-in task: step_score checks each step with the task's own verifier
    step = make_reward("step_score", TASK)
    assert isinstance(step, StepScore)
    assert step(prompt, completions, problem=problem) == [1.0, pytest.approx(3 / 5), 1.0]


def test_the_grpo_config_takes_the_plugin_task_and_reward(plugins):
    from reasonpipe.rl import RLConfig

    cfg = load_config(RLConfig, str(EXAMPLE / "grpo.yaml"))  # its task options checked against SumConfig at load
    assert (cfg.task, cfg.reward) == (TASK, "sumtask.rewards:Solved")
    with pytest.raises(InputError, match=r"field 'task_options.count': must be 1..12, got 0"):
        load_config(RLConfig, str(EXAMPLE / "grpo.yaml"), {"task_options.count": 0})


# -- the plug-in task itself --------------------------------------------------------------------------------

def test_the_plugin_task_follows_the_contract(plugins):
    import random

    from reasonpipe.searchers import get_searcher
    from reasonpipe.tasks import check_options, get_task_class, make_task
    from reasonpipe.tokenizer import TaskTokenizer
    from reasonpipe.traces import Trace
    from reasonpipe.verifiers import get_verifier
    from sumtask import search, task as sum_task, verifier

    assert get_task_class(TASK) is sum_task.SumTask
    task = make_task(TASK, count=4, max_number=5)
    assert task.config == sum_task.SumConfig(count=4, max_number=5)
    assert get_searcher(TASK, "sumtask.search:dfs") is search.dfs
    assert isinstance(get_verifier(TASK), verifier.SumVerifier)  # the task's default: SumTask.verifier
    problem = task.generate(random.Random(0))
    trace = search.dfs(task, problem, None, random.Random(0))
    text = trace.to_text()
    parsed = Trace.from_text(TASK, text)
    assert parsed.problem == problem and [s.to_json() for s in parsed.steps] == [s.to_json() for s in trace.steps]
    assert task.score(problem, text) == 1.0 and TaskTokenizer.for_task(TASK).unknown(text) == set()

    with pytest.raises(InputError, match=r"field 'task_options.size': unknown option\(s\) size for task "):
        check_options(TASK, {"size": 3})
    with pytest.raises(InputError, match="field 'size': unknown option"):
        make_task(TASK, size=3)


# -- errors name the field ------------------------------------------------------------------------------------

def test_no_such_module_names_the_field_and_the_import_error(plugins):
    from reasonpipe.rewards import make_reward
    from reasonpipe.searchers import get_searcher
    from reasonpipe.tasks import check_options, get_task_class
    from reasonpipe.verifiers import get_verifier

    missing = r"cannot import module 'no_such_pkg.tasks' of the plug-in .*No module named 'no_such_pkg'"
    with pytest.raises(InputError, match=f"field 'task': {missing}"):
        get_task_class("no_such_pkg.tasks:MyTask", field="task")
    with pytest.raises(InputError, match=f"field 'task': {missing}"):
        check_options("no_such_pkg.tasks:MyTask", {})  # what a config's __post_init__ runs at load
    with pytest.raises(InputError, match=f"field 'searcher': {missing.replace('tasks', 'search')}"):
        get_searcher("countdown", "no_such_pkg.search:dfs")
    with pytest.raises(InputError, match="field 'verifier': cannot import module 'no_such_pkg'"):
        get_verifier(TASK, "no_such_pkg:V")
    with pytest.raises(InputError, match="field 'reward': cannot import module 'no_such_pkg'"):
        make_reward("no_such_pkg:reward", TASK)


def test_no_such_attribute_and_not_callable_name_the_field(plugins, tmp_path):
    from reasonpipe.jobs.tracegen import main, TracegenConfig
    from reasonpipe.searchers import get_searcher

    with pytest.raises(InputError, match=r"field 'searcher': sumtask.search has no attribute 'bfs' "
                                         r"\(the plug-in searcher 'sumtask.search:bfs'\)"):
        get_searcher(TASK, "sumtask.search:bfs")
    cfg = load_config(TracegenConfig, str(EXAMPLE / "tracegen.yaml"),
                      {"out": str(tmp_path / "x.jsonl"), "task": "sumtask.task:NoTask"})
    with pytest.raises(InputError, match="field 'task': sumtask.task has no attribute 'NoTask'"):
        main(cfg)  # through the tracegen job, before anything is written
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(InputError, match="field 'searcher': sumtask.grammar:SAMPLE is a str, not a searcher"):
        get_searcher(TASK, "sumtask.grammar:SAMPLE")
    with pytest.raises(InputError, match="field 'searcher': 'dfs' is a built-in searcher; the plug-in task"):
        get_searcher(TASK, "dfs")
    with pytest.raises(InputError, match="field 'task': expected module:attr for a plug-in task class"):
        from reasonpipe.tasks import get_task_class

        get_task_class("sumtask.task:", field="task")


def test_a_task_missing_a_contract_method_is_named(user_module):
    from reasonpipe.tasks import get_task_class, make_task

    user_module("half_task", """
        from dataclasses import dataclass

        class Grammar:
            @staticmethod
            def parse(text):
                return []

        class HalfTask:
            grammar = Grammar
            def generate(self, rng): return 1
            def prompt(self, problem): return ""
            def parse_answer(self, text): return None
            def vocabulary(self): return ()
            @staticmethod
            def problem_to_json(problem): return {}

        class NotAGrammar(HalfTask):
            grammar = None
            def score(self, problem, text): return 0.0
            @staticmethod
            def problem_from_json(obj, field="problem"): return obj

        class BadOptions(NotAGrammar):
            grammar = Grammar
            config_class = dict

        NOT_A_CLASS = 3
        """)
    with pytest.raises(InputError, match=r"field 'task': the plug-in task half_task:HalfTask lacks score, "
                                         r"problem_from_json of the task contract"):
        get_task_class("half_task:HalfTask", field="task")
    with pytest.raises(InputError, match="field 'task': .*its grammar has no parse"):
        make_task("half_task:NotAGrammar")
    with pytest.raises(InputError, match="field 'task': .*config_class must be a dataclass"):
        make_task("half_task:BadOptions")
    with pytest.raises(InputError, match="field 'task': half_task:NOT_A_CLASS is a int, not a task class"):
        make_task("half_task:NOT_A_CLASS")


def test_a_verifier_and_a_reward_of_the_users_own(plugins, user_module):
    """A verifier factory that takes nothing, one that makes no verifier, and a reward class without a name."""
    from reasonpipe.rewards import make_reward
    from reasonpipe.traces import Trace
    from reasonpipe.verifiers import get_verifier

    user_module("my_checks", """
        from reasonpipe.verifiers.verdicts import ExactVerifier, StepVerdict, Verdict

        class Lenient(ExactVerifier):
            task = "lenient"
            def _check(self, trace):
                return [StepVerdict(Verdict.NO_CHECK, "trusted")] * len(trace.steps), True

        def no_verifier():
            return object()

        class Constant:
            def __init__(self, task, task_options):
                self.task = task
            def __call__(self, prompts, completions, **kwargs):
                return [0.5] * len(completions)
        """)
    trace = Trace.from_text(TASK, "Numbers 4 3 target 7\nTake 4 at 0 sum 9\nAnswer 4\n")
    assert get_verifier(TASK).report(trace).valid is False
    report = get_verifier(TASK, "my_checks:Lenient").report(trace)
    assert report.valid and report.solved and report.task == "lenient"
    with pytest.raises(InputError, match=r"field 'verifier': the plug-in verifier my_checks:no_verifier returned a "
                                         r"'object', which has no verify\(trace\) and no report\(trace\)"):
        get_verifier(TASK, "my_checks:no_verifier")
    reward = make_reward("my_checks:Constant", TASK, text_format="ignored")
    assert reward.__name__ == "Constant" and reward.task == TASK and reward([""], ["x"]) == [0.5]


# -- built-in names unchanged ---------------------------------------------------------------------------------

def test_built_in_names_resolve_as_before():
    from reasonpipe.rewards import Correctness, make_reward
    from reasonpipe.searchers import countdown, get_searcher
    from reasonpipe.tasks import check_options, get_task_class, make_task, task_names
    from reasonpipe.tasks.countdown import CountdownConfig, CountdownTask
    from reasonpipe.verifiers import CountdownVerifier, get_verifier

    assert task_names() == ["countdown", "sudoku", "reachability", "arc_1d", "list_functions",
                            "color_cube_rotation", "zebra_puzzles", "self_reference", "advanced_geometry"]
    assert get_task_class("countdown") is CountdownTask
    assert make_task("countdown", numbers=3).config == CountdownConfig(numbers=3)
    check_options("countdown", {"numbers": 3})
    assert get_searcher("countdown", "dfs") is countdown.dfs
    assert type(get_verifier("countdown")) is CountdownVerifier
    assert type(make_reward("correctness", "countdown")) is Correctness
    with pytest.raises(InputError, match=r"^<input>: field 'task': unknown task 'chess' \(known: countdown, sudoku, "
                                         r"reachability, arc_1d, .*advanced_geometry\) or a plug-in"):
        get_task_class("chess", field="task")
    with pytest.raises(InputError, match=r"field 'searcher': unknown searcher 'beem' for countdown \(known: dfs"):
        get_searcher("countdown", "beem")
    with pytest.raises(InputError, match=r"field 'task': no verifier for task 'chess'"):
        get_verifier("chess")
    with pytest.raises(InputError, match=r"field 'reward': unknown reward 'corect' \(known: correctness, shaped, "
                                         r"step_score, or a plug-in module:attr\)"):
        make_reward("corect", "countdown")
