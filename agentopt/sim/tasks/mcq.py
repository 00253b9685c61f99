"""Multiple-choice questions with known answers, generated from a fixed seed.

Every question is computed (primes, fractions, unit conversions, calendar
arithmetic, number bases) or drawn from a short list of public facts, so the
answer key is right by construction. Each stem is one line and unique.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from fractions import Fraction

__all__ = ["generate_mcq"]

Raw = tuple[str, str, list[str]]  # stem, right answer, three wrong answers

_CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Portugal": "Lisbon",
    "Japan": "Tokyo",
    "Canada": "Ottawa",
    "Australia": "Canberra",
    "Brazil": "Brasilia",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "India": "New Delhi",
    "Norway": "Oslo",
    "Sweden": "Stockholm",
    "Finland": "Helsinki",
    "Poland": "Warsaw",
    "Austria": "Vienna",
    "Greece": "Athens",
    "Turkey": "Ankara",
    "Peru": "Lima",
    "Chile": "Santiago",
    "Argentina": "Buenos Aires",
    "Mexico": "Mexico City",
    "Ireland": "Dublin",
    "Hungary": "Budapest",
    "Denmark": "Copenhagen",
    "Belgium": "Brussels",
    "Netherlands": "Amsterdam",
    "Switzerland": "Bern",
    "Thailand": "Bangkok",
    "Vietnam": "Hanoi",
    "South Korea": "Seoul",
    "Morocco": "Rabat",
    "Nigeria": "Abuja",
    "Ghana": "Accra",
    "Colombia": "Bogota",
    "Cuba": "Havana",
}
_SYMBOLS = {
    "hydrogen": "H",
    "helium": "He",
    "carbon": "C",
    "nitrogen": "N",
    "oxygen": "O",
    "sodium": "Na",
    "magnesium": "Mg",
    "aluminium": "Al",
    "silicon": "Si",
    "sulfur": "S",
    "chlorine": "Cl",
    "potassium": "K",
    "calcium": "Ca",
    "iron": "Fe",
    "copper": "Cu",
    "zinc": "Zn",
    "silver": "Ag",
    "tin": "Sn",
    "gold": "Au",
    "mercury": "Hg",
    "lead": "Pb",
    "uranium": "U",
    "neon": "Ne",
    "argon": "Ar",
    "phosphorus": "P",
    "fluorine": "F",
    "lithium": "Li",
    "nickel": "Ni",
    "platinum": "Pt",
    "iodine": "I",
}
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1))


def _distinct(rng: random.Random, right: int, spread: int, k: int = 3) -> list[str]:
    wrong: set[int] = set()
    while len(wrong) < k:
        w = right + rng.randint(-spread, spread)
        if w != right and w >= 0:
            wrong.add(w)
    return [str(w) for w in sorted(wrong)]


def _prime(rng: random.Random) -> Raw:
    p = rng.choice([n for n in range(11, 400) if _is_prime(n)])
    comps: set[int] = set()
    while len(comps) < 3:
        c = rng.randrange(9, 400, 2)
        if not _is_prime(c) and c % 5:
            comps.add(c)
    nums = sorted([p, *comps])
    return (
        f"Which of the numbers {', '.join(map(str, nums))} is prime?",
        str(p),
        [str(c) for c in sorted(comps)],
    )


def _capital(rng: random.Random) -> Raw:
    country = rng.choice(sorted(_CAPITALS))
    right = _CAPITALS[country]
    others = rng.sample(sorted(set(_CAPITALS.values()) - {right}), 3)
    style = rng.choice(["What is the capital of {c}?", "Which city is the capital of {c}?"])
    return style.format(c=country), right, others


def _symbol(rng: random.Random) -> Raw:
    element = rng.choice(sorted(_SYMBOLS))
    right = _SYMBOLS[element]
    others = rng.sample(sorted(set(_SYMBOLS.values()) - {right}), 3)
    style = rng.choice(
        ["What is the chemical symbol of {e}?", "Which symbol denotes the element {e}?"]
    )
    return style.format(e=element), right, others


def _fraction(rng: random.Random) -> Raw:
    fracs: set[Fraction] = set()
    while len(fracs) < 4:
        fracs.add(Fraction(rng.randint(1, 12), rng.randint(2, 13)))
    shown = sorted(fracs, key=lambda _: rng.random())
    big = max(shown)
    text = ", ".join(f"{f.numerator}/{f.denominator}" for f in shown)
    return (
        f"Which of the fractions {text} is the largest?",
        f"{big.numerator}/{big.denominator}",
        [f"{f.numerator}/{f.denominator}" for f in shown if f != big],
    )


def _modulo(rng: random.Random) -> Raw:
    a, b = rng.randint(50, 999), rng.randint(3, 19)
    right = a % b
    wrong = sorted({(right + d) % b for d in rng.sample(range(1, b), min(3, b - 1))})
    return f"What is the remainder when {a} is divided by {b}?", str(right), [str(w) for w in wrong]


def _month(rng: random.Random) -> Raw:
    start, k = rng.randrange(12), rng.randint(2, 30)
    right = _MONTHS[(start + k) % 12]
    others = rng.sample([m for m in _MONTHS if m != right], 3)
    return f"Which month comes {k} months after {_MONTHS[start]}?", right, others


def _weekday(rng: random.Random) -> Raw:
    start, k = rng.randrange(7), rng.randint(3, 100)
    right = _DAYS[(start + k) % 7]
    others = rng.sample([d for d in _DAYS if d != right], 3)
    return f"If today is {_DAYS[start]}, what day of the week is it in {k} days?", right, others


def _binary(rng: random.Random) -> Raw:
    n = rng.randint(5, 255)
    right = bin(n)[2:]
    wrong: set[str] = set()
    while len(wrong) < 3:
        w = bin(n ^ (1 << rng.randrange(max(1, n.bit_length()))))[2:]
        if w != right:
            wrong.add(w)
    return f"What is the decimal number {n} written in binary?", right, sorted(wrong)


def _convert(rng: random.Random) -> Raw:
    kind = rng.randrange(3)
    if kind == 0:
        km = rng.randint(2, 90)
        return (
            f"How many meters are there in {km} kilometers?",
            str(km * 1000),
            _distinct(rng, km * 1000, km * 300),
        )
    if kind == 1:
        h = rng.randint(2, 48)
        return f"How many minutes are there in {h} hours?", str(h * 60), _distinct(rng, h * 60, 90)
    w = rng.randint(2, 60)
    return f"How many days are there in {w} weeks?", str(w * 7), _distinct(rng, w * 7, 12)


def _square(rng: random.Random) -> Raw:
    n = rng.randint(11, 99)
    return f"What is the square root of {n * n}?", str(n), _distinct(rng, n, 6)


_GENERATORS: list[Callable[[random.Random], Raw]] = [
    _prime,
    _capital,
    _symbol,
    _fraction,
    _modulo,
    _month,
    _weekday,
    _binary,
    _convert,
    _square,
]


def generate_mcq(n: int, seed: int) -> list[tuple[str, list[str], int]]:
    """``n`` unique (stem, four choices, index of the right choice) triples."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[tuple[str, list[str], int]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > n * 50:
            raise RuntimeError("mcq generator cannot produce enough unique questions")
        stem, right, wrong = rng.choice(_GENERATORS)(rng)
        if stem in seen or len(set(wrong) | {right}) != 4:
            continue
        seen.add(stem)
        choices = [right, *wrong]
        rng.shuffle(choices)
        out.append((stem, choices, choices.index(right)))
    return out
