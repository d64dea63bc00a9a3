"""Pretrained models end to end: a "downloaded" model (tests/pretrained.py: its own BPE tokenizer and chat template)
through SFT (full and LoRA, plain and chat), evaluation with the hf and vllm samplers, GRPO in the answer layout;
the text formats' encodings; the mismatch errors; the trl: pass-through; TensorBoard; hub ids."""

from __future__ import annotations

import json
import os
import random
import re
import shutil

import pytest

from reasonpipe.errors import InputError
from reasonpipe.models import check_model, resolve_model
from reasonpipe.tasks import make_task
from reasonpipe.textformat import TextFormat

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning")

TASK = {"numbers": 3}


@pytest.fixture(scope="module")
def data(tmp_path_factory, pretrained_model):
    """DFS traces (to train on) and, for the evaluation, the direct traces of the grid's own problems."""
    from reasonpipe.evaluation import EvalConfig, eval_problems
    from reasonpipe.searchers import SearchOptions
    from reasonpipe.tracegen import GenRequest, generate

    folder = tmp_path_factory.mktemp("pretrained-data")
    dfs = str(folder / "dfs.jsonl")
    generate(GenRequest(task="countdown", searcher="dfs", out=dfs, n=120, seed=3, task_options=TASK,
                        search=SearchOptions()))
    grid = EvalConfig(task_options={**TASK, "split": "train"}, problems=6, problem_seed=7)
    problems = folder / "problems.jsonl"
    task = make_task("countdown", **TASK)
    problems.write_text("".join(json.dumps(type(task).problem_to_json(p)) + "\n" for p in eval_problems(grid)))
    direct = str(folder / "direct.jsonl")
    generate(GenRequest(task="countdown", searcher="direct", out=direct, n=None, seed=0, task_options=TASK,
                        search=SearchOptions(), problems=str(problems)))
    return {"dfs": dfs, "direct": direct, "folder": folder}


def sft(out, data_file, model, **overrides):
    from reasonpipe.sft import SFTConfig, train

    settings = dict(data=[data_file], out=str(out), task="countdown", model=model, tokenizer="model", max_steps=20,
                    batch_size=8, lr=3e-3, warmup_steps=2, log_every=2, save_every=1000, heldout=8, quiet=True,
                    device="cpu", max_len=1024)
    settings.update(overrides)
    return train(SFTConfig(**settings))


def losses(run) -> list[float]:
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [r["loss"] for r in map(json.loads, f) if "loss" in r]


# -- the text formats ------------------------------------------------------------------------------------------

def test_formats_encode_prompts_as_the_model_sees_them(pretrained_model):
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast.from_pretrained(pretrained_model)
    task = make_task("countdown", **TASK)
    problem = task.generate(random.Random(1))
    plain = TextFormat("model", "plain", "trace")
    assert plain.prompt_ids(hf, task.prompt(problem)) == hf(task.prompt(problem))["input_ids"]
    assert hf.decode(plain.prompt_ids(hf, task.prompt(problem))) == task.prompt(problem)
    chat = TextFormat("model", "chat", "answer", system="Be brief.")
    text = chat.prompt_text(hf, chat.user_text(task, problem))
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCurrent State:")
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n") and "<answer>" in text
    assert hf.decode(chat.prompt_ids(hf, chat.user_text(task, problem))) == text
    assert chat.trainer_prompt(hf, "x") == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}]
    assert chat.completion_ids(hf, "ab")[-1] == hf.convert_tokens_to_ids("<|im_end|>")
    # AutoTokenizer would swap in a Qwen2 tokenizer class for this folder and encode differently: never used
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(pretrained_model)
    assert auto("Current State: 24")["input_ids"] != hf("Current State: 24")["input_ids"]


def test_answer_layout_round_trip_and_scores():
    task = make_task("countdown", **TASK)
    from reasonpipe.searchers import SearchOptions, get_searcher

    fmt = TextFormat("model", "plain", "answer")
    for seed in range(30):
        problem = task.generate(random.Random(seed))
        trace = get_searcher("countdown", "dfs")(task, problem, SearchOptions(), random.Random(seed)).to_text()
        completion = fmt.completion(task, problem, trace)
        if task.score(problem, trace) < 1:
            assert completion is None or fmt.score(task, problem, completion) == 0.0
            continue
        assert completion.startswith("<think>\n") and completion.endswith(" </answer>")
        assert fmt.score(task, problem, completion) == 1.0
        assert fmt.trace_text(task, problem, completion) == trace.rstrip("\n") + "\n"
    problem = task.generate(random.Random(0))
    assert fmt.score(task, problem, "<think>x</think>") == 0.0  # no answer tag
    assert fmt.score(task, problem, "<answer> 1 + 1 </answer>") == 0.0
    with pytest.raises(InputError, match="need a model's tokenizer"):
        TextFormat("task", "chat")
    with pytest.raises(InputError, match="no answer form"):
        fmt.check_task(make_task("sudoku"))


def test_rewards_in_the_answer_layout_score_the_answer_tag():
    from reasonpipe.rewards import Correctness, Shaped

    task = make_task("countdown", **TASK)
    problem = task.generate(random.Random(4))
    ops = task.answer_text(task.prompt(problem) + _solution_lines(task, problem))
    fmt = TextFormat("model", "chat", "answer")
    column = [json.dumps(type(task).problem_to_json(problem))] * 4
    completions = [[{"role": "assistant", "content": c}] for c in (
        f"<think>\nsearching\n</think>\n<answer> {ops} </answer>", "<think>\n</think>\n<answer> 1 + 2 </answer>",
        "no tags at all", f"<answer> {ops} = {problem.target} </answer>")]
    assert Correctness("countdown", TASK, text_format=fmt)([None] * 4, completions, problem=column) == [1.0, 0.0, 0.0, 1.0]
    assert Shaped("countdown", TASK, text_format=fmt)([None] * 4, completions, problem=column)[:3] == [1.0, 0.0, 0.0]


def _solution_lines(task, problem) -> str:
    from reasonpipe.searchers import SearchOptions, get_searcher

    trace = get_searcher("countdown", "direct")(task, problem, SearchOptions(), random.Random(0)).to_text()
    return trace[len(task.prompt(problem)):]


# -- SFT ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,lora", [("plain", False), ("chat", False), ("plain", True), ("chat", True)])
def test_sft_of_a_pretrained_model_full_and_lora(tmp_path, data, pretrained_model, fmt, lora):
    extra = {"lora": {"rank": 16, "alpha": 32.0, "merge": True, "target_modules": [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}, "lr": 1e-2, "max_steps": 30} if lora else {}
    from reasonpipe.config import build
    from reasonpipe.sft import SFTConfig

    extra = {k: (build(type(SFTConfig().lora), v) if k == "lora" else v) for k, v in extra.items()}
    summary = sft(tmp_path / "run", data["dfs"], pretrained_model, format=fmt, **extra)
    curve = losses(tmp_path / "run")
    # the loss falls, from the "pretrained" model's ~1.95 (it has seen such traces): full fine-tuning to ~1.65 in 20
    # steps, the adapter to ~1.77 in 30
    assert sum(curve[-3:]) < 0.95 * sum(curve[:3]), curve
    final = tmp_path / "run" / "final"
    assert TextFormat.load(str(final)) == TextFormat("model", fmt, "trace")
    assert summary["diagnostics"]["traces"] == 8 and 0 < summary["diagnostics"]["token_accuracy"] <= 1
    if lora:
        assert (final / "adapter_config.json").is_file() and not (final / "model.safetensors").exists()
        assert summary["trainable_parameters"] < summary["parameters"] / 4  # rank 16 on a 64-wide model
        from reasonpipe.models import load_causal_lm

        merged = load_causal_lm(str(tmp_path / "run" / "merged"))
        adapted = load_causal_lm(str(final))
        import torch

        ids = torch.tensor([[5, 6, 7, 8]])
        with torch.no_grad():
            assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)
    else:
        assert summary["trainable_parameters"] == summary["parameters"]


@pytest.fixture(scope="module")
def memorized(tmp_path_factory, data, pretrained_model):
    """The pretrained model fine-tuned (plain format) until it writes the direct traces of the grid's 6 problems."""
    out = tmp_path_factory.mktemp("memorized") / "run"
    sft(out, data["direct"], pretrained_model, format="plain", max_steps=120, lr=1e-2, warmup_steps=10,
        batch_size=6, heldout=0)
    return str(out / "final")


def _grid(tmp_path, model, sampler):
    from reasonpipe.evaluation import EvalConfig, run_eval

    cfg = EvalConfig(out=str(tmp_path / sampler), task_options={**TASK, "split": "train"}, problems=6, problem_seed=7,
                     backtrack_model=model, direct_model=model, lengths=[160], ns=[1, 2], direct_max_new_tokens=160,
                     data_searcher="direct", sampler=sampler, device="cpu")
    return {(p.strategy, p.budget): p.accuracy for p in run_eval(cfg, log=lambda *a: None)}


def test_evaluation_of_a_pretrained_checkpoint_with_hf(tmp_path, memorized):
    points = _grid(tmp_path, memorized, "hf")
    assert points[("sequential", 160)] == 1.0 and points[("parallel", 1)] >= 0.5


@pytest.mark.vllm
def test_evaluation_of_a_pretrained_checkpoint_with_vllm_matches_hf(memorized):
    from reasonpipe.sampling import make_sampler

    task = make_task("countdown", **TASK)
    prompts = [task.prompt(task.generate(random.Random(i))) for i in range(3)]
    hf = make_sampler("hf", memorized, device="cpu").sample(prompts, 1, 48, 0.0, 0)
    vllm = make_sampler("vllm", memorized, max_model_len=512).sample(prompts, 1, 48, 0.0, 0)
    assert [r[0].ids for r in vllm] == [r[0].ids for r in hf]
    assert [r[0].text for r in vllm] == [r[0].text for r in hf]


# -- GRPO ----------------------------------------------------------------------------------------------------------

def test_grpo_of_a_pretrained_model_in_the_answer_layout(tmp_path, pretrained_model, monkeypatch):
    import reasonpipe.rl as rl

    seen: list[tuple[str, str, float]] = []

    def recording(name, task, options, **kwargs):
        inner = rl_make_reward(name, task, options, **kwargs)

        def reward(prompts, completions, problem=None, **kw):
            out = inner(prompts, completions, problem=problem, **kw)
            seen.extend((p, inner.content(c), r) for p, c, r in zip(problem, completions, out))
            return out

        reward.__name__ = inner.__name__
        return reward

    rl_make_reward = rl.make_reward
    monkeypatch.setattr(rl, "make_reward", recording)
    cfg = rl.RLConfig(model=pretrained_model, tokenizer="model", format="chat", layout="answer", out=str(tmp_path / "g"),
                      task_options=TASK, reward="correctness", problems=8, probe_problems=2, probe_ks=[1, 2],
                      probe_every=0, num_generations=4, prompts_per_step=2, max_steps=2, max_completion_length=24,
                      lr=1e-3, quiet=True, device="cpu", report_to="tensorboard")
    summary = rl.train(cfg)
    assert summary["steps"] == 2 and len(seen) == 16
    task = make_task("countdown", **TASK)
    for problem, completion, reward in seen:  # every reward is the task's exact scorer on the <answer> tag
        p = type(task).problem_from_json(json.loads(problem))
        tags = re.findall(r"<answer>(.*?)</answer>", completion, re.S)
        assert reward == (task.score_answer(p, tags[-1]) if tags else 0.0)
    with open(tmp_path / "g" / "metrics.jsonl") as f:
        rows = [r for r in map(json.loads, f) if "reward" in r]
    assert [r["reward"] for r in rows] == pytest.approx([sum(r for *_, r in seen[:8]) / 8, sum(r for *_, r in seen[8:]) / 8])
    assert TextFormat.load(str(tmp_path / "g" / "final")) == cfg.text_format()
    assert (tmp_path / "g" / "tensorboard").is_dir()


# -- errors, pass-through, trackers, hub ids -----------------------------------------------------------------------

def _no_tokenizer(folder, pretrained_model):
    shutil.copytree(pretrained_model, folder)
    for name in os.listdir(folder):
        if name.startswith(("tokenizer", "chat_template")):
            os.unlink(os.path.join(folder, name))
    return str(folder)


def _small_embedding(folder, pretrained_model):
    shutil.copytree(pretrained_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["vocab_size"] = 100
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


@pytest.mark.parametrize("stage", ["sft", "rl"])
@pytest.mark.parametrize("case,expect", [
    ("task-tokenizer", "set tokenizer: model"),
    ("no-tokenizer", "has no tokenizer.json"),
    ("small-embedding", "has 100 rows"),
    ("size-with-model-tokenizer", "set tokenizer: task"),
    ("no-chat-template", "set format: plain"),
    ("offline-hub-id", "'nobody/no-such-model'"),
    ("trl-unknown", "valid:"),
    ("trl-owned", "set lr instead"),
])
def test_mismatches_stop_before_anything_is_written(tmp_path, cli, data, pretrained_model, monkeypatch, stage, case,
                                                   expect):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    out = tmp_path / "out"
    model, extra = pretrained_model, ["--tokenizer", "model"]
    if case == "task-tokenizer":
        extra = []
    elif case == "no-tokenizer":
        model = _no_tokenizer(tmp_path / "bare", pretrained_model)
    elif case == "small-embedding":
        model = _small_embedding(tmp_path / "small", pretrained_model)
    elif case == "size-with-model-tokenizer":
        model = "tiny"
    elif case == "no-chat-template":
        model = str(tmp_path / "plain-only")
        shutil.copytree(pretrained_model, model)
        os.unlink(os.path.join(model, "chat_template.jinja"))
        extra += ["--format", "chat"]
    elif case == "offline-hub-id":
        model = "nobody/no-such-model"
    elif case == "trl-unknown":
        extra += ["--trl.no_such_field", "1"]
    elif case == "trl-owned":
        extra += ["--trl.learning_rate", "0.1"]
    args = ["--model", model, "--out", str(out), "--max_steps", "1", "--quiet", "true", *extra]
    if stage == "sft":
        args += ["--data", f"[{data['dfs']}]"]
    result = cli(stage, *args)
    assert result.code == 2, result
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and expect in lines[0], result.err
    assert not out.exists()


def test_report_to_tensorboard_writes_readable_scalars(tmp_path, data, pretrained_model):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sft(tmp_path / "run", data["dfs"], pretrained_model, max_steps=6, report_to="tensorboard",
        trl={"logging_first_step": True})
    board = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    board.Reload()
    loss = [e.value for e in board.Scalars("train/loss")]
    assert loss == pytest.approx(losses(tmp_path / "run"), rel=1e-5) and len(loss) == 4  # steps 1, 2, 4, 6
    assert "train/learning_rate" in board.Tags()["scalars"]


def test_hub_ids_resolve_from_the_cache_offline_and_fail_in_one_line(tmp_path, pretrained_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = tmp_path / "hub" / "models--org--tiny-chat" / "snapshots" / ("a" * 40)
    shutil.copytree(pretrained_model, snapshot)
    (tmp_path / "hub" / "models--org--tiny-chat" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny-chat" / "refs" / "main").write_text("a" * 40)
    source = resolve_model("org/tiny-chat")
    assert source.kind == "hub" and os.path.samefile(source.path, snapshot)
    assert check_model("org/tiny-chat", TextFormat("model", "chat"), "countdown").tokenizer_size == 512
    with pytest.raises(InputError, match="HF_HUB_OFFLINE is set") as e:
        resolve_model("org/not-cached")
    assert "\n" not in str(e.value)
    assert resolve_model("tiny").kind == "size"
    with pytest.raises(InputError, match="no such model folder"):
        resolve_model("./runs/nowhere")


def test_grpo_and_the_samplers_load_a_lora_adapter(tmp_path, data, pretrained_model):
    import reasonpipe.rl as rl
    from reasonpipe.config import build
    from reasonpipe.sampling import make_sampler
    from reasonpipe.trainer_args import LoraBlock

    sft(tmp_path / "sft", data["dfs"], pretrained_model, format="chat", max_steps=4, lora=build(LoraBlock, {"rank": 4}))
    adapter = str(tmp_path / "sft" / "final")
    task = make_task("countdown", **TASK)
    prompts = [task.prompt(task.generate(random.Random(i))) for i in range(2)]
    samples = make_sampler("hf", adapter, device="cpu").sample(prompts, 2, 16, 1.0, 0)
    assert [len(r) for r in samples] == [2, 2] and all(c.tokens > 0 for r in samples for c in r)
    base = dict(model=adapter, tokenizer="model", task_options=TASK, problems=4, probe_problems=2, probe_ks=[1],
                probe_every=0, num_generations=2, prompts_per_step=2, max_steps=1, max_completion_length=16,
                quiet=True, device="cpu")
    with pytest.raises(InputError, match="was trained in"):  # the adapter was trained in the chat format
        rl.check(rl.RLConfig(out=str(tmp_path / "x"), **base))
    summary = rl.train(rl.RLConfig(out=str(tmp_path / "rl"), format="chat", **base))
    assert summary["steps"] == 1 and (tmp_path / "rl" / "final" / "adapter_config.json").is_file()
    assert not (tmp_path / "x").exists()


def test_the_answer_layout_needs_a_task_with_an_answer_form(tmp_path, pretrained_model):
    from reasonpipe.sft import SFTConfig, check

    traces = tmp_path / "s.jsonl"
    traces.write_text("")
    cfg = SFTConfig(data=[str(traces)], out=str(tmp_path / "out"), task="sudoku", model=pretrained_model,
                    tokenizer="model", layout="answer")
    with pytest.raises(InputError, match="no answer form"):
        check(cfg)
    assert not (tmp_path / "out").exists()
