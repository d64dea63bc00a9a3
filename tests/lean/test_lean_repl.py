"""reasonpipe.verifiers.lean.repl against a fake REPL that replays real recorded exchanges (tests/lean/fakes/fake_repl.py).

The recordings are leanprover-community/repl's own test files (/work/shared/lean/repl-golden): requests and
the replies a real REPL (Lean v4.33.0-rc2) gave. Every pair is replayed through ReplProcess; the session
tests use small golden directories built from those recordings in tmp_path.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/lean/test_lean_repl.py -q
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path

import pytest

from reasonpipe.verifiers.lean.repl import (Message, Pos, ReplCrashed, ReplError, ReplProcess, ReplProtocolError,
                                 ReplResponse, ReplSession, ReplStartError, ReplTimeout, Sorry, encode_request,
                                 take_block)
from reasonpipe.verifiers.lean.sandbox import LeanNotFound, Limits

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "lean" / "data" / "repl-golden"  # a copy of ../shared/lean/repl-golden
FAKE = REPO / "tests" / "lean" / "fakes" / "fake_repl.py"
# These tests are about the protocol client; the sandbox has its own tests (test_lean_sandbox.py).
LIMITS = Limits(use_bwrap=False, timeout_s=10)
needs_golden = pytest.mark.skipif(not GOLDEN.is_dir(), reason=f"recorded REPL exchanges not found at {GOLDEN}")


def golden_blocks(path: Path) -> list[str]:
    """Blank-line separated blocks, read line by line (independently of the fake's own reader)."""
    found, current = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            found.append("\n".join(current))
            current = []
    return found + (["\n".join(current)] if current else [])


def golden_pairs(name: str) -> list[tuple[dict, dict]]:
    # strict=False: a raw newline inside a JSON string (invalid_line_break, line_breaks) is what the REPL got
    requests = [json.loads(b, strict=False) for b in golden_blocks(GOLDEN / f"{name}.in")]
    replies = [json.loads(b) for b in golden_blocks(GOLDEN / f"{name}.expected.out")]
    assert len(requests) == len(replies), name
    return list(zip(requests, replies))


def golden_names() -> list[str]:
    if not GOLDEN.is_dir():
        return []
    return sorted(p.name.removesuffix(".in") for p in GOLDEN.glob("*.in")
                  if p.with_name(p.name.removesuffix(".in") + ".expected.out").exists())


def fake(name: str, *flags: str, golden_dir: Path = GOLDEN) -> list[str]:
    # -S -I: the fake needs only the standard library, and starts twice as fast without the venv's site
    return [sys.executable, "-S", "-I", str(FAKE), "--golden", name, "--dir", str(golden_dir), *flags]


def replay(name: str) -> list[tuple[dict, dict]]:
    """Each request of ``name`` through one ReplProcess; (reply, expected) pairs."""
    got = []
    with ReplProcess(fake(name), cwd=str(REPO), limits=LIMITS) as process:
        for request, expected in golden_pairs(name):
            got.append((process.request(request), expected))
    return got


def write_golden(directory: Path, name: str, exchanges: list[tuple[str, str]]) -> None:
    """A golden pair in the recordings' format from (request, reply) texts."""
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.in").write_text("\n\n".join(r for r, _ in exchanges) + "\n", encoding="utf-8")
    (directory / f"{name}.expected.out").write_text("".join(a + "\n\n" for _, a in exchanges), encoding="utf-8")


def recorded(name: str, index: int) -> tuple[str, str]:
    """The index-th (request, reply) texts of a real recording."""
    return (golden_blocks(GOLDEN / f"{name}.in")[index], golden_blocks(GOLDEN / f"{name}.expected.out")[index])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- every recording, replayed ---------------------------------------------------------------------------

@needs_golden
def test_there_are_recordings():
    names = golden_names()
    assert len(names) >= 50 and "pickle_scoped_notation" not in names  # that one has no .expected.out


@needs_golden
@pytest.mark.parametrize("name", golden_names())
def test_replay_every_recording(name):
    for reply, expected in replay(name):
        assert reply == expected
        if "message" in expected:
            with pytest.raises(ReplProtocolError) as refused:
                ReplResponse.from_json(reply)
            assert refused.value.reply == expected and expected["message"] in str(refused.value)
            continue
        response = ReplResponse.from_json(reply)
        assert response.env == expected.get("env")
        assert response.proof_state == expected.get("proofState")
        assert response.proof_status == expected.get("proofStatus")
        assert response.goals == tuple(expected.get("goals", []))
        assert [(m.severity, m.pos.line, m.pos.column, m.data) for m in response.messages] == \
            [(m["severity"], m["pos"]["line"], m["pos"]["column"], m["data"]) for m in expected.get("messages", [])]
        assert [(s.proof_state, s.goal) for s in response.sorries] == \
            [(s.get("proofState"), s["goal"]) for s in expected.get("sorries", [])]


# --- named recordings, checked field by field -------------------------------------------------------------

@needs_golden
def test_dup_sorries():
    (first, _), (second, _) = replay("dup_sorries")
    a, b = ReplResponse.from_json(first), ReplResponse.from_json(second)
    assert (a.env, b.env) == (0, 1)
    assert a.sorries == (Sorry(proof_state=0, pos=Pos(1, 24), end_pos=Pos(1, 29), goal="⊢ 1 = 1"),)
    assert b.sorries == (Sorry(proof_state=1, pos=Pos(1, 24), end_pos=Pos(1, 29), goal="⊢ 2 = 2"),)
    assert a.messages == (Message("warning", Pos(1, 8), Pos(1, 12), "declaration uses `sorry`"),)
    assert a.errors == () and a.raw == first


@needs_golden
def test_unknown_environment_is_a_protocol_error():
    [(reply, _)] = replay("unknown_environment")
    with pytest.raises(ReplProtocolError, match="Unknown environment.") as refused:
        ReplResponse.from_json(reply)
    assert refused.value.reply == {"message": "Unknown environment."}


@needs_golden
def test_incomplete_has_two_errors():
    _, (reply, _) = replay("incomplete")
    response = ReplResponse.from_json(reply)
    assert response.env == 1
    assert [(m.pos, m.end_pos) for m in response.errors] == [(Pos(3, 19), Pos(3, 20)), (Pos(1, 26), Pos(3, 20))]
    assert response.errors[0].data == "unsolved goals\ncase pos\nx : Bool\nh✝ : x = true\n⊢ Nat"


@needs_golden
def test_readme_tactic_mode():
    (cmd, _), (step, _), (done, _) = replay("readme")
    assert ReplResponse.from_json(cmd).sorries[0].goal == "x : Unit\n⊢ Nat"
    step, done = ReplResponse.from_json(step), ReplResponse.from_json(done)
    assert (step.env, step.proof_state, step.proof_status, step.goals) == \
        (None, 1, "Incomplete: open goals remain", ("x : Unit\n⊢ Int",))
    assert (done.proof_state, done.proof_status, done.goals) == (2, "Completed", ())


@needs_golden
def test_tactic_mode_sorry_has_no_position():
    replies = [reply for reply, _ in replay("app_type_mismatch2")]
    assert ReplResponse.from_json(replies[5]).sorries == (Sorry(4, None, None, "n✝ : Nat\n⊢ true = true"),)
    with pytest.raises(ReplProtocolError, match="Lean error:\nTactic `apply` failed"):
        ReplResponse.from_json(replies[6])


@needs_golden
def test_raw_newline_request_is_sent_escaped():
    request, _ = golden_pairs("invalid_line_break")[0]
    assert request == {"cmd": "theorem foo : 1 = 1 := by\nsorry"}
    assert encode_request(request) == b'{"cmd": "theorem foo : 1 = 1 := by\\nsorry"}\n\n'
    # the recorded reply is what the real REPL said to the raw newline (it joins lines: `bysorry`); the fake
    # only checks that the request arrived intact through the client's framing
    assert ReplResponse.from_json(replay("invalid_line_break")[0][0]).errors[0].data == \
        "Unknown identifier `bysorry`"


# --- parsing and framing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("reply", [
    [], {}, {"sorries": []},
    {"env": "0"}, {"env": 0, "messages": [{"severity": "error", "data": "x"}]},
    {"env": 0, "messages": [{"severity": "error", "pos": {"line": True, "column": 0}, "data": "x"}]},
    {"env": 0, "sorries": [{"proofState": 0, "pos": {"line": 1, "column": 0}}]},
    {"proofState": 1, "goals": "⊢ Nat"},
])
def test_malformed_replies(reply):
    with pytest.raises(ReplProtocolError):
        ReplResponse.from_json(reply)


def test_requests_are_one_line_and_one_blank_line():
    data = encode_request({"cmd": "theorem t :\n\n  1 = 1 := rfl", "env": 3})
    assert data.count(b"\n") == 2 and data.endswith(b"}\n\n")
    assert json.loads(data) == {"cmd": "theorem t :\n\n  1 = 1 := rfl", "env": 3}


def test_take_block():
    buffer = bytearray(b'\n{"env":\n 0}\n\n{"env"')
    assert take_block(buffer) == '{"env":\n 0}'
    assert buffer == bytearray(b'{"env"') and take_block(buffer) is None
    buffer += b": 1}\n  \n"
    assert take_block(buffer) == '{"env": 1}' and buffer == bytearray()


# --- ReplProcess failures ---------------------------------------------------------------------------------

@needs_golden
def test_process_timeout_kills_the_process():
    with ReplProcess(fake("def_eval", "--hang-after", "1"), cwd=str(REPO), limits=LIMITS) as process:
        process.request({"cmd": "def f := 37"})
        pid = process.pid
        start = time.monotonic()
        with pytest.raises(ReplTimeout) as timeout:
            process.request({"cmd": "#check (rfl : f = 37)", "env": 0}, timeout=0.5)
        assert 0.5 <= time.monotonic() - start < 1.5 and timeout.value.seconds == 0.5
        assert not process.alive() and not alive(pid)
        with pytest.raises(ReplError, match="closed"):
            process.request({"cmd": "def f := 37"})


def test_process_that_exits_before_the_request():
    with ReplProcess([sys.executable, "-c", "import sys; sys.stderr.write('bye'); sys.exit(3)"], cwd=str(REPO),
                     limits=LIMITS) as process:
        deadline = time.monotonic() + 5
        while process.alive() and time.monotonic() < deadline:  # it has exited before we write
            time.sleep(0.01)
        with pytest.raises(ReplCrashed) as crashed:
            process.request({"cmd": "def f := 37"})
    assert (crashed.value.returncode, crashed.value.stderr_tail, crashed.value.out_of_memory) == (3, "bye", False)
    assert str(crashed.value) == "the REPL process exited: exit status 3: bye"


@needs_golden
def test_process_crash_with_a_signal_status():
    with ReplProcess(fake("def_eval", "--crash-after", "0", "--exit-code", "139"), cwd=str(REPO),
                     limits=LIMITS) as process:
        with pytest.raises(ReplCrashed, match=r"exit status 139 \(128 \+ SIGSEGV\): fake: crashing") as crashed:
            process.request({"cmd": "def f := 37"})
    assert not crashed.value.out_of_memory


@needs_golden
def test_reply_larger_than_the_output_limit():
    with ReplProcess(fake("app_type_mismatch2"), cwd=str(REPO),
                     limits=Limits(use_bwrap=False, timeout_s=10, max_output_bytes=200)) as process:
        request, _ = golden_pairs("app_type_mismatch2")[0]
        with pytest.raises(ReplProtocolError, match="larger than 200 bytes"):
            process.request(request)
        assert not process.alive()


def test_unsolicited_output_is_a_protocol_error():
    # answers every request twice: the second answer must not be taken for the next request's reply
    script = ("import sys\n"
              "for line in sys.stdin:\n"
              "    if line.strip():\n"
              "        sys.stdout.write('{\"env\": 0}\\n\\n{\"env\": 1}\\n\\n'); sys.stdout.flush()\n")
    with ReplProcess([sys.executable, "-c", script], cwd=str(REPO), limits=LIMITS) as process:
        assert process.request({"cmd": "a"}) == {"env": 0}
        time.sleep(0.2)
        with pytest.raises(ReplProtocolError, match="nobody asked for"):
            process.request({"cmd": "b"})


def test_forgotten_process_is_killed_when_collected():
    process = ReplProcess([sys.executable, "-c", "import time; time.sleep(60)"], cwd=str(REPO), limits=LIMITS)
    pid = process.pid
    assert alive(pid)
    del process
    gc.collect()
    assert not alive(pid)


def test_missing_repl_executable(tmp_path):
    with pytest.raises(LeanNotFound, match="lake build"):
        ReplProcess([str(tmp_path / "repl")], cwd=str(tmp_path), limits=LIMITS)
    with pytest.raises(ReplStartError, match="does not exist"):
        ReplProcess([sys.executable], cwd=str(tmp_path / "nope"), limits=LIMITS)


# --- ReplSession ------------------------------------------------------------------------------------------

HEADER = "def f := 37"
CHECK = "#check (rfl : f = 37)"


@pytest.fixture
def session_dir(tmp_path):
    """``session``: the def_eval recording (header `def f := 37`, then a check in env 0), replayed forever."""
    if not GOLDEN.is_dir():
        pytest.skip(f"recorded REPL exchanges not found at {GOLDEN}")
    write_golden(tmp_path / "golden", "session", [recorded("def_eval", 0), recorded("def_eval", 1)])
    return tmp_path / "golden"


def session(session_dir: Path, *flags: str, **kwargs) -> ReplSession:
    kwargs.setdefault("limits", LIMITS)
    return ReplSession(fake("session", "--repeat-last", *flags, golden_dir=session_dir), HEADER, **kwargs)


def assert_check_ok(response: ReplResponse) -> None:
    assert response.env == 1 and response.messages[0].data == "rfl : f = f" and response.errors == ()


def test_header_is_built_once(session_dir):
    # the fake answers a repeated header with a "fake: unexpected request" refusal, so check() would raise
    with session(session_dir) as s:
        for _ in range(3):
            assert_check_ok(s.check(CHECK))
        assert (s.restarts, s.recycles) == (0, 0)
        cwd = s.cwd
        assert os.path.isdir(cwd)
    assert not os.path.exists(cwd)  # the private temporary directory is removed
    forgotten = session(session_dir)
    cwd = forgotten.cwd
    del forgotten
    gc.collect()
    assert not os.path.exists(cwd)  # also when nobody closes the session


def test_session_without_header(tmp_path):
    if not GOLDEN.is_dir():
        pytest.skip(f"recorded REPL exchanges not found at {GOLDEN}")
    with ReplSession(fake("term_sorry"), limits=LIMITS, cwd=str(tmp_path)) as s:
        response = s.check("def f : Nat := sorry")  # sent without "env", as recorded
        assert response.env == 0 and response.sorries[0].goal == "⊢ Nat"
    assert tmp_path.is_dir()  # a directory given by the caller stays


def test_crash_then_restart(session_dir):
    with session(session_dir, "--crash-after", "2", "--exit-code", "3") as s:
        assert_check_ok(s.check(CHECK))
        first = s.pid
        with pytest.raises(ReplCrashed) as crashed:
            s.check(CHECK)
        assert crashed.value.returncode == 3 and "fake: crashing on request 3" in crashed.value.stderr_tail
        assert s.pid is None and not alive(first)
        assert_check_ok(s.check(CHECK))  # a new process, with the header run again
        assert s.restarts == 1 and s.pid != first


def test_timeout_then_restart(session_dir):
    with session(session_dir, "--hang-after", "2") as s:
        assert_check_ok(s.check(CHECK))  # each process answers the header and one check, then hangs
        hung = s.pid
        start = time.monotonic()
        with pytest.raises(ReplTimeout):
            s.check(CHECK, timeout=0.5)
        assert time.monotonic() - start < 1.5
        assert s.pid is None and not alive(hung)
        assert_check_ok(s.check(CHECK))
        assert s.restarts == 1


def test_out_of_memory(session_dir):
    with session(session_dir, "--oom-after", "1", limits=Limits(use_bwrap=False, timeout_s=10, memory_mb=2048)) as s:
        with pytest.raises(ReplCrashed) as crashed:
            s.check(CHECK)
    assert crashed.value.out_of_memory and crashed.value.returncode == 1
    assert "INTERNAL PANIC: out of memory" in crashed.value.stderr_tail
    assert str(crashed.value) == "the REPL process exited: out of memory (limit 2048 MB)"


def test_garbage_is_a_protocol_error(session_dir):
    with session(session_dir, "--garbage-after", "1") as s:
        with pytest.raises(ReplProtocolError, match="not a JSON object: this is not JSON"):
            s.check(CHECK)
        assert s.pid is None  # the framing is lost: the process was dropped


def test_refusal_keeps_the_process(session_dir):
    # a real refusal text, paired with a command of our own (the fake only pairs requests with replies)
    refused = ('{"cmd": "example : True := by exat", "env": 0}', recorded("unknown_tactic", 1)[1])
    write_golden(session_dir, "refusal", [recorded("def_eval", 0), refused, recorded("def_eval", 1)])
    with ReplSession(fake("refusal", golden_dir=session_dir), HEADER, limits=LIMITS) as s:
        with pytest.raises(ReplProtocolError, match="unknown tactic"):
            s.check("example : True := by exat")
        pid = s.pid
        assert_check_ok(s.check(CHECK))
        assert s.pid == pid and s.restarts == 0


def test_gives_up_after_max_restarts(session_dir):
    with session(session_dir, "--crash-after", "1", max_restarts=2) as s:
        for _ in range(3):  # every process crashes on its first check
            with pytest.raises(ReplCrashed):
                s.check(CHECK)
        with pytest.raises(ReplStartError, match="failed 3 times in a row"):
            s.check(CHECK)
        assert s.restarts == 2


def test_a_good_check_resets_the_failure_count(session_dir):
    with session(session_dir, "--crash-after", "2", max_restarts=1) as s:
        for _ in range(3):  # every process answers one check and crashes on the next: never two in a row
            assert_check_ok(s.check(CHECK))
            with pytest.raises(ReplCrashed):
                s.check(CHECK)
        assert s.restarts == 2


def test_header_errors_are_a_start_error(tmp_path):
    if not GOLDEN.is_dir():
        pytest.skip(f"recorded REPL exchanges not found at {GOLDEN}")
    write_golden(tmp_path, "bad_header", [recorded("incomplete", 0)])
    with ReplSession(fake("bad_header", golden_dir=tmp_path), "def f : Nat := by apply Nat.succ",
                     limits=LIMITS) as s:
        with pytest.raises(ReplStartError, match=r"header has errors \(line 1, column 15: unsolved goals"):
            s.check(CHECK)
        assert s.pid is None


def test_header_crash_is_a_start_error(session_dir):
    with session(session_dir, "--crash-after", "0") as s:
        with pytest.raises(ReplStartError, match="header failed: the REPL process exited") as failed:
            s.check(CHECK)
    assert isinstance(failed.value.__cause__, ReplCrashed)


def test_recycle_after(session_dir):
    with session(session_dir, recycle_after=2) as s:
        pids = []
        for _ in range(5):
            assert_check_ok(s.check(CHECK))  # each new process gets the header first, or the fake refuses
            pids.append(s.pid)
        assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
        assert (s.recycles, s.restarts) == (2, 0)
        assert not alive(pids[0]) and not alive(pids[2])


def test_closed_session(session_dir):
    s = session(session_dir)
    s.close()
    s.close()
    with pytest.raises(ReplError, match="closed"):
        s.check(CHECK)
