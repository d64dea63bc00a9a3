"""Lean 4 step verification (Safe-style): state each step as a Lean theorem, guard it, and prove it.

- :mod:`~verifiers.lean.formalize`: steps -> Lean statements (CountDown, Sudoku, Safe's own statements);
- :mod:`~verifiers.lean.guard`: exactly one declaration, nothing else, by lexing and parsing;
- :mod:`~verifiers.lean.sandbox`: Lean runs in a temporary directory with limits and a scrubbed environment;
- :mod:`~verifiers.lean.backends`: a batch-file backend (``lean FILE``) and a REPL backend;
- :mod:`~verifiers.lean.repl`: the leanprover-community/repl JSON protocol client;
- :mod:`~verifiers.lean.diagnostics`: Lean's messages and ``#print axioms`` reports;
- :mod:`~verifiers.lean.verifier`: the Verifier contract on top (``LeanVerifier``).

Example::

    reasonpipe verify cd.jsonl --backend lean
"""

from verifiers.lean.verifier import DEFAULT_TACTICS, LeanConfig, LeanVerifier, lean_missing_message

__all__ = ["DEFAULT_TACTICS", "LeanConfig", "LeanVerifier", "lean_missing_message"]
