"""Where does learning start on graph reachability? Steps until a from-scratch model does the one-hop and two-hop
lookups of the chain of thought, per setting (issue 16).

The model is the latent job's (``reasonpipe.latent_train.build_model``: Qwen2, tied embeddings), trained on the
``cot`` sequences of ``reasonpipe.latent_data`` (prompt, ``P root>n1>n2>...``, ``A answer``) with fresh graphs at
every step (no repeats: learning, not memorising), AdamW with a linear warm-up. Every ``--every`` steps, on
held-out graphs (the task's ``test`` split) and teacher-forced, for hop ``h`` = 1, 2, ... of the path:

- **lookup**: the predicted node is a child of the path's node ``h - 1`` (an edge of the prompt): the one-hop
  lookup, whichever child it picks;
- **exact**: the predicted node is the path's node ``h`` (the lookup and the choice of the child that leads to the
  answer, which needs the graph beyond one hop when the node has several children);
- **answer**: the ``A`` line's node;

and, for either chain of thought (``--cot path`` or ``bfs``), **solved** (greedy generation, the answer line right)
and the teacher-forced **task-token** accuracy, as the latent job measures them.

``--drill-weight w`` adds the lookup drills of each step's graphs (every edge's destination predicted from its
source; ``reasonpipe.latent_data.collate_drills``) to the loss with weight ``w``: one supervised lookup per edge
instead of one or two per chain of thought. The onset of a hop is the first evaluation at which its lookup rate
reaches ``--threshold``. ``--curriculum``
trains on shallower graphs first (``1:400,2:400,3``: depth 1 for 400 steps, depth 2 for 400, then depth 3), the
evaluation always on the last depth. One JSON row per setting (host, versions, the settings, the curve and the
onsets) to stdout and ``--out``; the table in benchmarks/README.md comes from these rows.

Example (about 3 minutes on one core)::

    python benchmarks/latent_onset.py --steps 1500 --every 250 --hidden 128 --heads 4 --lr 1e-3 --out /tmp/onset.jsonl
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
from rows import machine, write_row  # noqa: E402 (benchmarks/rows.py)


def parse_curriculum(text: str, depth: int) -> list[tuple[int, int | None]]:
    """``"1:400,2:400,3"`` -> [(1, 400), (2, 400), (3, None)]; empty: the target depth throughout."""
    if not text:
        return [(depth, None)]
    out: list[tuple[int, int | None]] = []
    for part in text.split(","):
        d, _, n = part.partition(":")
        out.append((int(d), int(n) if n else None))
    if out[-1][1] is not None:
        out.append((depth, None))
    return out


def hop_rates(model: Any, tok: Any, task: Any, problems: list[Any]) -> dict[str, float]:
    """Teacher-forced lookup / exact rates per hop and the answer's rate, on ``problems`` (one batch each 64)."""
    import torch

    from reasonpipe.latent_data import collate
    from reasonpipe.tasks.reachability import MAX_NODES, node_name

    node_of = {tok.convert_tokens_to_ids(node_name(i)): i for i in range(MAX_NODES)}
    counts: dict[str, list[int]] = {}

    def add(key: str, ok: bool) -> None:
        c = counts.setdefault(key, [0, 0])
        c[0] += ok
        c[1] += 1

    model.eval()
    with torch.no_grad():
        for a in range(0, len(problems), 64):
            chunk = problems[a:a + 64]
            batch = collate(task, chunk, "cot", [0] * len(chunk), 1, tok)
            pred = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits.argmax(-1)
            for row, p in enumerate(chunk):
                ids = batch.input_ids[row].tolist()
                positions = [q for q in range(batch.prompt_width, len(ids)) if ids[q] in node_of
                             and batch.attention_mask[row, q]]
                path, answer_at = positions[:len(p.path)], positions[len(p.path)]
                children = {}
                for s, d in p.edges:
                    children.setdefault(s, set()).add(d)
                for h in range(1, len(p.path)):
                    guess = node_of.get(int(pred[row, path[h] - 1]))
                    add(f"lookup{h}", guess in children.get(p.path[h - 1], set()))
                    add(f"exact{h}", guess == p.path[h])
                add("answer", node_of.get(int(pred[row, answer_at - 1])) == p.answer)
    model.train()
    return {k: round(c / n, 3) for k, (c, n) in sorted(counts.items())}


def solved_rates(args: argparse.Namespace, model: Any, problems: list[Any]) -> dict[str, float]:
    """Greedy CoT generation on ``problems``: solved (the answer line right) and the teacher-forced task-token
    accuracy (the CoT's nodes and the answer), as the latent job measures them."""
    from reasonpipe.latent_train import LatentConfig, evaluate, task_token_accuracy

    cfg = LatentConfig(task_options={"nodes": args.nodes, "depth": args.depth}, cot=args.cot, batch_size=64)
    options = {"nodes": args.nodes, "depth": args.depth, "split": "test"}
    point = evaluate(cfg, "cot", model.eval(), "test", options, problems)[0]
    tokens = task_token_accuracy(cfg, "cot", model, options, problems)
    model.train()
    return {"solved": round(point.accuracy, 3), "task_tokens": round(tokens.task, 3)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from reasonpipe.latent_data import collate, collate_drills
    from reasonpipe.latent_train import LatentConfig, build_model, tokenizer
    from reasonpipe.seeds import stream
    from reasonpipe.tasks import make_task

    torch.set_num_threads(1)
    tok = tokenizer()
    options = {"nodes": args.nodes, "depth": args.depth, **({"branching": args.branching} if args.branching else {})}
    test_task = make_task("reachability", **options, split="test")
    test = [test_task.generate(stream("onset-test", args.seed, i)) for i in range(args.eval_problems)]
    model = build_model(LatentConfig(hidden=args.hidden, heads=args.heads, layers=args.layers), tok, args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / args.warmup))
    plan = parse_curriculum(args.curriculum, args.depth)
    curve, onset, step, t0 = [], {}, 0, time.time()
    for depth, steps in plan:
        task = make_task("reachability", **{**options, "depth": depth})
        end = args.steps if steps is None else min(args.steps, step + steps)
        while step < end:
            step += 1
            problems = [task.generate(stream("onset-train", args.seed, step, i)) for i in range(args.batch)]
            batch = collate(task, problems, "cot", [0] * len(problems), 1, tok, cot=args.cot)
            loss = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
            if args.drill_weight:  # the same graphs' lookup drills (reasonpipe.latent_data.collate_drills)
                drills = collate_drills(task, problems, tok, stream("onset-drill", args.seed, step))
                loss = loss + args.drill_weight * model(input_ids=drills.input_ids, attention_mask=drills.attention_mask,
                                                        labels=drills.labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if step % args.every == 0:
                rates = hop_rates(model, tok, test_task, test) if args.cot == "path" else {}
                rates.update(solved_rates(args, model, test))
                curve.append({"step": step, "depth": depth, "loss": round(float(loss.detach()), 4),
                              "seconds": round(time.time() - t0, 1), **rates})
                for key, value in rates.items():
                    if key.startswith("lookup") and value >= args.threshold and key not in onset:
                        onset[key] = step
                print(curve[-1], flush=True)
        if step >= args.steps:
            break
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    return {"bench": "latent_onset", "settings": settings, "onset_steps": onset, "curve": curve,
            "final": curve[-1] if curve else None, "torch": torch.__version__, **machine(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=12)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--branching", type=int, default=0, help="children per node at most (0: the task's default)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--cot", default="path", choices=("path", "bfs"),
                        help="the chain of thought trained: path (P root>n1>...) or bfs (an F line per BFS layer)")
    parser.add_argument("--drill-weight", type=float, default=0.0,
                        help="weight of the lookup drills on each step's graphs (0: none)")
    parser.add_argument("--curriculum", default="", help="depth:steps,... trained first, e.g. 1:400,2:400")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--eval-problems", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    write_row(run(parser.parse_args()), parser.parse_args().out)


if __name__ == "__main__":
    main()
