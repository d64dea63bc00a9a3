"""Intervals for the rates every report shows: Wilson's score interval for a proportion.

Every accuracy in a reasonpipe report is a count of successes out of a number of problems; the report shows it
with its 95% interval so that two numbers that differ by less than their noise are not read as a finding.
Wilson's interval (not the normal approximation) stays inside [0, 1] and is honest at 0 and n successes.

Example::

    python -c "from reasonpipe.stats import wilson, rate_text; print(wilson(42, 100), rate_text(42, 100))"
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for ``successes`` out of ``n`` (95% by default); (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in 0..{n}, got {successes}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """``successes`` out of ``n``, with its 95% Wilson interval."""

    successes: int
    n: int

    @property
    def value(self) -> float:
        return self.successes / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.successes, self.n)

    def text(self) -> str:
        return rate_text(self.successes, self.n)

    def above(self, other: Rate) -> bool:
        """Ahead of ``other`` by more than the noise: this 95% interval lies wholly above the other's (no overlap;
        the reports' conservative test)."""
        return self.interval[0] > other.interval[1]


def rate_text(successes: int, n: int) -> str:
    """``"42.0% [32.8, 51.8]"``: the rate and its 95% interval, in percent."""
    lo, hi = wilson(successes, n)
    return f"{100 * successes / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]" if n else "- (no problems)"
