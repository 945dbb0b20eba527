"""Prompt vocabulary: which words ask for which camera move or ambient effect, and what cannot be done.

``understand(prompt, negative_prompt, cfg_scale)`` reads the prompt clause by clause
(``prompt.py``: phases, clauses, negation, intensity) and returns an :class:`Understanding`:

- **camera**: the moves of each phase (a family from :data:`CAMERA_FAMILIES`, with a direction
  and an intensity), or still, or the default gentle push-in when the prompt names no move;
- **effects**: snow, rain, fog, clouds, each with an intensity;
- **unsupported**: motions of the subject that the engine cannot draw ("a person waving"),
  said plainly in the log with what to use instead;
- **suppressed**: what the negative prompt named.

Words that can mean a camera move or a subject's own motion ("moves left", "rises", "circles",
"spins") count as a camera move only when their clause is about the camera (it names the camera,
the shot, the view, a drone, "we"…) or starts with the verb (an instruction: "slowly move left").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .prompt import HIGH, LOW, NORMAL, Clause, clauses, intensity_at, normalise
from .words import (
    CAMERA_CLAUSE,
    CARRIER_VERBS,
    DIRECTION_WORDS,
    DIRECTIONS,
    EFFECTS,
    FAMILY_OF,
    FILLER,
    NEGATIVE_FAMILIES,
    STILL,
    SUBJECT_MOTION,
    TRIGGER,
)

__all__ = [
    "CAMERA_FAMILIES",
    "DEFAULT_MOVE",
    "DEFAULT_MOVE_STRENGTH",
    "EFFECT_NAMES",
    "USE_INSTEAD",
    "Effect",
    "Move",
    "Understanding",
    "understand",
]

CAMERA_FAMILIES = (
    "push-in",
    "pull-out",
    "pan-left",
    "pan-right",
    "tilt-up",
    "tilt-down",
    "track-left",
    "track-right",
    "crane-up",
    "crane-down",
    "orbit-left",
    "orbit-right",
    "roll-cw",
    "roll-ccw",
    "drone-forward",
    "shake",
)
EFFECT_NAMES = ("snow", "rain", "fog", "clouds")
#: The move used when the prompt names none: a slow push-in at this fraction of "push-in".
DEFAULT_MOVE = "push-in"
DEFAULT_MOVE_STRENGTH = 0.4
USE_INSTEAD = (
    "paint the region with the motion brush (a dynamic mask and a trajectory), or use a learned engine (KINEMA_ENGINE)"
)


@dataclass(frozen=True)
class Move:
    """One camera move of one phase."""

    family: str
    phrase: str
    intensity: float = NORMAL
    span: tuple[int, int] = field(default=(0, 0), compare=False)  # where in its clause


@dataclass(frozen=True)
class Effect:
    name: str
    phrase: str
    intensity: float = NORMAL
    span: tuple[int, int] = field(default=(0, 0), compare=False)


@dataclass(frozen=True)
class Understanding:
    """What the prompt asks for, after the negative prompt and cfg_scale."""

    phases: tuple[tuple[Move, ...], ...]  # camera moves of each phase, in order; () when still or default
    effects: tuple[Effect, ...]
    strength: float  # cfg_scale: multiplies camera moves; effect opacity is its square root
    still: bool
    suppressed: tuple[str, ...] = field(default=())
    default_move: bool = False
    unsupported: tuple[str, ...] = ()  # clauses describing motion the engine cannot draw
    still_phrase: str = ""

    @property
    def camera(self) -> tuple[Move, ...]:
        """Every camera move of every phase (the default move when the prompt names none)."""
        if self.default_move:
            return (Move(DEFAULT_MOVE, "", DEFAULT_MOVE_STRENGTH),)
        return tuple(m for phase in self.phases for m in phase)

    def labels(self) -> set[str]:
        """The families this understanding contains (for the labelled prompt set)."""
        out = {m.family for phase in self.phases for m in phase}
        out |= {e.name for e in self.effects}
        if self.still or any(not phase for phase in self.phases):
            out.add("still")
        if self.default_move:
            out.add("default")
        if self.unsupported:
            out.add("unsupported")
        if len(self.phases) > 1:
            out.add("sequence")
        levels = [m.intensity for phase in self.phases for m in phase] + [e.intensity for e in self.effects]
        out |= {"low"} if LOW in levels else set()
        out |= {"high"} if HIGH in levels else set()
        return out

    def describe(self, *, camera: bool = True) -> str:
        """One log line, e.g. ``camera: push-in (from "zooms in"); effects: snow, heavy (from "heavy snow")``.

        With ``camera=False`` (motion brush) the camera part says the brush replaces camera moves.
        """
        if self.strength <= 0:
            return "camera: still (cfg_scale 0: prompt ignored); effects: none"
        named = [m for m in self.camera if not self.default_move]
        if not camera:
            cam = "none (the motion brush replaces camera moves"
            cam += "; ignored: " + ", ".join(f'"{m.phrase}"' for m in named) + ")" if named else ")"
        elif self.still:
            cam = "still" + (f' (from "{self.still_phrase}")' if self.still_phrase else "")
        elif self.default_move:
            cam = f"{DEFAULT_MOVE} (default, gentle: the prompt names no camera move)"
        else:
            cam = " then ".join(
                ", ".join(_said(m.family, m.phrase, m.intensity) for m in phase) for phase in self.phases
            )
        fx = ", ".join(_said(e.name, e.phrase, e.intensity) for e in self.effects) or "none"
        line = f"camera: {cam}; effects: {fx}; strength {self.strength:g}"
        if self.suppressed:
            line += "; suppressed by negative prompt: " + ", ".join(self.suppressed)
        return line

    def limits(self) -> list[str]:
        """Log lines for what was asked but cannot be drawn."""
        return [
            f'not animated: "{u}": this engine moves the camera and draws weather, it cannot make the '
            f"subject move by itself; {USE_INSTEAD}"
            for u in self.unsupported
        ]


def _said(name: str, phrase: str, intensity: float) -> str:
    level = {LOW: ", gentle", HIGH: ", strong"}.get(intensity, "")
    return f'{name}{level} (from "{phrase}")'


def understand(prompt: str, negative_prompt: str = "", cfg_scale: float = 0.5) -> Understanding:
    """Parse ``prompt`` (phases, clauses, negation, intensity) minus what ``negative_prompt`` names."""
    if not 0.0 <= cfg_scale <= 1.0:
        raise ValueError(f"cfg_scale must be in [0, 1], got {cfg_scale}")
    if cfg_scale == 0.0:
        return Understanding(phases=(), effects=(), strength=0.0, still=True)
    suppressed, named = _negative(negative_prompt)
    parts = clauses(prompt)
    by_phase: dict[int, list[Move]] = {k: [] for k in {c.phase for c in parts}}
    holds: set[int] = set()
    negated_camera = removed = False
    still_phrase = ""
    effects: dict[str, Effect] = {}
    unsupported: list[str] = []
    for clause in parts:
        moves, negated, hold_phrase, spans = _camera_in(clause)
        found = _effects_in(clause)
        moves, found = _with_intensity(clause, moves, found)
        negated_camera |= negated
        if hold_phrase:
            holds.add(clause.phase)
        if (hold_phrase or negated) and not still_phrase:
            still_phrase = hold_phrase or clause.text
        removed |= any(m.family in suppressed for m in moves)
        by_phase[clause.phase].extend(m for m in moves if m.family not in suppressed)
        for e in found:
            if e.name not in suppressed and e.name not in effects:
                effects[e.name] = e
        if not negated and _subject_motion(clause, spans, carried=bool(moves or found or hold_phrase)):
            unsupported.append(clause.text)
    # A phase that only holds still ("the camera holds still, then zooms in") stays as an empty phase.
    any_move = any(by_phase.values())
    phase_moves = tuple(tuple(_unique(ms)) for k, ms in sorted(by_phase.items()) if ms or (any_move and k in holds))
    if not any_move:
        phase_moves = ()
    still = not any_move and (bool(still_phrase) or negated_camera or removed or "all camera moves" in named)
    default = not any_move and not still
    if default and DEFAULT_MOVE in suppressed:
        default, still = False, True
    order = {n: k for k, n in enumerate(EFFECT_NAMES)}
    return Understanding(
        phases=phase_moves,
        effects=tuple(sorted(effects.values(), key=lambda e: order[e.name])),
        strength=float(cfg_scale),
        still=still,
        suppressed=tuple(sorted(named)),
        default_move=default,
        unsupported=tuple(unsupported),
        still_phrase=still_phrase,
    )


def _with_intensity(clause: Clause, moves: list[Move], found: list[Effect]) -> tuple[list[Move], list[Effect]]:
    """Moves and effects of one clause with their intensity (each intensity word goes to its nearest match)."""
    spans = [m.span for m in moves] + [e.span for e in found]

    def level(span: tuple[int, int]) -> float:
        return intensity_at(clause, *span, others=[o for o in spans if o != span])

    return ([replace(m, intensity=level(m.span)) for m in moves], [replace(e, intensity=level(e.span)) for e in found])


def _subject_motion(clause: Clause, spans: list[tuple[int, int]], *, carried: bool) -> bool:
    """Whether the clause describes the subject's own motion (not a camera verb, not an effect's verb)."""
    for m in SUBJECT_MOTION.finditer(clause.text):
        if clause.negated(m.start()) or any(s < m.end() and m.start() < e for s, e in spans):
            continue
        if carried and CARRIER_VERBS.fullmatch(m.group(0)):
            continue
        return True
    return False


def _unique(moves: list[Move]) -> list[Move]:
    """One move per family; a repeat that carries an intensity word replaces the plain one."""
    out: dict[str, Move] = {}
    for m in moves:
        if m.family not in out or (out[m.family].intensity == NORMAL and m.intensity != NORMAL):
            out[m.family] = m
    return list(out.values())


def _camera_in(clause: Clause) -> tuple[list[Move], bool, str, list[tuple[int, int]]]:
    """Camera moves of one clause, whether it negates a camera move, its still phrase, the spans used."""
    text = clause.text
    about_camera = bool(CAMERA_CLAUSE.search(text))
    head = FILLER.match(text)
    lead = head.end() if head else 0
    moves: list[Move] = []
    guessed: set[int] = set()
    negated = False
    taken: list[tuple[int, int]] = []
    for kind, pattern, needs_camera in TRIGGER:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            bare_negation = kind == "generic" and clause.negated(m.start())  # "no movement"
            if needs_camera and not about_camera and m.start() != lead and not bare_negation:
                continue
            taken.append((m.start(), m.end()))
            if clause.negated(m.start()):
                negated = True
                continue
            if kind == "generic":
                continue
            direction = _direction(text[m.end() :], text[: m.start()])
            table = FAMILY_OF[kind]
            family = table.get(direction, table.get(""))
            if kind == "aerial" and (moves or any(k != "aerial" for k, *_ in _kinds_in(text))):
                continue  # "a drone shot panning left": the other word says the move
            if family is None:
                continue
            phrase = text[m.start() : m.end()] + _direction_phrase(text[m.end() :])
            moves.append(Move(family, phrase.strip(), NORMAL, (m.start(), m.end())))
            if len(table) > 1 and (direction not in table or not direction):
                guessed.add(len(moves) - 1)
    # A family guessed for want of a direction ("crane shot") gives way to a stated one of its kind
    # ("descending": crane-down) in the same clause.
    stated = {moves[k].family.split("-")[0] for k in range(len(moves)) if k not in guessed}
    moves = [m for k, m in enumerate(moves) if k not in guessed or m.family.split("-")[0] not in stated]
    still = STILL.search(text)
    still_phrase = still.group(0) if still and not clause.negated(still.start()) else ""
    return moves, negated, still_phrase, taken


def _kinds_in(text: str) -> list[tuple[str, int]]:
    about_camera = bool(CAMERA_CLAUSE.search(text))
    head = FILLER.match(text)
    lead = head.end() if head else 0
    return [
        (kind, m.start())
        for kind, pattern, ctx in TRIGGER
        if kind not in ("generic", "move")
        for m in pattern.finditer(text)
        if not ctx or about_camera or m.start() == lead
    ]


def _direction(after: str, before: str) -> str:
    """The direction the words after a camera verb give ("" when none), else the word just before it."""
    window = " ".join(after.split()[:7])
    m = DIRECTIONS.search(window)
    if m:
        word = m.group(1) or m.group(2)
        return DIRECTION_WORDS.get(word.replace("-", " ") if "clockwise" in word else word, "")
    prev = before.split()[-1:] if before.strip() else []
    if prev and prev[0] in ("left", "right", "upward", "downward", "clockwise", "counterclockwise"):
        return DIRECTION_WORDS.get(prev[0], "")
    return ""


def _direction_phrase(after: str) -> str:
    window = " ".join(after.split()[:7])
    m = DIRECTIONS.search(window)
    return " " + window[: m.end()] if m and (m.group(1) or m.group(2)) else ""


def _effects_in(clause: Clause) -> list[Effect]:
    out = []
    for name, pattern in EFFECTS:
        for m in pattern.finditer(clause.text):
            if clause.negated(m.start()):
                continue
            out.append(Effect(name, m.group(0), NORMAL, (m.start(), m.end())))
            break
    return out


def _negative(text: str) -> tuple[set[str], set[str]]:
    """(families suppressed, names for the log) from the negative prompt: bare words count both ways."""
    suppressed: set[str] = set()
    norm = normalise(text)
    if re.search(r"\b(?:camera (?:movement|motion|moves?|moving)|moving camera|any movement|motion)\b(?! blur)", norm):
        suppressed |= set(CAMERA_FAMILIES)
        return suppressed | _negative_effects(norm), {"all camera moves"} | _negative_effects(norm)
    for clause in clauses(text):
        for kind, pattern, _ in TRIGGER:
            for m in pattern.finditer(clause.text):
                if kind == "generic" or kind in ("move", "rise", "sink", "approach", "recede"):
                    continue
                direction = _direction(clause.text[m.end() :], "")
                table = FAMILY_OF[kind]
                if direction and direction in table:
                    suppressed.add(table[direction])
                else:
                    suppressed |= set(NEGATIVE_FAMILIES.get(kind, (table.get("", ""),))) - {""}
    effects = _negative_effects(norm)
    return suppressed | effects, suppressed | effects


def _negative_effects(norm: str) -> set[str]:
    words = {
        "snow": r"snow\w*|blizzard|flakes?",
        "rain": r"rain\w*|drizzl\w*|downpour",
        "fog": r"fog\w*|mist\w*|haz[ey]|smog",
        "clouds": r"cloud\w*|overcast",
    }
    return {name for name, p in words.items() if re.search(rf"\b(?:{p})\b", norm)}
