"""Triangle geometry on integer vertices (reasoning-gym ``advanced_geometry``): orthocenter, incircle radius, angle.

All three of reasoning-gym 0.1.25's task types are covered; we compute exactly (fractions for rational
quantities, mpmath at 50 digits for the irrational ones) and format the answer as reasoning-gym does
(``(x, y)`` to 3 places, a radius to 3 places, an angle to 2 places with ``°``).

Problem line: the vertices and what is asked::

    A 3 -9 B -2 6 C 5 2 ask orthocenter        (or: ask incircle radius ; ask angle ABC)

Branches, by task type:

- orthocenter: a named point with exact coordinates, ``Try: centroid (10/3, -3)``; claims are about that
  point P: ``(P-A).(C-B) = 0`` (P is on the altitude from A; likewise ``(P-B).(A-C)``, ``(P-C).(B-A)``). The
  right branch checks two altitudes; a wrong one (centroid, circumcenter, nine-point center, a vertex, a
  side's midpoint, a foot of an altitude: up to 12) is refuted by an altitude it is not on,
  ``(P-B).(A-C) = 34/3``.
- incircle radius: a formula, ``Try: r = area / (s - a) = 5.123`` (a = BC, b = CA, c = AB, s the
  semi-perimeter); the right one is ``area / s``, wrong ones are the exradii, altitudes, circumradius,
  ``area / perimeter`` and ``2 area / s`` (9); checks ``a^2 = 65 , b^2 = 125 , c^2 = 250``, ``area = 65/2``,
  ``s = 13.401``, ``r * s = area``; a wrong one is refuted by ``r * s = 100.172 not area = 65/2``.
- angle ABC: a formula, ``Try: x = angle BAC = 63.43``; the right one is ``angle ABC``, wrong ones the other
  vertices' angles, its supplement, complement, half, reflex angle and its value in radians (up to 8);
  checks ``BA.BC = 7``, ``|BA|^2 = 74 , |BC|^2 = 25``, ``cos B = 0.1627``, ``cos x = cos B``; a wrong one is
  refuted by ``cos x = 0.4472 not cos B = 0.1627``.

A claim is ``Q = V`` (several joined by `` , ``), ``Q = Q'`` or ``Q = V not Q' = V'``; an integer or fraction
``V`` must equal ``Q`` exactly, a decimal one must be ``Q`` rounded to as many places.

reasoning-gym's partial credit: a wrong angle scores 0.05, a wrong orthocenter or radius 0.01 (its scorer
means to give 0.5 to a radius right at 2 places, but it reads the exact radius with ``float()``, which fails
on a sympy expression, so that happens only when the radius is rational).

Does NOT cover: task types other than these three (a problem of another type raises NotCovered).

Example::

    reasonpipe gen advanced_geometry --n 3 --searcher kbacktrack --k 2 --out /tmp/g.jsonl
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import mpmath

from reasonpipe.tasks.gym.base import Branch, GymTask, NotCovered

_MP = mpmath.MPContext()
_MP.dps = 50  # set once: a private context, never changed afterwards
_TOL = _MP.mpf(10) ** -35

Point = tuple[Fraction, Fraction]
Number = Fraction | mpmath.mpf
_NUM = r"-?\d{1,12}(?:/\d{1,12})?"
_DEC = r"-?\d{1,12}\.\d{1,12}"
_POINT_BRANCH = re.compile(rf"[a-z]+(?: [a-zA-Z]+)* \(({_NUM}), ({_NUM})\)")
_VALUE_BRANCH = re.compile(rf"([rx]) = (.+) = ({_DEC})")
TASK_TYPES = ("orthocenter", "incircle_radius", "angle_measure")
_ASK = {"orthocenter": "orthocenter", "incircle_radius": "incircle radius", "angle_measure": "angle ABC"}


@dataclass(frozen=True)
class Triangle:
    A: Point
    B: Point
    C: Point

    def vertex(self, name: str) -> Point:
        return {"A": self.A, "B": self.B, "C": self.C}[name]


# -- exact constructions -----------------------------------------------------------------------------------

def _sub(p: Point, q: Point) -> Point:
    return (p[0] - q[0], p[1] - q[1])


def _dot(p: Point, q: Point) -> Fraction:
    return p[0] * q[0] + p[1] * q[1]


def _mid(p: Point, q: Point) -> Point:
    return ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2)


def circumcenter(t: Triangle) -> Point:
    (ax, ay), (bx, by), (cx, cy) = t.A, t.B, t.C
    d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    a2, b2, c2 = ax * ax + ay * ay, bx * bx + by * by, cx * cx + cy * cy
    return ((a2 * (by - cy) + b2 * (cy - ay) + c2 * (ay - by)) / d,
            (a2 * (cx - bx) + b2 * (ax - cx) + c2 * (bx - ax)) / d)


def orthocenter(t: Triangle) -> Point:
    """H = A + B + C - 2 O (Euler)."""
    o = circumcenter(t)
    return (t.A[0] + t.B[0] + t.C[0] - 2 * o[0], t.A[1] + t.B[1] + t.C[1] - 2 * o[1])


def foot(p: Point, q: Point, r: Point) -> Point:
    """The foot of the perpendicular from p on the line qr."""
    d = _sub(r, q)
    k = _dot(_sub(p, q), d) / _dot(d, d)
    return (q[0] + k * d[0], q[1] + k * d[1])


# altitude from V: (P - V) . (the side opposite V, as a vector)
ALTITUDES = {"A": ("C", "B"), "B": ("A", "C"), "C": ("B", "A")}


def altitude_dot(t: Triangle, p: Point, v: str) -> Fraction:
    head, tail = ALTITUDES[v]
    return _dot(_sub(p, t.vertex(v)), _sub(t.vertex(head), t.vertex(tail)))


def altitude_name(v: str) -> str:
    head, tail = ALTITUDES[v]
    return f"(P-{v}).({head}-{tail})"


def point_candidates(t: Triangle) -> list[tuple[str, Point]]:
    o, h = circumcenter(t), orthocenter(t)
    out = [("centroid", ((t.A[0] + t.B[0] + t.C[0]) / 3, (t.A[1] + t.B[1] + t.C[1]) / 3)),
           ("circumcenter", o), ("ninepoint center", _mid(o, h))]
    out += [(f"vertex {v}", t.vertex(v)) for v in "ABC"]
    out += [(f"midpoint {p}{q}", _mid(t.vertex(p), t.vertex(q))) for p, q in ("BC", "CA", "AB")]
    out += [(f"foot {v}", foot(t.vertex(v), t.vertex(q), t.vertex(r))) for v, (q, r) in
            (("A", "BC"), ("B", "CA"), ("C", "AB"))]
    return out


# -- measured quantities ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Measures:
    """Side lengths squared (a = BC, b = CA, c = AB), area, semi-perimeter, the angle at B."""

    a2: Fraction
    b2: Fraction
    c2: Fraction
    area: Fraction
    s: mpmath.mpf
    ba_bc: Fraction
    cos_b: mpmath.mpf

    @property
    def sides(self) -> tuple[mpmath.mpf, mpmath.mpf, mpmath.mpf]:
        return tuple(_MP.sqrt(_MP.mpf(x.numerator) / x.denominator) for x in (self.a2, self.b2, self.c2))


def _mpf(x: Number) -> mpmath.mpf:
    return _MP.mpf(x.numerator) / x.denominator if isinstance(x, Fraction) else x


@lru_cache(maxsize=1024)
def measures(t: Triangle) -> Measures:
    a2, b2, c2 = (_dot(_sub(p, q), _sub(p, q)) for p, q in ((t.B, t.C), (t.C, t.A), (t.A, t.B)))
    ab, ac = _sub(t.B, t.A), _sub(t.C, t.A)
    area = abs(ab[0] * ac[1] - ab[1] * ac[0]) / 2
    s = sum(_MP.sqrt(_mpf(x)) for x in (a2, b2, c2)) / 2
    ba, bc = _sub(t.A, t.B), _sub(t.C, t.B)
    ba_bc = _dot(ba, bc)
    return Measures(a2, b2, c2, area, s, ba_bc, _mpf(ba_bc) / _MP.sqrt(_mpf(c2 * a2)))


def _angle_at(u: Point, v: Point) -> mpmath.mpf:
    """The angle between vectors u and v, in degrees."""
    c = _mpf(_dot(u, v)) / _MP.sqrt(_mpf(_dot(u, u) * _dot(v, v)))
    return _MP.degrees(_MP.acos(max(-1, min(1, c))))


def _radius_values(m: Measures) -> dict[str, mpmath.mpf]:
    area, (a, b, c) = _mpf(m.area), m.sides
    return {"area / s": area / m.s, "area / perimeter": area / (2 * m.s), "2 area / s": 2 * area / m.s,
            "a b c / (4 area)": a * b * c / (4 * area),
            "area / (s - a)": area / (m.s - a), "area / (s - b)": area / (m.s - b), "area / (s - c)": area / (m.s - c),
            "2 area / a": 2 * area / a, "2 area / b": 2 * area / b, "2 area / c": 2 * area / c}


def _angle_values(t: Triangle) -> dict[str, mpmath.mpf]:
    b = _angle_at(_sub(t.A, t.B), _sub(t.C, t.B))
    return {"angle ABC": b, "angle BAC": _angle_at(_sub(t.B, t.A), _sub(t.C, t.A)),
            "angle BCA": _angle_at(_sub(t.A, t.C), _sub(t.B, t.C)), "180 - angle ABC": 180 - b,
            "90 - angle ABC": 90 - b, "angle ABC / 2": b / 2, "360 - angle ABC": 360 - b,
            "radians ABC": _MP.radians(b)}


@lru_cache(maxsize=1024)
def formula_values(task_type: str, t: Triangle) -> dict[str, mpmath.mpf]:
    """Each candidate formula's value (incircle radius or angle ABC), the right one first."""
    return _radius_values(measures(t)) if task_type == "incircle_radius" else _angle_values(t)


RIGHT_FORMULA = {"incircle_radius": "area / s", "angle_measure": "angle ABC"}
PLACES = {"incircle_radius": 3, "angle_measure": 2}
LETTER = {"incircle_radius": "r", "angle_measure": "x"}


def fmt(x: Number, places: int) -> str:
    """``x`` rounded as reasoning-gym rounds (Python's float formatting)."""
    return f"{float(x):.{places}f}"


def frac(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def point_text(p: Point) -> str:
    return f"({frac(p[0])}, {frac(p[1])})"


# -- problems ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    task_type: str
    triangle: Triangle


def problem_of(entry: dict) -> Problem:
    """The task type and vertices of a reasoning-gym entry; NotCovered for a type this task does not cover."""
    meta = entry.get("metadata", {})
    task_type = meta.get("task_type")
    if task_type not in TASK_TYPES:
        raise NotCovered(f"advanced_geometry: task type {task_type!r} is not covered")
    try:
        pts = tuple((Fraction(int(meta[v][0])), Fraction(int(meta[v][1]))) for v in "ABC")
    except (KeyError, TypeError, ValueError, IndexError):
        raise NotCovered("advanced_geometry: the entry has no integer vertices A, B, C") from None
    return Problem(task_type, Triangle(*pts))


def answer_of(p: Problem) -> str:
    """Our answer, formatted as reasoning-gym formats its reference."""
    t = p.triangle
    if p.task_type == "orthocenter":
        h = orthocenter(t)
        return f"({fmt(h[0], 3)}, {fmt(h[1], 3)})"
    value = formula_values(p.task_type, t)[RIGHT_FORMULA[p.task_type]]
    return fmt(value, 3) if p.task_type == "incircle_radius" else fmt(value, 2) + "°"


def branch_value(p: Problem, branch: str) -> Point | mpmath.mpf | None:
    """The point (orthocenter) or value (formula branches) a branch stands for; None if it is not coherent."""
    if p.task_type == "orthocenter":
        m = _POINT_BRANCH.fullmatch(branch)
        x, y = (_fraction(m.group(1)), _fraction(m.group(2))) if m else (None, None)
        return None if x is None or y is None else (x, y)
    m = _VALUE_BRANCH.fullmatch(branch)
    if not m or m.group(1) != LETTER[p.task_type]:
        return None
    value = formula_values(p.task_type, p.triangle).get(m.group(2))
    return value if value is not None and fmt(value, PLACES[p.task_type]) == m.group(3) else None


def _fraction(text: str) -> Fraction | None:
    num, _, den = text.partition("/")
    if den and int(den) == 0:
        return None
    return Fraction(int(num), int(den) if den else 1)


# -- claims -----------------------------------------------------------------------------------------------

COMMON = ("a^2", "b^2", "c^2", "area", "s")
NAMES = {"orthocenter": COMMON + tuple(altitude_name(v) for v in "ABC"),
         "incircle_radius": COMMON + ("r * s",),
         "angle_measure": COMMON + ("BA.BC", "|BA|^2", "|BC|^2", "cos B", "cos x")}
DEFINING = {"incircle_radius": {"r * s", "area"}, "angle_measure": {"cos x", "cos B"}}


def quantity(p: Problem, value: Point | mpmath.mpf, name: str) -> Number:
    """The named quantity (one of ``NAMES[p.task_type]``) for this problem and branch value."""
    t, m = p.triangle, measures(p.triangle)
    if name.startswith("(P-"):
        return altitude_dot(t, value, name[3])
    return {"a^2": lambda: m.a2, "b^2": lambda: m.b2, "c^2": lambda: m.c2, "area": lambda: m.area,
            "s": lambda: m.s, "r * s": lambda: value * m.s, "BA.BC": lambda: m.ba_bc, "|BA|^2": lambda: m.c2,
            "|BC|^2": lambda: m.a2, "cos B": lambda: m.cos_b,
            "cos x": lambda: _MP.cos(_MP.radians(value))}[name]()


def _same(x: Number, y: Number) -> bool:
    if isinstance(x, Fraction) and isinstance(y, Fraction):
        return x == y
    return abs(_mpf(x) - _mpf(y)) < _TOL


@dataclass(frozen=True)
class Statement:
    """``name = text``: a quantity, and a number or another quantity's name."""

    name: str
    text: str


def parse_claim(p: Problem, claim: str) -> tuple[list[Statement], bool] | None:
    """The statements of a claim and whether it is a ``not`` contrast; None if it is not a claim we check."""
    left, sep, right = claim.partition(" not ")
    parts = [left, right] if sep else claim.split(" , ")
    out = []
    for part in parts:
        name, eq, text = part.partition(" = ")
        if not eq or name not in NAMES[p.task_type]:
            return None
        if not (text in NAMES[p.task_type] or re.fullmatch(_NUM, text) or re.fullmatch(_DEC, text)):
            return None
        out.append(Statement(name, text))
    return out, bool(sep)


def holds(p: Problem, value: Point | mpmath.mpf, st: Statement) -> bool:
    """Does ``st`` hold? An integer or fraction exactly, a decimal rounded to its places."""
    q = quantity(p, value, st.name)
    if st.text in NAMES[p.task_type]:
        return _same(q, quantity(p, value, st.text))
    if "." in st.text:
        return fmt(q, len(st.text.partition(".")[2])) == st.text
    v = _fraction(st.text)
    return v is not None and _same(q, v)


def evaluate(p: Problem, value: Point | mpmath.mpf, statements: list[Statement], contrast: bool,
             refutes: bool) -> bool:
    if not all(holds(p, value, st) for st in statements):
        return False
    if contrast:  # Q = V not Q' = V': both hold and the two differ
        a, b = (quantity(p, value, st.name) for st in statements)
        if _same(a, b):
            return False
        return not refutes or {st.name for st in statements} == DEFINING.get(p.task_type)
    if not refutes:
        return True
    # a plain claim refutes only as an altitude the point is not on
    return (p.task_type == "orthocenter" and len(statements) == 1 and statements[0].name.startswith("(P-")
            and statements[0].text not in NAMES[p.task_type] and quantity(p, value, statements[0].name) != 0)


# -- the task ---------------------------------------------------------------------------------------------

def _point_branches(p: Problem) -> tuple[Branch, list[Branch]]:
    t = p.triangle
    h = orthocenter(t)
    right = Branch(f"orthocenter {point_text(h)}", (f"{altitude_name('A')} = 0", f"{altitude_name('B')} = 0"),
                   answer=answer_of(p))
    wrongs, seen = [], {h}
    for name, pt in point_candidates(t):
        if pt in seen:
            continue
        seen.add(pt)
        v = next(v for v in "ABC" if altitude_dot(t, pt, v) != 0)
        wrongs.append(Branch(f"{name} {point_text(pt)}", (), f"{altitude_name(v)} = {frac(altitude_dot(t, pt, v))}"))
    return right, wrongs


def _value_branches(p: Problem) -> tuple[Branch, list[Branch]]:
    t, m = p.triangle, measures(p.triangle)
    places, right_name, letter = PLACES[p.task_type], RIGHT_FORMULA[p.task_type], LETTER[p.task_type]
    values = formula_values(p.task_type, t)
    if p.task_type == "incircle_radius":
        checks = (f"a^2 = {frac(m.a2)} , b^2 = {frac(m.b2)} , c^2 = {frac(m.c2)}", f"area = {frac(m.area)}",
                  f"s = {fmt(m.s, 3)}", "r * s = area")

        def reject(v: mpmath.mpf) -> str | None:
            return f"r * s = {fmt(v * m.s, 3)} not area = {frac(m.area)}"
    else:
        cos_b = fmt(m.cos_b, 4)
        checks = (f"BA.BC = {frac(m.ba_bc)}", f"|BA|^2 = {frac(m.c2)} , |BC|^2 = {frac(m.a2)}",
                  f"cos B = {cos_b}", "cos x = cos B")

        def reject(v: mpmath.mpf) -> str | None:
            cos_v = fmt(_MP.cos(_MP.radians(v)), 4)
            return None if cos_v == cos_b else f"cos x = {cos_v} not cos B = {cos_b}"

    right_value = fmt(values[right_name], places)
    right = Branch(f"{letter} = {right_name} = {right_value}", checks, answer=answer_of(p))
    wrongs, seen = [], {right_value}
    for name, v in values.items():
        shown = fmt(v, places)
        if shown in seen or _same(v, values[right_name]) or (r := reject(v)) is None:
            continue
        seen.add(shown)
        wrongs.append(Branch(f"{letter} = {name} = {shown}", (), r))
    return right, wrongs


class AdvancedGeometryTask(GymTask):
    name = "advanced_geometry"
    gym_name = "advanced_geometry"

    def render(self, entry: dict) -> str:
        p = problem_of(entry)
        t = p.triangle
        pts = " ".join(f"{v} {frac(t.vertex(v)[0])} {frac(t.vertex(v)[1])}" for v in "ABC")
        return f"{pts} ask {_ASK[p.task_type]}"

    def branches(self, entry: dict, rng: random.Random) -> tuple[Branch, list[Branch]]:
        p = problem_of(entry)
        return _point_branches(p) if p.task_type == "orthocenter" else _value_branches(p)

    def check(self, entry: dict, branch: str, claim: str, refutes: bool) -> bool | None:
        p = problem_of(entry)
        parsed = parse_claim(p, claim)
        if parsed is None:
            return None
        value = branch_value(p, branch)
        return value is not None and evaluate(p, value, *parsed, refutes)

    @classmethod
    def words(cls) -> tuple[str, ...]:
        return ("A", "B", "C", "P", "ask", "orthocenter", "incircle", "radius", "angle", "ABC", "BAC", "BCA",
                "centroid", "circumcenter", "ninepoint", "center", "vertex", "midpoint", "AB", "BC", "CA", "BA",
                "foot", "r", "x", "area", "s", "perimeter", "a", "b", "c", "not", "cos", "radians", "°")
