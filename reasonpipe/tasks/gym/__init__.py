"""The other How-Much-Backtracking tasks, on reasoning-gym's generators and scorers, with our traces.

reasoning-gym (``reasoning-gym==0.1.25``) supplies each problem (``create_dataset(name, size=1, seed=s)[0]``)
and its scorer (``score_answer``); we add what it lacks: a trace grammar shared by these tasks, searchers
that write traces with exactly k backtracks (each a distinct wrong branch), and a step verifier.

The shared grammar, one step a line (``reasonpipe/tasks/gym/grammar.py``)::

    Try: <branch>        a candidate (a rule, an assignment, a count...) in the task's own words
    Check: <claim>       a claim about the current branch that holds
    Reject: <claim>      a claim that refutes the current branch: the search backtracks
    Answer: <answer>     the final answer (scored by reasoning-gym)

A trace with k backtracks has k ``Reject`` lines, each closing a distinct ``Try``; the direct trace has none.
Each task module (``reasonpipe/tasks/gym/<task>.py``) defines its problem view, its branches, and how a
claim about a branch is checked; :mod:`reasonpipe.tasks.gym.base` does the rest of the Task contract. The
searchers live in :mod:`reasonpipe.searchers.gym` and the step verifier in :mod:`reasonpipe.verifiers.gym`.

Example::

    reasonpipe gen color_cube_rotation --n 5 --searcher kbacktrack --k 2 --out /tmp/cube.jsonl
"""
