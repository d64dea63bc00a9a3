"""Color cube rotation (reasoning-gym ``color_cube_rotation``): which colour is on a side after some turns?

A cube has six coloured sides; it is turned several times so that a named side comes to the top, and
the question asks for the colour now on one side. We simulate the turns ourselves (each turn moves the
named side to the top along the great circle through it and the top; ``bottom`` is two ``front`` turns,
as reasoning-gym does it) and write traces in the shared gym grammar::

    Problem: top blue right cyan front red left indigo back purple bottom orange ; rotate back left ; ask left
    Try: left is gold                                   a candidate colour for the asked side
    Check: after 1 gold is top                          where that colour sits after turn 1 (holds)
    Reject: after 2 gold is right not left              where it ends: not on the asked side
    Try: left is indigo
    Check: after 1 rotate back : top purple right ...   the whole cube after each turn (holds)
    Answer: indigo

Branches are the six colours on the cube: the right one and five wrong ones (always five, so k <= 5).
Claims (all checked by simulation; any other text is false): ``after I rotate S : top C right C front C
left C back C bottom C``, ``after I C is S``, ``after I S is C``, and the refutations ``after N C is S not
A`` / ``after N A is C not C2`` (N: the last turn, A: the asked side, the branch's colour C or C2). A
branch other than ``A is C`` for the asked side A makes every claim false.

Not covered: nothing of reasoning-gym's generator is left out; wrong colours not on the cube are never
offered (they would be refuted by the problem line alone, not by a simulation).

Example::

    reasonpipe gen color_cube_rotation --n 3 --searcher kbacktrack --k 2 --out /tmp/c.jsonl
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from reasonpipe.tasks.gym.base import Branch, GymTask

SIDES = ("top", "right", "front", "left", "back", "bottom")  # reasoning-gym's order
COLOURS = ("red", "green", "blue", "yellow", "white", "orange", "purple", "pink", "brown", "gray", "cyan",
           "magenta", "gold", "silver", "indigo", "violet")
OPPOSITE = {"top": "bottom", "bottom": "top", "front": "back", "back": "front", "left": "right", "right": "left"}

_SIDE = "|".join(SIDES)
_COLOUR = "|".join(COLOURS)
_STATE = " ".join(f"{s} ({_COLOUR})" for s in SIDES)
_STATE_CLAIM = re.compile(rf"after (\d+) rotate ({_SIDE}) : {_STATE}")
_WHERE_CLAIM = re.compile(rf"after (\d+) ({_COLOUR}) is ({_SIDE})(?: not ({_SIDE}))?")
_WHAT_CLAIM = re.compile(rf"after (\d+) ({_SIDE}) is ({_COLOUR})(?: not ({_COLOUR}))?")
_BRANCH = re.compile(rf"({_SIDE}) is ({_COLOUR})")


@dataclass(frozen=True)
class Cube:
    """Colours by side, in :data:`SIDES` order."""

    colours: tuple[str, ...]

    def on(self, side: str) -> str:
        return self.colours[SIDES.index(side)]

    def side_of(self, colour: str) -> str | None:
        return SIDES[self.colours.index(colour)] if colour in self.colours else None

    def turned(self, side: str) -> "Cube":
        """The cube turned so that ``side`` comes to the top."""
        if side == "top":
            return self
        if side == "bottom":  # half a turn about the left-right axis
            return self.turned("front").turned("front")
        # a quarter turn: side -> top -> opposite(side) -> bottom -> side
        now = dict(zip(SIDES, self.colours))
        was = dict(now)
        now["top"], now[OPPOSITE[side]], now["bottom"], now[side] = (
            was[side], was["top"], was[OPPOSITE[side]], was["bottom"])
        return Cube(tuple(now[s] for s in SIDES))

    def show(self) -> str:
        return " ".join(f"{s} {c}" for s, c in zip(SIDES, self.colours))


@dataclass(frozen=True)
class Puzzle:
    """A reasoning-gym entry as we use it: the cube, the turns, the asked side."""

    start: Cube
    rotations: tuple[str, ...]
    ask: str

    @classmethod
    def of(cls, entry: dict) -> "Puzzle":
        m = entry["metadata"]
        return cls(Cube(tuple(m["initial_state"][s] for s in SIDES)), tuple(m["rotations"]), m["target_side"])

    def states(self) -> list[Cube]:
        """The cube before any turn, then after each."""
        out = [self.start]
        for side in self.rotations:
            out.append(out[-1].turned(side))
        return out

    def answer(self) -> str:
        return self.states()[-1].on(self.ask)


def simulate(entry: dict) -> str:
    """The colour on the asked side, by our own simulation (tests compare it with reasoning-gym's)."""
    return Puzzle.of(entry).answer()


class ColorCubeRotationTask(GymTask):
    name = "color_cube_rotation"
    gym_name = "color_cube_rotation"

    def render(self, entry: dict) -> str:
        p = Puzzle.of(entry)
        return f"{p.start.show()} ; rotate {' '.join(p.rotations)} ; ask {p.ask}"

    def branches(self, entry: dict, rng: random.Random) -> tuple[Branch, list[Branch]]:
        p = Puzzle.of(entry)
        states, n = p.states(), len(p.rotations)
        answer = states[-1].on(p.ask)
        right = Branch(
            text=f"{p.ask} is {answer}",
            checks=tuple(f"after {i} rotate {side} : {states[i].show()}" for i, side in enumerate(p.rotations, 1)),
            answer=answer)
        wrongs = []
        for colour in p.start.colours:
            if colour == answer:
                continue
            where = [states[i].side_of(colour) for i in range(n + 1)]
            wrongs.append(Branch(
                text=f"{p.ask} is {colour}",
                checks=tuple(f"after {i} {colour} is {where[i]}" for i in range(1, n)),
                refutation=f"after {n} {colour} is {where[n]} not {p.ask}"))
        return right, wrongs

    def check(self, entry: dict, branch: str, claim: str, refutes: bool) -> bool | None:
        p = Puzzle.of(entry)
        b = _BRANCH.fullmatch(branch)
        if b is None or b.group(1) != p.ask:
            return False  # claims are about a candidate colour of the asked side
        states, n = p.states(), len(p.rotations)
        if m := _STATE_CLAIM.fullmatch(claim):
            i = int(m.group(1))
            return (not refutes and 1 <= i <= n and p.rotations[i - 1] == m.group(2)
                    and states[i].colours == m.groups()[2:])
        if m := _WHERE_CLAIM.fullmatch(claim):
            i, colour, side, not_side = int(m.group(1)), m.group(2), m.group(3), m.group(4)
            if not 1 <= i <= n or states[i].side_of(colour) != side:
                return False
            if not_side is None:
                return not refutes
            # refutes "A is C": after the last turn C sits elsewhere than A
            return side != not_side and i == n and not_side == p.ask and colour == b.group(2)
        if m := _WHAT_CLAIM.fullmatch(claim):
            i, side, colour, not_colour = int(m.group(1)), m.group(2), m.group(3), m.group(4)
            if not 1 <= i <= n or states[i].on(side) != colour:
                return False
            if not_colour is None:
                return not refutes
            # refutes "A is C2": after the last turn A shows another colour
            return colour != not_colour and i == n and side == p.ask and not_colour == b.group(2)
        return False

    @classmethod
    def words(cls) -> tuple[str, ...]:
        return SIDES + COLOURS + ("rotate", "ask", "after", "is", "not")
