"""Pareto front: the points no other point beats or equals in every objective while beating it in one."""

from __future__ import annotations

__all__ = ["pareto_front", "OBJECTIVES"]

# minimised: speed (II, latency) against every resource
OBJECTIVES = ("ii_cycles", "latency_cycles", "DSP", "LUT", "FF", "BRAM_18K", "URAM")


def dominates(a, b) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_front(rows: list, objectives=OBJECTIVES) -> list[int]:
    """Indices (in input order) of the non-dominated rows; identical rows are all kept.

    Sort by the objective tuple, then a row can only be dominated by one before it: O(n * front)."""
    vecs = [tuple(r[k] for k in objectives) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: vecs[i])
    front: list[int] = []
    for i in order:
        if not any(dominates(vecs[j], vecs[i]) for j in front):
            front.append(i)
    return sorted(front)
