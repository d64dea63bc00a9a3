"""ARC 1-D (reasoning-gym ``arc_1d``): find the rule that maps each input row to its output row.

A problem shows three (by default) input/output rows of colours 0-9 and a test input; the answer is the
test output. We search a catalogue of named rules over rows (:data:`CATALOGUE`, 51 rules that cover all
70 of reasoning-gym's task types: moves with and without wrap, gravity variants, blocks and dots,
fills, reflections, recolourings, sorting, seeds, markers) and write traces in the shared gym grammar::

    Problem: in 0 0 8 8 0 out 0 0 0 8 8 | in ... out ... | test 0 4 4 0 0
    Try: shift_left 1                          a rule of the catalogue
    Check: example 1 gives 0 8 8 0 0           what the rule makes of example 1 (holds)
    Reject: example 2 gives 0 5 0 0 0 not 0 0 0 5 0    what it makes of example 2, and the expected row
    Try: shift_right 1
    Check: example 1 gives 0 0 0 8 8
    ...
    Answer: 0 0 4 4 0

The right branch is the first catalogue rule that maps every example and gives reasoning-gym's test
output; wrong branches are other rules that get some example wrong (the first wrong example refutes
them; the ones they get right are checked first), the most plausible first: those that fail late, keep
the expected colours and miss by few cells. Claims: ``example I gives ROW`` and ``example I gives ROW not ROW2`` (ROW2 the
expected output), checked by running the branch's rule; any other text is false.

Not covered: a problem no catalogue rule solves raises NotCovered (the generator draws another); with
reasoning-gym's default options that happened on none of 5000 seeds, and :data:`GYM_RULE` names the rule
for each of its task types. reasoning-gym cannot select task types, so the mix is reasoning-gym's.
Wrong branches never include a rule that fits every example (it could only be refuted by the answer).

Example::

    reasonpipe gen arc_1d --n 3 --searcher kbacktrack --k 2 --out /tmp/arc.jsonl
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from reasonpipe.tasks.gym.base import Branch, GymTask, NotCovered

Row = tuple[int, ...]
MAX_WRONG = 8  # wrong branches offered: the most plausible ones


# -- row helpers --------------------------------------------------------------------------------------------

def runs(row: Row) -> list[tuple[int, int, int]]:
    """Maximal runs of one non-zero colour: (start, length, colour)."""
    out, i = [], 0
    while i < len(row):
        j = i
        while j < len(row) and row[j] == row[i]:
            j += 1
        if row[i]:
            out.append((i, j - i, row[i]))
        i = j
    return out


def segments(row: Row) -> list[tuple[int, int]]:
    """Maximal non-zero stretches (any colours): (start, length)."""
    out, i = [], 0
    while i < len(row):
        if row[i]:
            j = i
            while j < len(row) and row[j]:
                j += 1
            out.append((i, j - i))
            i = j
        else:
            i += 1
    return out


def paint(row: list[int], start: int, values: list[int] | tuple[int, ...]) -> None:
    """Write ``values`` from ``start`` on, dropping what falls outside the row."""
    for k, v in enumerate(values):
        if 0 <= start + k < len(row):
            row[start + k] = v


def mirrored(rule: Callable[[Row], Row]) -> Callable[[Row], Row]:
    return lambda row: rule(row[::-1])[::-1]


# -- the rules (each total: a row it does not apply to comes back unchanged) --------------------------------

def shift(n: int) -> Callable[[Row], Row]:
    def rule(row: Row) -> Row:
        return (0,) * n + row[:len(row) - n] if n >= 0 else row[-n:] + (0,) * -n
    return rule


def rotate(n: int) -> Callable[[Row], Row]:
    return lambda row: row[-n % len(row):] + row[:-n % len(row)] if row else row


def pack_left(row: Row) -> Row:
    cells = [x for x in row if x]
    return tuple(cells) + (0,) * (len(row) - len(cells))


def count_left(row: Row) -> Row:
    n = sum(1 for x in row if x)
    return (1,) * n + (0,) * (len(row) - n)


def twos_left_ones_right(row: Row) -> Row:
    ones, twos = row.count(1), row.count(2)
    return (2,) * twos + (0,) * (len(row) - ones - twos) + (1,) * ones


def step_left(row: Row) -> Row:
    out = list(row)
    for i in range(1, len(out)):
        if out[i] and not out[i - 1]:
            out[i - 1], out[i] = out[i], 0
    return tuple(out)


def pack_left_desc(row: Row) -> Row:
    cells = sorted((x for x in row if x), reverse=True)
    return tuple(cells) + (0,) * (len(row) - len(cells))


def _dot_and_block(row: Row, dot: int) -> tuple[int, int, int] | None:
    """(dot position, block start, block end) when the row is one dot of colour ``dot`` and one block."""
    if row.count(dot) != 1:
        return None
    d = row.index(dot)
    cells = [i for i, x in enumerate(row) if x and i != d]
    if not cells or (cells[0] < d < cells[-1]):
        return None
    return d, cells[0], cells[-1]


def _move_block(row: Row, lo: int, hi: int, to: int) -> Row:
    out = list(row)
    block = row[lo:hi + 1]
    paint(out, lo, [0] * len(block))
    paint(out, to, block)
    return tuple(out)


def touch_dot(row: Row) -> Row:
    """The block moves to touch the dot of colour 1."""
    found = _dot_and_block(row, 1)
    if found is None:
        return row
    d, lo, hi = found
    return _move_block(row, lo, hi, d - (hi - lo + 1) if hi < d else d + 1)


def approach_dot(n: int) -> Callable[[Row], Row]:
    """The block moves n cells toward the dot of colour 2, stopping when it touches it."""
    def rule(row: Row) -> Row:
        found = _dot_and_block(row, 2)
        if found is None:
            return row
        d, lo, hi = found
        return _move_block(row, lo, hi, lo + min(n, d - 1 - hi) if hi < d else lo - min(n, lo - d - 1))
    return rule


def stretch_to_dot(row: Row) -> Row:
    """The block grows up to the dot of colour 2, covering it."""
    found = _dot_and_block(row, 2)
    if found is None:
        return row
    d, lo, hi = found
    out = list(row)
    a, b = (lo, d) if hi < d else (d, hi)
    paint(out, a, [row[lo]] * (b - a + 1))
    return tuple(out)


def mirror_around_dot(row: Row) -> Row:
    """The block is reflected about the dot of colour 2."""
    found = _dot_and_block(row, 2)
    if found is None:
        return row
    d, lo, hi = found
    if 2 * d - hi < 0 or 2 * d - lo >= len(row):
        return row
    out = [0] * len(row)
    out[d] = 2
    for i in range(lo, hi + 1):
        out[2 * d - i] = row[i]
    return tuple(out)


def fill_between(row: Row) -> Row:
    """Each colour fills the cells from its first to its last occurrence."""
    out = list(row)
    for colour in sorted(set(row) - {0}):
        cells = [i for i, x in enumerate(row) if x == colour]
        paint(out, cells[0], [colour] * (cells[-1] - cells[0] + 1))
    return tuple(out)


def keep_ends(row: Row) -> Row:
    """Each run keeps only its two end cells."""
    out = list(row)
    for start, length, _ in runs(row):
        paint(out, start + 1, [0] * (length - 2))
    return tuple(out)


def reverse_block(row: Row) -> Row:
    """The stretch from the first to the last coloured cell is reversed in place."""
    cells = [i for i, x in enumerate(row) if x]
    if not cells:
        return row
    lo, hi = cells[0], cells[-1]
    return row[:lo] + row[lo:hi + 1][::-1] + row[hi + 1:]


def keep_biggest(row: Row) -> Row:
    """Only the longest run stays."""
    found = runs(row)
    if not found:
        return row
    start, length, colour = max(found, key=lambda r: r[1])
    out = [0] * len(row)
    paint(out, start, [colour] * length)
    return tuple(out)


def fill_majority(row: Row) -> Row:
    """Every coloured cell takes the most common colour."""
    counts = Counter(x for x in row if x)
    if not counts:
        return row
    top = max(sorted(counts), key=lambda c: counts[c])
    return tuple(top if x else 0 for x in row)


def grow_dots(row: Row) -> Row:
    """Each single cell after the leading block grows to the block's width, centred on itself."""
    found = runs(row)
    if not found or found[0][0] != 0:
        return row
    width = found[0][1]
    out = list(row)
    for start, length, colour in found[1:]:
        if length == 1:
            paint(out, start - width // 2, [colour] * width)
    return tuple(out)


def paint_biggest(row: Row) -> Row:
    """The longest run turns colour 1."""
    found = runs(row)
    if not found:
        return row
    start, length, _ = max(found, key=lambda r: r[1])
    out = list(row)
    paint(out, start, [1] * length)
    return tuple(out)


def recolor_by_size(row: Row) -> Row:
    """The longest run turns 1, every other run 2."""
    found = runs(row)
    if not found:
        return row
    biggest = max(found, key=lambda r: r[1])
    out = list(row)
    for r in found:
        paint(out, r[0], [1 if r == biggest else 2] * r[1])
    return tuple(out)


def recolor_all(colour: int) -> Callable[[Row], Row]:
    return lambda row: tuple(colour if x else 0 for x in row)


def palette_recolor(row: Row) -> Row:
    """The leading cells are a palette: the i-th stretch after it takes the palette's i-th colour."""
    found = segments(row)
    if not found or found[0][0] != 0:
        return row
    palette = row[:found[0][1]]
    out = list(row)
    for (start, length), colour in zip(found[1:], palette):
        paint(out, start, [colour] * length)
    return tuple(out)


def paint_left_half(row: Row) -> Row:
    """The left half of each run turns colour 8."""
    out = list(row)
    for start, length, _ in runs(row):
        paint(out, start, [8] * (length // 2))
    return tuple(out)


def sort_blocks(row: Row) -> Row:
    """The runs, shortest first, packed from the left one cell apart."""
    found = sorted(runs(row), key=lambda r: r[1])
    out, pos = [0] * len(row), 0
    for _, length, colour in found:
        paint(out, pos, [colour] * length)
        pos += length + 1
    return tuple(out)


def repeat_from_seeds(row: Row) -> Row:
    """Single cells beside the block (one cell apart) repeat copies of the block out to the border."""
    found = runs(row)
    blocks = [r for r in found if r[1] >= 2]
    if len(blocks) != 1:
        return row
    start, width, _ = blocks[0]
    size, out = len(row), list(row)
    left, right = start - 2, start + width + 1
    if 0 <= left and row[left] and (left == 0 or not row[left - 1]):
        end = left
        while end >= 0:
            paint(out, max(0, end - width + 1), [row[left]] * (end - max(0, end - width + 1) + 1))
            if end - width + 1 < 1:
                break
            end -= width + 1
    if right < size and row[right] and (right == size - 1 or not row[right + 1]):
        pos = right
        while pos < size:
            paint(out, pos, [row[right]] * width)
            if pos + width + 1 >= size:
                break
            pos += width + 1
    return tuple(out)


def extend_seed(row: Row) -> Row:
    """A single cell at one end of the block fills from there out to the border."""
    cells = [i for i, x in enumerate(row) if x]
    if len(cells) < 2:
        return row
    lo, hi = cells[0], cells[-1]
    out = list(row)
    if row[lo] != row[lo + 1] and row.count(row[lo]) == 1:
        paint(out, 0, [row[lo]] * lo)
    elif row[hi] != row[hi - 1] and row.count(row[hi]) == 1:
        paint(out, hi + 1, [row[hi]] * (len(row) - hi - 1))
    return tuple(out)


def fill_to_marker(row: Row) -> Row:
    """With a 5 at the left end, each cell fills leftward up to the cell before it (mirrored at the right)."""
    if len(row) < 2:
        return row
    if row[0] == 5:
        out, prev = list(row), 0
        for i in range(1, len(row)):
            if row[i]:
                paint(out, prev + 1, [row[i]] * (i - prev - 1))
                prev = i
        return tuple(out)
    if row[-1] == 5:
        return fill_to_marker(row[::-1])[::-1]
    return row


def repeat_pattern(row: Row) -> Row:
    """The leading stretch is a pattern shown twice: repeat it over the whole row."""
    found = segments(row)
    if not found or found[0][0] != 0 or found[0][1] % 2:
        return row
    pattern = row[:found[0][1] // 2]
    return tuple(pattern[i % len(pattern)] for i in range(len(row)))


def mark_pairs(row: Row) -> Row:
    """Each run of length two gets a 3 on both sides."""
    out = list(row)
    for start, length, _ in runs(row):
        if length == 2:
            for i in (start - 1, start + 2):
                if 0 <= i < len(row):
                    out[i] = 3
    return tuple(out)


def shift_by_size(row: Row) -> Row:
    """The block moves right by its own length."""
    found = segments(row)
    return shift(found[0][1])(row) if len(found) == 1 else row


@dataclass(frozen=True)
class Rule:
    """A catalogue rule: its name (the branch text) and what it does to a row."""

    name: str
    apply: Callable[[Row], Row]


def _catalogue() -> tuple[Rule, ...]:
    rules = []
    for n in (1, 2, 3, 4):
        rules += [Rule(f"shift_right {n}", shift(n)), Rule(f"shift_left {n}", shift(-n)),
                  Rule(f"rotate_right {n}", rotate(n)), Rule(f"rotate_left {n}", rotate(-n))]
    rules += [
        Rule("pack_left", pack_left), Rule("pack_right", mirrored(pack_left)),
        Rule("count_left", count_left), Rule("count_right", mirrored(count_left)),
        Rule("twos_left_ones_right", twos_left_ones_right),
        Rule("ones_left_twos_right", mirrored(twos_left_ones_right)),
        Rule("step_left", step_left), Rule("step_right", mirrored(step_left)),
        Rule("pack_left_desc", pack_left_desc), Rule("pack_right_asc", mirrored(pack_left_desc)),
        Rule("touch_dot", touch_dot),
        *(Rule(f"approach_dot {n}", approach_dot(n)) for n in (1, 2, 3, 4)),
        Rule("stretch_to_dot", stretch_to_dot), Rule("mirror_around_dot", mirror_around_dot),
        Rule("fill_between", fill_between), Rule("keep_ends", keep_ends), Rule("reverse_block", reverse_block),
        Rule("keep_biggest", keep_biggest), Rule("fill_majority", fill_majority), Rule("grow_dots", grow_dots),
        Rule("paint_biggest", paint_biggest), Rule("recolor_by_size", recolor_by_size),
        Rule("recolor_all 5", recolor_all(5)), Rule("palette_recolor", palette_recolor),
        Rule("paint_left_half", paint_left_half), Rule("sort_blocks", sort_blocks),
        Rule("repeat_from_seeds", repeat_from_seeds), Rule("extend_seed", extend_seed),
        Rule("fill_to_marker", fill_to_marker), Rule("repeat_pattern", repeat_pattern),
        Rule("mark_pairs", mark_pairs), Rule("shift_by_size", shift_by_size),
    ]
    return tuple(rules)


CATALOGUE: tuple[Rule, ...] = _catalogue()
RULES: dict[str, Rule] = {r.name: r for r in CATALOGUE}

# reasoning-gym's task type -> the catalogue rule that does it (for tests and coverage reports)
GYM_RULE: dict[str, str] = {
    **{f"move_{n}pix_{kind}_{d}": f"shift_{d} {n}" for n in range(1, 5) for kind in ("solid", "colorful")
       for d in ("right", "left")},
    **{f"move_{n}pix_{kind}_wrapped_{d}": f"rotate_{d} {n}" for n in range(1, 5)
       for kind in ("solid", "colorful") for d in ("right", "left")},
    "gravity_right": "pack_left", "gravity_left": "pack_right",
    "gravity_counting_right": "count_left", "gravity_counting_left": "count_right",
    "gravity_antigravity_right": "twos_left_ones_right", "gravity_antigravity_left": "ones_left_twos_right",
    "gravity_one_step_right": "step_left", "gravity_one_step_left": "step_right",
    "gravity_weighted_colors_right": "pack_left_desc", "gravity_weighted_colors_left": "pack_right_asc",
    "block_touch_dot": "touch_dot", **{f"block_touch_dot_{n}pix": f"approach_dot {n}" for n in range(1, 5)},
    "block_scale_to_dot": "stretch_to_dot", "block_and_noise_remove": "keep_biggest",
    "block_and_noise_remove_inside": "fill_majority", "move_block_by_own_size": "shift_by_size",
    "two_points_and_fill": "fill_between", "two_points_and_fill_inv": "keep_ends",
    "copy_block_to_dots": "grow_dots", "copy_block_to_dots_colors": "grow_dots",
    "repeat_pattern_full": "repeat_pattern", "reflect_block_with_border_pixel": "reverse_block",
    "reflect_block_random": "reverse_block", "reflect_block_around_dot": "mirror_around_dot",
    "paint_biggest_block": "paint_biggest", "recolor_blocks_by_size": "recolor_by_size",
    "change_to_five": "recolor_all 5", "recolor_blocks_from_palette": "palette_recolor",
    "color_left_half_blocks": "paint_left_half", "sort_blocks_by_size": "sort_blocks",
    "sort_complete_sequence": "sort_blocks", "duplicate_block_from_seeds": "repeat_from_seeds",
    "fill_from_pixel": "extend_seed", "fill_until_collision": "fill_to_marker",
    "mark_size_two_blocks": "mark_pairs",
}


# -- problems, claims -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Puzzle:
    train: tuple[tuple[Row, Row], ...]
    test: tuple[Row, Row]

    @classmethod
    def of(cls, entry: dict) -> "Puzzle":
        m = entry["metadata"]
        train = tuple((tuple(e["input"]), tuple(e["output"])) for e in m["train_examples"])
        return cls(train, (tuple(m["test_example"]["input"]), tuple(m["test_example"]["output"])))


def show(row: Row) -> str:
    return " ".join(map(str, row))


_ROW = r"\d(?: \d)*"
_CLAIM = re.compile(rf"example (\d+) gives ({_ROW})(?: not ({_ROW}))?")


def _row(text: str) -> Row:
    return tuple(int(c) for c in text.split())


def fits(rule: Rule, puzzle: Puzzle) -> bool:
    return all(rule.apply(x) == y for x, y in puzzle.train) and rule.apply(puzzle.test[0]) == puzzle.test[1]


def _wrong(rule: Rule, puzzle: Puzzle) -> tuple[tuple, Branch] | None:
    """The branch for a rule that gets some example wrong, and its plausibility key (smaller: likelier)."""
    outs = [rule.apply(x) for x, _ in puzzle.train]
    bad = next((i for i, (o, (_, y)) in enumerate(zip(outs, puzzle.train)) if o != y), None)
    if bad is None or all(o == x for o, (x, _) in zip(outs, puzzle.train)):
        return None  # fits every example (not refutable by one), or never applies
    expected = puzzle.train[bad][1]
    got, want = Counter(x for x in outs[bad] if x), Counter(x for x in expected if x)
    recoloured = sum(((got - want) + (want - got)).values())  # cells of the wrong colours: the least plausible
    missed = sum(a != b for a, b in zip(outs[bad], expected))
    branch = Branch(text=rule.name,
                    checks=tuple(f"example {i + 1} gives {show(outs[i])}" for i in range(bad)),
                    refutation=f"example {bad + 1} gives {show(outs[bad])} not {show(expected)}")
    return (-bad, recoloured, missed), branch


class Arc1DTask(GymTask):
    name = "arc_1d"
    gym_name = "arc_1d"

    def render(self, entry: dict) -> str:
        p = Puzzle.of(entry)
        return " | ".join([*(f"in {show(x)} out {show(y)}" for x, y in p.train), f"test {show(p.test[0])}"])

    def branches(self, entry: dict, rng: random.Random) -> tuple[Branch, list[Branch]]:
        p = Puzzle.of(entry)
        right = next((r for r in CATALOGUE if fits(r, p)), None)
        if right is None:
            raise NotCovered("no catalogue rule maps every example and the test")
        checks = tuple(f"example {i} gives {show(right.apply(x))}" for i, (x, _) in enumerate(p.train, 1))
        wrongs = sorted((w for w in (_wrong(r, p) for r in CATALOGUE) if w is not None), key=lambda w: w[0])
        return (Branch(right.name, checks, answer=show(right.apply(p.test[0]))),
                [b for _, b in wrongs[:MAX_WRONG]])

    def check(self, entry: dict, branch: str, claim: str, refutes: bool) -> bool | None:
        rule, m = RULES.get(branch), _CLAIM.fullmatch(claim)
        if rule is None or m is None:
            return False
        p = Puzzle.of(entry)
        i = int(m.group(1))
        if not 1 <= i <= len(p.train):
            return False
        x, y = p.train[i - 1]
        if rule.apply(x) != _row(m.group(2)):
            return False
        if m.group(3) is None:
            return not refutes
        return _row(m.group(3)) == y != _row(m.group(2))

    @classmethod
    def words(cls) -> tuple[str, ...]:
        names = tuple(sorted({w for r in CATALOGUE for w in re.findall(r"[A-Za-z_]+", r.name)}))
        return names + ("in", "out", "test", "example", "gives", "not")
