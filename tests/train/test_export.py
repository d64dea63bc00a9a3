"""`reasonpipe export` and `reasonpipe.rewards.compute_score`: traces as TRL's and verl's datasets, read back by
their own readers, scored as `reasonpipe verify` scores them, and trained by TRL with no reasonpipe code."""

from __future__ import annotations

import doctest
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reasonpipe.cli import main
from reasonpipe.rewards import compute_score
from reasonpipe.tasks import make_task
from reasonpipe.tasks.countdown import CountdownTask
from reasonpipe.textformat import TextFormat

VERL_COLUMNS = ["data_source", "prompt", "ability", "reward_model", "extra_info"]
ANSWER_END = re.compile(r"<answer> (.+) </answer>\Z")


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("export") / "cd3.jsonl")
    assert main(["gen", "countdown", "--n", "20", "--searcher", "dfs", "--numbers", "3", "--seed", "1",
                 "--out", out, "--quiet"]) == 0
    return out


def records(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def body(record: dict) -> str:
    """The completion of a trace: its text after the prompt line."""
    prompt = make_task("countdown").prompt(CountdownTask.problem_from_json(record["problem"]))
    assert record["text"].startswith(prompt)
    return record["text"][len(prompt):]


# -- verl --------------------------------------------------------------------------------------------------------

def test_verl_parquet_has_verls_layout_in_pyarrow_and_datasets(cli, traces, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import load_dataset

    out = tmp_path / "cd.parquet"
    r = cli("export", traces, "--to", "verl", "--out", out, "--split", "test", "--score", "step",
            "--system", "You solve CountDown.", "--quiet")
    assert r.code == 0, r.err
    assert "rows written" in r.out
    recs = records(traces)
    assert len({json.dumps(x["problem"]) for x in recs}) == len(recs)  # distinct problems: one row each

    table = pq.read_table(out)
    assert table.column_names == VERL_COLUMNS and table.num_rows == len(recs)
    schema = table.schema
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    assert schema.field("data_source").type == pa.string() and schema.field("ability").type == pa.string()
    assert schema.field("prompt").type == pa.list_(message)
    assert schema.field("reward_model").type == pa.struct([("style", pa.string()), ("ground_truth", pa.string())])
    extra = schema.field("extra_info").type
    assert {extra.field(i).name: extra.field(i).type for i in range(extra.num_fields)} == {
        "split": pa.string(), "index": pa.int64(), "id": pa.string(), "task": pa.string(), "layout": pa.string(),
        "score": pa.string()}

    ds = load_dataset("parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.column_names == VERL_COLUMNS and len(ds) == len(recs)
    for i, (row, rec, arrow_row) in enumerate(zip(ds, recs, table.to_pylist())):
        assert row == arrow_row  # both readers see the same rows
        assert row["data_source"] == "reasonpipe/countdown" and row["ability"] == "math"
        assert row["prompt"] == [{"role": "system", "content": "You solve CountDown."},
                                 {"role": "user", "content": rec["text"].splitlines(keepends=True)[0]}]
        assert row["reward_model"]["style"] == "rule"
        assert json.loads(row["reward_model"]["ground_truth"]) == rec["problem"]
        assert row["extra_info"] == {"split": "test", "index": i, "id": rec["id"], "task": "countdown",
                                     "layout": "trace", "score": "step"}
        # verl hands these columns to the reward function: a searcher's trace is valid step by step
        args = (row["data_source"], body(rec), row["reward_model"]["ground_truth"])
        assert compute_score(*args, row["extra_info"]) == 1.0
        assert compute_score(*args, {**row["extra_info"], "score": "exact"}) == float(rec["meta"]["solved"])


def test_verl_keeps_one_row_per_problem_and_limit_counts_rows(cli, traces, tmp_path):
    twice = tmp_path / "twice.jsonl"
    twice.write_text(Path(traces).read_text() * 2)
    out = tmp_path / "v.jsonl"
    assert cli("export", twice, "--to", "verl", "--out", out, "--quiet").code == 0
    rows = records(str(out))
    assert len(rows) == 20 and [r["extra_info"]["index"] for r in rows] == list(range(20))
    assert cli("export", twice, "--to", "verl", "--out", out, "--limit", "5", "--quiet").code == 0
    assert len(records(str(out))) == 5


# -- TRL rows ------------------------------------------------------------------------------------------------------

def test_prompt_completion_and_messages_rows(cli, traces, tmp_path):
    recs = records(traces)
    pc, msg = tmp_path / "pc.jsonl", tmp_path / "msg.jsonl"
    assert cli("export", traces, "--to", "prompt-completion", "--out", pc, "--quiet").code == 0
    assert cli("export", traces, "--to", "messages", "--out", msg, "--system", "Think.", "--quiet").code == 0
    for row, m, rec in zip(records(str(pc)), records(str(msg)), recs, strict=True):
        assert set(row) == {"prompt", "completion"} and row["prompt"] + row["completion"] == rec["text"]
        assert row["completion"] == body(rec)
        assert m == {"messages": [{"role": "system", "content": "Think."},
                                  {"role": "user", "content": row["prompt"]},
                                  {"role": "assistant", "content": row["completion"]}]}


def test_answer_layout_rows_end_with_an_equation_the_task_scores_right(cli, traces, tmp_path):
    task = make_task("countdown")
    answered = [r for r in records(traces) if task.answer_text(r["text"]) is not None]
    unanswered = {"id": "none", "task": "countdown", "problem": {"nums": [2, 3, 4], "target": 99},
                  "text": "Current State: 99:[2, 3, 4], Operations: []\n"}
    data = tmp_path / "with-unanswered.jsonl"
    data.write_text(Path(traces).read_text() + json.dumps(unanswered) + "\n")
    all_records = records(str(data))
    first = next(i for i, r in enumerate(all_records, 1) if task.answer_text(r["text"]) is None)

    out = tmp_path / "answer.jsonl"
    r = cli("export", data, "--to", "prompt-completion", "--layout", "answer", "--out", out, "--quiet")
    assert r.code == 2 and f"{data}:{first}: field 'text'" in r.err and "--skip-unanswered" in r.err
    assert len(r.err.strip().splitlines()) == 1 and not out.exists()

    r = cli("export", data, "--to", "prompt-completion", "--layout", "answer", "--skip-unanswered", "--out", out,
            "--quiet")
    assert r.code == 0, r.err
    rows = records(str(out))
    assert len(rows) == len(answered) and len(answered) < len(all_records)
    fmt = TextFormat("model", "plain", "answer")
    for row, rec in zip(rows, answered, strict=True):
        problem = CountdownTask.problem_from_json(rec["problem"])
        assert row["prompt"] == fmt.user_text(task, problem) and "<answer>" in row["prompt"]
        assert row["completion"].startswith("<think>\n")
        equation = ANSWER_END.search(row["completion"]).group(1)
        assert task.score_answer(problem, equation) == 1.0
        info = {"layout": "answer"}
        assert compute_score("reasonpipe/countdown", row["completion"], rec["problem"], info) == 1.0
        step = {**info, "score": "step"}
        assert compute_score("reasonpipe/countdown", row["completion"], rec["problem"], step) == 1.0


# -- compute_score against `reasonpipe verify` -------------------------------------------------------------------

def _solved_record(traces: str) -> dict:
    """A solved trace that also meets a dead end (it has a line to turn into a false goal)."""
    return next(r for r in records(traces) if r["meta"]["solved"] and "unequal: No Solution" in r["text"])


def _wrong_traces(right: str) -> dict[str, str]:
    lines = right.splitlines(keepends=True)
    explore = max(i for i, line in enumerate(lines) if line.startswith("Exploring Operation:"))
    m = re.match(r"Exploring Operation: (\d+)([-+*/])(\d+)=(\d+), Resulting Numbers: \[(.*)\]\n", lines[explore])
    a, sym, b, result, rest = m.groups()
    false_step = lines[explore].replace(f"={result},", f"={int(result) + 1},")  # a false equation, same goal line
    unequal = next(i for i, line in enumerate(lines) if "unequal: No Solution" in line)
    reached, target = lines[unequal].split(" ")[0].split(",")
    return {
        "false_arithmetic": "".join(lines[:explore] + [false_step] + lines[explore + 1:]),
        "wrong_goal": "".join(lines[:unequal] + [f"{reached},{target} equal: Goal Reached\n"]),
        "malformed": lines[0] + "I think the answer is probably\n42!!\n<answer>?</answer>\n",
    }


def test_compute_score_agrees_with_reasonpipe_verify(cli, traces, tmp_path):
    rec = _solved_record(traces)
    texts = {"right": rec["text"], **_wrong_traces(rec["text"])}
    data = tmp_path / "judged.jsonl"
    data.write_text("".join(json.dumps({"id": name, "task": "countdown", "problem": rec["problem"], "text": text})
                            + "\n" for name, text in texts.items()))
    verdicts = tmp_path / "verdicts.jsonl"
    r = cli("verify", data, "--out", verdicts, "--quiet")
    assert r.code == 1  # some traces have steps that do not hold
    judged = {v["id"]: v for v in records(str(verdicts))}
    assert set(judged) == set(texts)
    assert judged["right"]["valid"] and judged["right"]["solved"]
    assert not any(judged[k]["valid"] or judged[k]["solved"] for k in texts if k != "right")

    gt = json.dumps(rec["problem"])
    answer = TextFormat("model", "plain", "answer")
    problem = CountdownTask.problem_from_json(rec["problem"])
    for name, text in texts.items():
        v = judged[name]
        completion = body({**rec, "text": text})  # what a model writes after the prompt
        step = (v["counts"]["proved"] + v["counts"]["no_check"]) / v["steps"]
        assert compute_score("reasonpipe/countdown", completion, gt) == float(v["solved"]), name
        assert compute_score("reasonpipe/countdown", completion, gt, {"score": "step"}) == step, name
        # the same trace inside <think>, in the answer layout: the step score reads the think content
        think = f"<think>\n{completion.rstrip()}\n</think>\n<answer> 1 + 1 </answer>"
        info = {"layout": "answer", "score": "step"}
        assert compute_score("reasonpipe/countdown", think, gt, info) == step, name
    assert 0 < judged["false_arithmetic"]["counts"]["refuted"] and 0 < judged["wrong_goal"]["counts"]["refuted"]

    # the answer layout's exact score: the <answer> equation alone
    right = answer.completion(make_task("countdown"), problem, rec["text"])
    equation = ANSWER_END.search(right).group(1)
    sym = "+" if sum(problem.nums) != problem.target else "*"
    assert sym == "+" or problem.nums[0] * problem.nums[1] * problem.nums[2] != problem.target
    wrong = f" {sym} ".join(map(str, problem.nums))  # every number once, not equal to the target
    too_many = f"{equation} + 1"  # equal to target + 1, and a number the problem does not have
    cases = {right: 1.0, right.replace(f"<answer> {equation} </answer>", f"<answer> {wrong} </answer>"): 0.0,
             right.replace(f"<answer> {equation} </answer>", f"<answer> {too_many} </answer>"): 0.0,
             right.replace("<answer>", "").replace("</answer>", ""): 0.0, "garbage": 0.0, "": 0.0}
    for completion, expected in cases.items():
        assert compute_score("reasonpipe/countdown", completion, gt, {"layout": "answer"}) == expected, completion


def test_compute_score_inputs_and_docstring():
    gt = '{"nums": [2, 3], "target": 5}'
    assert compute_score("other", "x", gt, {"task": "countdown"}) == 0.0  # the task from extra_info
    assert compute_score("reasonpipe/countdown", None, gt) == 0.0  # not text: no score, no error
    np = pytest.importorskip("numpy")
    assert compute_score("reasonpipe/countdown", "<answer> 2 + 3 </answer>",
                         {"nums": np.array([2, 3]), "target": np.int64(5)}, {"layout": "answer"}) == 1.0
    for args, words in [(("openai/gsm8k", "x", gt), "data_source"),
                        (("reasonpipe/chess", "x", gt), "unknown task 'chess'"),
                        (("reasonpipe/countdown", "x", "{not json"), "compute_score"),
                        (("reasonpipe/countdown", "x", '{"nums": [2, 3]}'), "ground_truth.target"),
                        (("reasonpipe/countdown", "x", gt, {"layout": "essay"}), "layout"),
                        (("reasonpipe/countdown", "x", gt, {"score": "vibes"}), "score")]:
        with pytest.raises(ValueError, match=re.escape(words)):
            compute_score(*args)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(compute_score, "compute_score", globs={}):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 3 and result.failed == 0


# -- errors ----------------------------------------------------------------------------------------------------------

def test_bad_input_exits_2_with_one_line_and_writes_nothing(cli, traces, tmp_path):
    out = tmp_path / "x.parquet"
    bad_record = tmp_path / "bad.jsonl"
    no_target = {"id": "b", "task": "countdown", "problem": {"nums": [1, 2]}, "text": "x"}
    bad_record.write_text(Path(traces).read_text().splitlines(keepends=True)[0] + json.dumps(no_target) + "\n")
    for argv, words in [(("--to", "bogus"), "unknown to 'bogus'"),
                        ((), "no-such.jsonl: cannot read"),
                        (("--to", "prompt-completion", "--system", "hi"), "field 'system'"),
                        (("--to", "verl", "--layout", "essay"), "unknown layout 'essay'"),
                        ((), "bad.jsonl:2: field 'problem.target': missing")]:
        path = tmp_path / "no-such.jsonl" if "no-such" in words else bad_record if "bad.jsonl" in words else traces
        argv = argv if "--to" in argv else ("--to", "verl", *argv)
        r = cli("export", path, *argv, "--out", out, "--quiet")
        assert r.code == 2 and words in r.err, (argv, r.err)
        assert len(r.err.strip().splitlines()) == 1 and r.out == ""
        assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".x.parquet")]


# -- TRL trains on the export by itself ------------------------------------------------------------------------------

TRAIN = """
import json, sys
from datasets import load_dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
from trl import SFTConfig, SFTTrainer

data, model_dir, out = sys.argv[1:4]
tok = PreTrainedTokenizerFast.from_pretrained(model_dir)
ds = load_dataset("json", data_files=data, split="train", cache_dir=out + "/hf-cache")
assert ds.column_names == ["prompt", "completion"], ds.column_names
args = SFTConfig(output_dir=out, max_steps=20, per_device_train_batch_size=4, learning_rate=3e-3, logging_steps=1,
                 lr_scheduler_type="constant", report_to="none", use_cpu=True, save_strategy="no", seed=0,
                 max_length=1024)
trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=args, train_dataset=ds,
                     processing_class=tok)
trainer.train()
assert "reasonpipe" not in sys.modules and not [m for m in sys.modules if m.startswith("reasonpipe.")]
print("LOSSES " + json.dumps([r["loss"] for r in trainer.state.log_history if "loss" in r]))
"""


def test_trl_sft_trains_on_the_exported_file_without_reasonpipe(cli, traces, tmp_path, pretrained_model):
    model_dir = pretrained_model
    data = tmp_path / "pc.jsonl"
    assert cli("export", traces, "--to", "prompt-completion", "--out", data, "--quiet").code == 0
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    proc = subprocess.run([sys.executable, str(script), str(data), model_dir, str(tmp_path / "run")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    losses = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("LOSSES "))[7:])
    assert len(losses) == 20
    # the loss falls from the stand-in's ~1.9 (it was pretrained on such traces; tests/pretrained.py)
    assert sum(losses[-3:]) < 0.93 * sum(losses[:3]), losses
