"""Data-parallel SFT (reasonpipe.sft's loop on Ray Train workers via reasonpipe.distributed), on CPU with gloo:
replicas stay identical, 2 workers with batch B train the same model as 1 process with batch 2B, and a SIGKILLed
worker resumes from its checkpoint to the model an uninterrupted run reaches.

Tolerances (measured on this tiny model, 8 steps, float32): the 2-worker and the 1-process runs log the same
loss, grad norm and token accuracy to the last bit for steps 1-3, then drift by summation order only (each
rank sums its half of the batch, padded to its own length, and DDP averages the two gradients, where one
process sums all examples at once): at most 1.4e-7 relative in the loss and 4.1e-7 absolute in any parameter
(parameters up to ~1.0). The tests allow 1e-5 for both, 25-70x that; the bugs they guard against are far larger
(an unscaled DDP loss logs half the loss and trains with half the gradient; a per-rank data order shows at
step 1 in tokens_seen). A resumed run reloads weights, optimizer, scheduler, step, RNG and data position, and
came out bit-identical to the uninterrupted one (same replica checksum); the test allows 1e-6.

The two Ray runs (one killed and restarted) start three Ray Train worker groups, 15-22 s each on a loaded
2-core machine, so the module takes about 2 minutes: both are marked ``slow``. GRPO (reasonpipe.rl's loop on the
same plumbing) has the same two tests at the end of the file.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch

from reasonpipe.errors import InputError
from reasonpipe.sft import SFTConfig, train

# Ray Train reads Ray Data's context, whose own deprecated fields warn on every run (nothing of ours).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning:ray.data.context")

STEPS = 8


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    from reasonpipe.tracegen import GenRequest, generate

    out = str(tmp_path_factory.mktemp("ddp") / "cd3.jsonl")
    generate(GenRequest(task="countdown", searcher="dfs", out=out, n=64, seed=1,
                        task_options={"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49}))
    return out


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray with 2 CPUs for this module. Not ``include_dashboard=False``: Ray Train's placement-group
    cleaner needs this cluster's State API, which the dashboard serves (see init_local_ray)."""
    import ray

    from reasonpipe.localray import init_local_ray

    if ray.is_initialized():  # another module's Ray: run_on_workers checks that Ray Train can run on it
        yield
        return
    init_local_ray(num_cpus=2)
    yield
    ray.shutdown()


def config(traces, out, **kw) -> SFTConfig:
    base = dict(data=[traces], out=str(out), task="countdown", model="tiny", max_len=512, batch_size=4,
                num_workers=2, max_failures=0, max_steps=STEPS, lr=3e-3, warmup_steps=2, save_every=2,
                keep_checkpoints=2, log_every=1, quiet=True, seed=0, resume="never")
    return SFTConfig(**{**base, **kw})


def params(folder) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def metrics(run) -> list[dict]:
    """The per-step rows of a run's metrics.jsonl (not the end-of-training row)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r]


@pytest.fixture(scope="module")
def two_workers(ray_cluster, traces, tmp_path_factory):
    """An uninterrupted 2-worker run, batch 4 per worker: (summary, run folder)."""
    out = tmp_path_factory.mktemp("two") / "run"
    return train(config(traces, out, save_every=4)), out  # fewer checkpoints (each one is a Ray report barrier)


@pytest.mark.slow
def test_two_workers_keep_identical_replicas_and_equal_one_process_with_twice_the_batch(
        two_workers, traces, tmp_path, monkeypatch):
    import reasonpipe.sft

    two, out = two_workers
    assert two["steps"] == STEPS and two["workers"] == 2 and two["global_batch"] == 8 and two["resumed_from"] is None
    a, b = two["replica_checksums"]
    assert a == b  # DDP: both ranks hold bit-identical parameters at the end
    # Checkpoints went through Ray Train, where the single-process path keeps them, with every rank's RNG state.
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-4", "checkpoint-8"]
    assert {"model.safetensors", "optimizer.pt", "trainer_state.json", "rng_state_0.pth", "rng_state_1.pth"} \
        <= {p.name for p in (out / "checkpoints" / "checkpoint-8").iterdir()}
    assert (out / "final" / "tokenizer.json").exists()
    assert json.loads((out / "manifest.json").read_text())["summary"]["steps"] == STEPS

    def no_ray(*args, **kwargs):
        raise AssertionError("num_workers=1 must not start Ray")

    monkeypatch.setattr(reasonpipe.sft, "run_on_workers", no_ray)
    one = train(config(traces, tmp_path / "one", num_workers=1, batch_size=8))
    assert one["steps"] == STEPS and one["tokens_seen"] == two["tokens_seen"]  # the same examples
    rows2, rows1 = metrics(out), metrics(tmp_path / "one")
    assert [r["step"] for r in rows2] == [r["step"] for r in rows1] == list(range(1, STEPS + 1))
    for r2, r1 in zip(rows2, rows1):
        assert r2["tokens_seen"] == r1["tokens_seen"]
        assert r2["token_accuracy"] == pytest.approx(r1["token_accuracy"], abs=1e-6)  # summed over both ranks
        assert r2["loss"] == pytest.approx(r1["loss"], rel=1e-5)  # the global batch's mean, not a rank's
        assert r2["grad_norm"] == pytest.approx(r1["grad_norm"], rel=1e-5)  # gradient not scaled by 1/workers
    assert max_diff(params(out / "final"), params(tmp_path / "one" / "final")) < 1e-5


def kill_rank_once(marker: str, step: int, snapshot: str):
    """A callback that SIGKILLs rank 1 once (``marker`` records it), right after ``checkpoint-<step>`` is in
    Ray Train's checkpoint list; defined in a function so that Ray pickles it by value to the workers."""
    from transformers import TrainerCallback

    class KillRankOnce(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if args.process_index != 1 or state.global_step != step or os.path.exists(marker):
                return
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            deadline = time.time() + 60  # the controller registers a reported checkpoint asynchronously
            while time.time() < deadline:
                if os.path.exists(snapshot) and f'"checkpoint-{step}"' in open(snapshot).read():
                    break
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)

    return KillRankOnce()


@pytest.mark.slow
def test_a_killed_worker_resumes_from_its_checkpoint_to_the_uninterrupted_model(two_workers, traces, tmp_path):
    two, two_out = two_workers
    out = tmp_path / "killed"
    marker = tmp_path / "killed-once"
    kill = kill_rank_once(str(marker), 4, str(out / "checkpoints" / "checkpoint_manager_snapshot.json"))
    s = train(config(traces, out, max_failures=1), callbacks=[kill])
    assert marker.exists()  # rank 1 was killed
    assert s["steps"] == STEPS and s["resumed_from"] == str(out / "checkpoints" / "checkpoint-4")
    assert s["tokens_seen_this_run"] < s["tokens_seen"] == two["tokens_seen"]  # the resumed attempt did 5..8 only
    assert s["replica_checksums"][0] == s["replica_checksums"][1]
    assert [r["step"] for r in metrics(out)] == list(range(1, STEPS + 1))  # rows past step 4 logged once
    assert max_diff(params(out / "final"), params(two_out / "final")) < 1e-6
    assert s["last_loss"] == pytest.approx(two["last_loss"], rel=1e-6)


def test_impossible_worker_settings_get_one_clear_error(traces, tmp_path):
    with pytest.raises(InputError, match="num_workers"):
        train(config(traces, tmp_path / "x", num_workers=0))
    with pytest.raises(InputError, match="max_failures"):
        train(config(traces, tmp_path / "x", max_failures=-2))
    with pytest.raises(InputError, match="no such data file"):
        train(config(traces, tmp_path / "x", data=[str(tmp_path / "missing.jsonl")]))


# -- GRPO ------------------------------------------------------------------------------------------------------------
# 2 workers against 1 process, the same global batch (2 prompts x 4 generations), 3 steps, a fresh tiny model and the
# step-score reward (garbage completions score by their line count, so the advantages are not zero): the losses and
# rewards logged are identical and the parameters differ by at most 6.7e-8 (measured; summation order only), because
# every row of the global batch is sampled from its own seeded stream (reasonpipe.trl_compat.seeded_rollout_trainer_class).

def grpo_config(out, **kw):
    from reasonpipe.rl import RLConfig

    base = dict(model="tiny", out=str(out), task="countdown",
                task_options={"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49}, reward="step_score",
                problems=8, probe_problems=1, probe_ks=[1], probe_every=0, num_generations=4, prompts_per_step=2,
                max_steps=3, max_completion_length=16, lr=1e-3, quiet=True, device="cpu", save_every=100,
                num_workers=2, max_failures=0, resume="never", log_every=1)
    return RLConfig(**{**base, **kw})


def grpo_rows(run) -> list[float]:
    """Step, loss and mean reward of every step, flat."""
    return [x for r in metrics(run) for x in (r["step"], r["loss"], r["reward"])]


@pytest.fixture(scope="module")
def grpo_one(tmp_path_factory):
    from reasonpipe.rl import train as grpo

    out = tmp_path_factory.mktemp("grpo-one") / "run"
    return grpo(grpo_config(out, num_workers=1, max_steps=4)), out


@pytest.mark.slow
def test_grpo_on_two_workers_equals_one_process_with_the_same_global_batch(ray_cluster, grpo_one, tmp_path):
    from reasonpipe.models import build_model
    from reasonpipe.rl import train as grpo
    from reasonpipe.tokenizer import TaskTokenizer

    one, one_out = grpo_one
    s = grpo(grpo_config(tmp_path / "two", max_steps=4))
    assert s["workers"] == 2 and s["global_batch"] == 8 and s["replica_checksums"][0] == s["replica_checksums"][1]
    assert grpo_rows(tmp_path / "two") == pytest.approx(grpo_rows(one_out), rel=1e-5, abs=1e-7)
    assert max_diff(params(tmp_path / "two" / "final"), params(one_out / "final")) < 1e-5
    start = build_model("tiny", TaskTokenizer.for_task("countdown").hf(), max_positions=512, seed=0).state_dict()
    assert max_diff(params(one_out / "final"), start) > 1e-4  # and they did train


@pytest.mark.slow
def test_grpo_worker_killed_resumes_to_the_uninterrupted_model(ray_cluster, grpo_one, tmp_path):
    from reasonpipe.rl import train as grpo

    _, one_out = grpo_one
    out = tmp_path / "killed"
    marker = tmp_path / "killed-once"
    kill = kill_rank_once(str(marker), 2, str(out / "checkpoints" / "checkpoint_manager_snapshot.json"))
    s = grpo(grpo_config(out, max_steps=4, save_every=2, max_failures=1), callbacks=[kill])
    assert marker.exists()  # rank 1 was killed after checkpoint-2
    assert s["steps"] == 4 and s["resumed_from"] == str(out / "checkpoints" / "checkpoint-2")
    assert grpo_rows(out)[::3] == [1, 2, 3, 4]  # rows past step 2 logged once
    assert max_diff(params(out / "final"), params(one_out / "final")) < 1e-5


def test_grpo_worker_settings_that_cannot_work(tmp_path):
    from reasonpipe.rl import check

    with pytest.raises(InputError, match="split evenly over 3 workers"):
        check(grpo_config(tmp_path, num_workers=3))
    with pytest.raises(InputError, match="colocated vLLM with num_workers > 1"):
        check(grpo_config(tmp_path, use_vllm=True, model=str(tmp_path)))
