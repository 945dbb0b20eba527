"""Precision and recall of the motion engine's prompt understanding, per family, on the labelled prompt set.

    .venv/bin/python benchmarks/prompt_set.py [--set tests/data/prompts.tsv] [--misses]

Each line of the set is ``prompt<TAB>negative prompt ("-" for the default)<TAB>expected labels``. A label is a
camera family, "still", "default", an effect, "unsupported", "sequence", "low" or "high" (see the file's
header). For every label: precision = right / predicted, recall = right / expected, over all prompts.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kinema.engines.motion.vocabulary import understand

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "prompts.tsv"
DEFAULT_NEGATIVE = "blur, distort, and low quality"


@dataclass(frozen=True)
class Labelled:
    prompt: str
    negative: str
    expected: frozenset[str]


@dataclass(frozen=True)
class Score:
    label: str
    support: int  # prompts expected to carry the label
    predicted: int
    right: int

    @property
    def precision(self) -> float:
        return self.right / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.support if self.support else 1.0


def load(path: Path = DEFAULT_SET) -> list[Labelled]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        prompt, negative, labels = line.split("\t")
        rows.append(Labelled(prompt, DEFAULT_NEGATIVE if negative == "-" else negative, frozenset(labels.split())))
    return rows


def predict(row: Labelled) -> frozenset[str]:
    return frozenset(understand(row.prompt, row.negative, 0.5).labels())


def score(rows: list[Labelled]) -> list[Score]:
    support, predicted, right = Counter[str](), Counter[str](), Counter[str]()
    for row in rows:
        got = predict(row)
        support.update(row.expected)
        predicted.update(got)
        right.update(row.expected & got)
    labels = sorted(set(support) | set(predicted))
    return [Score(label, support[label], predicted[label], right[label]) for label in labels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET)
    parser.add_argument("--misses", action="store_true", help="also list the prompts whose labels differ")
    args = parser.parse_args()
    rows = load(args.set)
    exact = sum(predict(r) == r.expected for r in rows)
    print(f"{len(rows)} prompts; all labels right on {exact} ({exact / len(rows):.1%})")
    print(f"{'label':15} {'support':>7} {'precision':>9} {'recall':>7}")
    for s in score(rows):
        print(f"{s.label:15} {s.support:7d} {s.precision:9.3f} {s.recall:7.3f}")
    if args.misses:
        for r in rows:
            got = predict(r)
            if got != r.expected:
                print(f"MISS {r.prompt!r} (negative {r.negative!r}): expected {sorted(r.expected)}, got {sorted(got)}")


if __name__ == "__main__":
    main()
