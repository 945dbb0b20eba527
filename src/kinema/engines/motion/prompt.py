"""Prompt text into phases and clauses, with negation scopes and intensity words.

The vocabulary (``vocabulary.py``) finds camera moves and effects inside the clauses this
module produces. The rules, in order:

1. **Normalise**: lower case, curly quotes straightened, contractions spelled out
   ("doesn't" → "does not", "won't" → "will not").
2. **Phases**: "then", "and then", "after that", "afterwards", "followed by", "before",
   "next", "finally" split the prompt into phases played one after the other
   ("zoom in then pull back" is two phases).
3. **Clauses**: punctuation and the conjunctions "and", "while", "as", "but", "with", "where",
   "whilst", "whereas" split a phase into clauses ("or" does not: "does not zoom or pan" stays one
   negated clause).
4. **Negation**: "no", "not", "without", "never", "nor", "neither", "none" negate the rest of
   their clause ("the camera does not move, snow falls": only the first clause is negated).
5. **Intensity**: the intensity word nearest to a match in its clause (within
   :data:`INTENSITY_REACH` words) scales it: :data:`LOW` for "slow", "gentle", "light"…,
   :data:`HIGH` for "fast", "heavy", "thick"…
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "HIGH",
    "INTENSITY_REACH",
    "LOW",
    "NORMAL",
    "Clause",
    "clauses",
    "intensity_at",
    "normalise",
    "phases",
]

#: Intensity factors: how much a move travels (and so how fast it goes), how dense and fast an effect is.
LOW, NORMAL, HIGH = 0.5, 1.0, 1.6
#: An intensity word counts for a match at most this many words away in the same clause.
INTENSITY_REACH = 4

_CONTRACTIONS = (
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not"),
)
_PHASE_SPLIT = re.compile(
    r"\s*(?:,\s*)?\b(?:and then|then|after that|afterwards|followed by|before|next|"
    r"finally)\b\s*,?\s*"
)
_CLAUSE_SPLIT = re.compile(r"\s*(?:[,;:.!?()]+|\b(?:and|while|whilst|as|but|with|where|whereas)\b)\s*")
_NEGATOR = re.compile(r"\b(?:no|not|without|never|nor|neither|none)\b")
_LOW = re.compile(
    r"\b(?:slow(?:ly|er)?|gentl[ey]|gently|subtle|subtly|slight(?:ly)?|light(?:ly)?|soft(?:ly)?|"
    r"calm(?:ly)?|little|barely|faint(?:ly)?|sparse|lazy|lazily|delicate(?:ly)?|mild(?:ly)?|"
    r"leisurely|tiny|fine)\b"
)
_HIGH = re.compile(
    r"\b(?:fast(?:er)?|quick(?:ly)?|rapid(?:ly)?|swift(?:ly)?|heav(?:y|ily)|strong(?:ly)?|"
    r"dramatic(?:ally)?|intense(?:ly)?|thick|dense(?:ly)?|violent(?:ly)?|hard|wild(?:ly)?|whip|"
    r"torrential|driving|aggressive(?:ly)?|extreme(?:ly)?|massive|big|huge|crash|powerful)\b"
)


@dataclass(frozen=True)
class Clause:
    """One clause of one phase. ``negated_from`` is the offset where a negation starts, or None."""

    text: str
    phase: int
    negated_from: int | None

    def negated(self, at: int) -> bool:
        """Whether the word at character offset ``at`` is inside the clause's negation."""
        return self.negated_from is not None and at >= self.negated_from


def normalise(text: str) -> str:
    """Lower case, straight quotes, contractions spelled out, single spaces."""
    out = (text or "").lower().replace("\u2019", "'").replace("\u2018", "'")
    for pattern, repl in _CONTRACTIONS:
        out = pattern.sub(repl, out)
    return re.sub(r"\s+", " ", out).strip()


def phases(text: str) -> list[str]:
    """The normalised prompt cut at sequence words; empty phases dropped."""
    return [p for p in _PHASE_SPLIT.split(normalise(text)) if p.strip(" ,.;")]


def clauses(text: str) -> list[Clause]:
    """Every clause of every phase, in order."""
    out: list[Clause] = []
    for k, phase in enumerate(phases(text)):
        for part in _CLAUSE_SPLIT.split(phase):
            part = part.strip()
            if not part:
                continue
            neg = _NEGATOR.search(part)
            out.append(Clause(part, k, neg.start() if neg else None))
    return out


def intensity_at(clause: Clause, start: int, end: int, others: Sequence[tuple[int, int]] = ()) -> float:
    """The intensity factor for a match spanning ``[start, end)`` of ``clause.text``.

    An intensity word belongs to the match nearest to it: it does not count for this match when one
    of ``others`` (the clause's other matches) is nearer ("slowly dollies through the misty forest":
    "slowly" is the dolly's, not the mist's).
    """
    best: tuple[int, float] | None = None
    for pattern, factor in ((_LOW, LOW), (_HIGH, HIGH)):
        for m in pattern.finditer(clause.text):
            words = _gap(clause.text, (m.start(), m.end()), (start, end))
            if words > INTENSITY_REACH or any(_gap(clause.text, (m.start(), m.end()), o) < words for o in others):
                continue
            if best is None or words < best[0]:
                best = (words, factor)
    return best[1] if best else NORMAL


def _gap(text: str, a: tuple[int, int], b: tuple[int, int]) -> int:
    """Words between two spans of ``text`` (0 when they touch or overlap)."""
    if a[1] <= b[0]:
        return len(text[a[1] : b[0]].split())
    if b[1] <= a[0]:
        return len(text[b[1] : a[0]].split())
    return 0
