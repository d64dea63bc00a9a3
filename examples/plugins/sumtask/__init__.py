"""A plug-in task for reasonpipe, kept outside it: "sum to target" (pick some of the numbers so that they add up to
the target), with its trace grammar, two searchers, a step verifier and two rewards. docs/plugins.md walks
through it; nothing in reasonpipe names it, configs do (``task: sumtask.task:SumTask``).

Example (from the repository root)::

    PYTHONPATH=examples/plugins reasonpipe gen sumtask.task:SumTask --searcher sumtask.search:dfs --n 5 --out /tmp/sum.jsonl
"""
