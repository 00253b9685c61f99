"""Arithmetic word problems with integer answers, generated from a fixed seed."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["generate_arithmetic"]

_NAMES = [
    "Maya",
    "Liam",
    "Noor",
    "Kenji",
    "Ana",
    "Tomas",
    "Ife",
    "Priya",
    "Oskar",
    "Lena",
    "Ravi",
    "Sofia",
    "Mateo",
    "Aiko",
    "Jonas",
    "Zara",
    "Emeka",
    "Chloe",
    "Hugo",
    "Mina",
]
_THINGS = [
    "marbles",
    "stickers",
    "apples",
    "books",
    "pencils",
    "stamps",
    "shells",
    "cards",
    "cookies",
    "coins",
    "beads",
    "plums",
]
_CONTAINERS = ["bags", "boxes", "jars", "packs", "crates", "baskets"]

Raw = tuple[str, int]


def _buy_give(rng: random.Random) -> Raw:
    who, what, box = rng.choice(_NAMES), rng.choice(_THINGS), rng.choice(_CONTAINERS)
    a, k, m = rng.randint(5, 80), rng.randint(2, 9), rng.randint(3, 15)
    g = rng.randint(1, a + k * m - 1)
    q = (
        f"{who} has {a} {what}. {who} buys {k} {box} with {m} {what} in each and then gives "
        f"{g} {what} away. How many {what} does {who} have now?"
    )
    return q, a + k * m - g


def _share(rng: random.Random) -> Raw:
    who, what = rng.choice(_NAMES), rng.choice(_THINGS)
    friends, each, left = rng.randint(2, 9), rng.randint(2, 20), rng.randint(0, 9)
    total = friends * each + left
    q = (
        f"{who} shares {total} {what} equally among {friends} friends and keeps the "
        f"{left} left over. How many {what} does each friend get?"
    )
    return q, each


def _price(rng: random.Random) -> Raw:
    who = rng.choice(_NAMES)
    n1, p1, n2, p2 = rng.randint(2, 12), rng.randint(2, 25), rng.randint(2, 12), rng.randint(2, 25)
    paid = ((n1 * p1 + n2 * p2) // 10 + 1 + rng.randint(0, 5)) * 10
    q = (
        f"{who} buys {n1} notebooks at {p1} dollars each and {n2} pens at {p2} dollars each, "
        f"and pays with {paid} dollars. How many dollars of change does {who} get?"
    )
    return q, paid - n1 * p1 - n2 * p2


def _speed(rng: random.Random) -> Raw:
    who = rng.choice(_NAMES)
    v, h1, h2 = rng.randint(20, 90), rng.randint(1, 6), rng.randint(1, 6)
    q = (
        f"{who} drives at {v} kilometers per hour for {h1} hours, stops for lunch, then drives "
        f"{h2} more hours at the same speed. How many kilometers does {who} drive in total?"
    )
    return q, v * (h1 + h2)


def _rows(rng: random.Random) -> Raw:
    r, c, missing = rng.randint(3, 25), rng.randint(3, 25), rng.randint(1, 9)
    q = (
        f"A hall has {r} rows of {c} chairs, but {missing} chairs are broken. "
        f"How many chairs can be used?"
    )
    return q, r * c - missing


def _age(rng: random.Random) -> Raw:
    a, b = rng.sample(_NAMES, 2)
    age, diff, years = rng.randint(5, 40), rng.randint(2, 30), rng.randint(2, 20)
    q = (
        f"{a} is {age} years old and {b} is {diff} years older than {a}. "
        f"How old will {b} be in {years} years?"
    )
    return q, age + diff + years


def _savings(rng: random.Random) -> Raw:
    who = rng.choice(_NAMES)
    start, weekly, weeks, spent = (
        rng.randint(0, 60),
        rng.randint(3, 30),
        rng.randint(2, 15),
        rng.randint(1, 40),
    )
    q = (
        f"{who} has {start} dollars, saves {weekly} dollars every week for {weeks} weeks and "
        f"spends {spent} dollars on a gift. How many dollars does {who} have left?"
    )
    return q, start + weekly * weeks - spent


_GENERATORS: list[Callable[[random.Random], Raw]] = [
    _buy_give,
    _share,
    _price,
    _speed,
    _rows,
    _age,
    _savings,
]


def generate_arithmetic(n: int, seed: int) -> list[tuple[str, int]]:
    """``n`` unique (one-line problem, integer answer) pairs."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[tuple[str, int]] = []
    while len(out) < n:
        q, a = rng.choice(_GENERATORS)(rng)
        if q in seen or a < 0:
            continue
        seen.add(q)
        out.append((q, a))
    return out
