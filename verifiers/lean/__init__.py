"""Lean 4 step verification (Safe-style): state each step as a Lean theorem, guard it, and prove it, with
verdicts no proof can forge (docs/lean-trust.md).

- :mod:`~reasonpipe.verifiers.lean.formalize`: steps -> our Lean statements (CountDown, Sudoku) or Safe's (the challenge),
  and the prover's proof only;
- :mod:`~reasonpipe.verifiers.lean.guard`: the lexer and parser: exactly one statement, nothing else;
- :mod:`~reasonpipe.verifiers.lean.policy`: what a proof may contain (an allow-list of tactics and term forms);
- :mod:`~reasonpipe.verifiers.lean.keywords`: which words the configured Lean and header make keywords, asked of Lean;
- :mod:`~reasonpipe.verifiers.lean.sandbox`: Lean runs with limits, a scrubbed environment and bubblewrap;
- :mod:`~reasonpipe.verifiers.lean.backends`: the file backend (three modules a batch, a trusted check) and the REPL backend;
- :mod:`~reasonpipe.verifiers.lean.repl`: the leanprover-community/repl JSON protocol client;
- :mod:`~reasonpipe.verifiers.lean.diagnostics`: Lean's messages, and the trusted check's output read strictly;
- :mod:`~reasonpipe.verifiers.lean.verifier`: the Verifier contract on top (``LeanVerifier``).

Example::

    reasonpipe verify cd.jsonl --backend lean
"""

from reasonpipe.verifiers.lean.verifier import DEFAULT_TACTICS, LeanConfig, LeanVerifier, lean_missing_message

__all__ = ["DEFAULT_TACTICS", "LeanConfig", "LeanVerifier", "lean_missing_message"]
