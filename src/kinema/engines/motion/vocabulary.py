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
from dataclasses import dataclass, field

from .prompt import HIGH, LOW, NORMAL, Clause, clauses, intensity_at, normalise

__all__ = ["CAMERA_FAMILIES", "EFFECT_NAMES", "Move", "Effect", "Understanding", "understand", "DEFAULT_MOVE",
           "DEFAULT_MOVE_STRENGTH", "USE_INSTEAD"]

CAMERA_FAMILIES = (
    "push-in", "pull-out", "pan-left", "pan-right", "tilt-up", "tilt-down", "track-left", "track-right",
    "crane-up", "crane-down", "orbit-left", "orbit-right", "roll-cw", "roll-ccw", "drone-forward", "shake",
)
EFFECT_NAMES = ("snow", "rain", "fog", "clouds")
#: The move used when the prompt names none: a slow push-in at this fraction of "push-in".
DEFAULT_MOVE = "push-in"
DEFAULT_MOVE_STRENGTH = 0.4
USE_INSTEAD = ("paint the region with the motion brush (a dynamic mask and a trajectory), "
               "or use a learned engine (KINEMA_ENGINE)")


@dataclass(frozen=True)
class Move:
    """One camera move of one phase."""

    family: str
    phrase: str
    intensity: float = NORMAL


@dataclass(frozen=True)
class Effect:
    name: str
    phrase: str
    intensity: float = NORMAL


# --- camera words ------------------------------------------------------------------------------
# (kind, pattern, needs a camera clause). The kind and the direction words after it give the family.
_TRIGGERS: tuple[tuple[str, str, bool], ...] = (
    ("shake", r"hand[ -]?held|shaky[ -]?cam\w*|camera shake|shaking camera|(?:shak(?:y|e|es|ing)|jitter\w*|"
              r"wobbl\w*|unsteady|trembl\w*)", False),
    ("push", r"push(?:es|ed|ing)?[ -](?:in|into|forward|toward|towards|closer)\b|push[ -]?in", False),
    ("pull", r"pull(?:s|ed|ing)?[ -](?:out|back|away)|pull[ -]?back|pullback|pull[ -]?out", False),
    ("zoom", r"(?:crash )?zoom(?:s|ed|ing)?", False),
    ("dolly", r"doll(?:y|ies|ied|ying)", False),
    ("truck", r"truck(?:s|ed|ing)?(?= (?:to the )?(?:left|right))", False),
    ("track", r"tracking|track(?:s|ed)?(?= (?:to the )?(?:left|right))|follow(?:s|ed|ing)?(?: shot| cam\w*)?", True),
    ("pan", r"(?<!\bfrying )(?<!\ba )(?<!\bthe )(?<!\bcooking )pan(?:s|ned|ning)?", False),
    ("tilt", r"tilt(?:s|ed|ing)?", False),
    ("crane", r"(?:crane|boom|jib|pedestal)(?:s|ed|ing)?(?= (?:shot|up|down|upward|downward|move))|"
              r"(?:crane|jib|boom) shot|(?:crane|pedestal)(?:s|ed|ing)? (?:up|down)", False),
    ("orbit", r"orbit(?:s|ed|ing)?|360[ -]degree|arc shot", False),
    ("circle", r"circl(?:e|es|ed|ing)|arc(?:s|ing)? (?:around|round)|revolv(?:e|es|ing)|go(?:es)? around|"
               r"moves? around|moving around", True),
    ("roll", r"dutch (?:angle|tilt)|barrel roll|roll(?:s|ed|ing)?|rotat(?:e|es|ed|ing|ion)|spin(?:s|ning)?|"
             r"twist(?:s|ing)?|turn(?:s|ed|ing)?(?= (?:counter|anti|clockwise))", True),
    ("fly", r"fly[ -]?(?:through|over|by)|flyover|flythrough|fl(?:y|ies|ying|ew)|soar(?:s|ing)?|swoop(?:s|ing)?", True),
    ("aerial", r"drone|aerial|fpv|bird'?s[ -]eye|birds[ -]eye", False),
    ("rise", r"ris(?:e|es|ing)|rose|ascend(?:s|ing)?|climb(?:s|ing)?|lift(?:s|ing)? (?:up|off)|elevat\w+|"
             r"(?:go(?:es)?|going|mov(?:e|es|ing)|float(?:s|ing)?|drift(?:s|ing)?) up(?:ward)?", True),
    ("sink", r"descend(?:s|ing)?|lower(?:s|ing)?|sink(?:s|ing)?|(?:go(?:es)?|going|mov(?:e|es|ing)|drop(?:s|ping)?) "
             r"down(?:ward)?", True),
    ("approach", r"approach(?:es|ed|ing)?|advanc(?:e|es|ing)|clos(?:e|es|ing) in|(?:get|gets|come|comes|coming) "
                 r"closer", True),
    ("recede", r"reced(?:e|es|ing)|retreat(?:s|ing)?|back(?:s|ing)? (?:away|up|out)", True),
    ("move", r"mov(?:e|es|ed|ing)|glid(?:e|es|ing)|slid(?:e|es|ing)|travel(?:s|ling|ing|led)?|drift(?:s|ing)?|"
             r"go(?:es)?|going|head(?:s|ing)?|sweep(?:s|ing)?|push(?:es|ing)?|strafe\w*", True),
    ("generic", r"movement|motion", True),
)
_TRIGGER = [(kind, re.compile(rf"\b(?:{pattern})\b"), ctx) for kind, pattern, ctx in _TRIGGERS]
_STILL = re.compile(r"\b(?:(?:static|still|fixed|locked(?:[ -]off)?|stationary|steady|motionless|unmoving|frozen|"
                    r"immobile)(?: \w+)? (?:camera|shot|frame|view|angle)|camera (?:is |stays |remains |holds |"
                    r"keeps )?(?:\w+ly )?(?:still|static|fixed|stationary|steady|motionless|put|locked)|tripod|locked[ -]off|"
                    r"holds? (?:still|steady|the shot|the frame)|stays? (?:still|put))\b")
_CAMERA_CLAUSE = re.compile(r"\b(?:camera|cam|shot|view|lens|we|us|pov|drone|aerial|fpv|viewer|footage|picture|"
                            r"image|frame|scene|viewpoint|perspective|video|filmed|shooting)\b")
_FILLER = re.compile(r"^(?:(?:slow(?:ly)?|gentl[ey]|gently|quick(?:ly)?|fast|smooth(?:ly)?|steadily|then|and|"
                     r"very|a|the|subtle|subtly|slight(?:ly)?|rapid(?:ly)?|swift(?:ly)?|now|first|camera|lets?|"
                     r"please|cinematic|dramatic(?:ally)?|we)\s+)*")
_DIRECTIONS = re.compile(
    r"from (?:the )?(?:left|right|top|bottom|up|down) to (?:the )?(left|right|top|bottom|up|down)|"
    r"(counter[ -]?clockwise|anti[ -]?clockwise|clockwise|leftwards?|rightwards?|upwards?|downwards?|"
    r"left|right|up|down|inwards?|in|into|closer|forwards?|toward|towards|outwards?|out|backwards?|back|away|"
    r"top|bottom|overhead|across|over|through)\b")
_DIRECTION_WORDS = {
    "left": "left", "leftward": "left", "leftwards": "left", "right": "right", "rightward": "right",
    "rightwards": "right", "up": "up", "upward": "up", "upwards": "up", "top": "up", "down": "down",
    "downward": "down", "downwards": "down", "bottom": "down", "in": "in", "into": "in", "inward": "in",
    "inwards": "in", "closer": "in", "forward": "in", "forwards": "in", "toward": "in", "towards": "in",
    "out": "out", "outward": "out", "outwards": "out", "back": "out", "backward": "out", "backwards": "out",
    "away": "out", "clockwise": "cw", "counterclockwise": "ccw", "counter-clockwise": "ccw",
    "counter clockwise": "ccw", "anticlockwise": "ccw", "anti-clockwise": "ccw", "anti clockwise": "ccw",
    "overhead": "in", "across": "", "over": "in", "through": "in",
}
# kind -> {direction: family}; "" is the family when no direction word follows.
_FAMILY_OF: dict[str, dict[str, str]] = {
    "push": {"": "push-in"}, "pull": {"": "pull-out"}, "approach": {"": "push-in"}, "recede": {"": "pull-out"},
    "zoom": {"": "push-in", "in": "push-in", "out": "pull-out"},
    "dolly": {"": "push-in", "in": "push-in", "out": "pull-out", "left": "track-left", "right": "track-right"},
    "truck": {"": "track-right", "left": "track-left", "right": "track-right"},
    "track": {"": "track-right", "left": "track-left", "right": "track-right", "in": "push-in", "out": "pull-out"},
    "pan": {"": "pan-right", "left": "pan-left", "right": "pan-right", "up": "tilt-up", "down": "tilt-down"},
    "tilt": {"": "tilt-up", "up": "tilt-up", "down": "tilt-down"},
    "crane": {"": "crane-up", "up": "crane-up", "down": "crane-down"},
    "rise": {"": "crane-up"}, "sink": {"": "crane-down"},
    # Seen from above with the camera south of the subject, counter-clockwise carries the camera to its right.
    "orbit": {"": "orbit-right", "left": "orbit-left", "right": "orbit-right", "cw": "orbit-left", "ccw": "orbit-right"},
    "roll": {"": "roll-cw", "cw": "roll-cw", "ccw": "roll-ccw", "left": "roll-ccw", "right": "roll-cw"},
    "fly": {"": "drone-forward", "in": "drone-forward", "out": "pull-out", "left": "track-left",
            "right": "track-right", "up": "crane-up", "down": "crane-down"},
    "aerial": {"": "drone-forward"},
    "move": {"in": "push-in", "out": "pull-out", "left": "track-left", "right": "track-right", "up": "crane-up",
             "down": "crane-down"},
    "shake": {"": "shake"},
}
_FAMILY_OF["circle"] = _FAMILY_OF["orbit"]
#: Families a bare word names in the negative prompt ("zoom" is both ways, "pan" both sides...).
_NEGATIVE_FAMILIES = {
    "zoom": ("push-in", "pull-out"), "dolly": ("push-in", "pull-out"), "pan": ("pan-left", "pan-right"),
    "tilt": ("tilt-up", "tilt-down"), "track": ("track-left", "track-right"), "truck": ("track-left", "track-right"),
    "crane": ("crane-up", "crane-down"), "orbit": ("orbit-left", "orbit-right"),
    "circle": ("orbit-left", "orbit-right"), "roll": ("roll-cw", "roll-ccw"), "fly": ("drone-forward",),
    "aerial": ("drone-forward",), "shake": ("shake",),
}

# --- effect words -------------------------------------------------------------------------------
_FALLING = r"(?:fall\w*|drift\w*|swirl\w*|com(?:e|es|ing) down|blow\w*|pour\w*|flutter\w*|float\w*|descend\w*|whirl\w*)"
_EFFECTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("snow", re.compile(r"\b(?:snow(?:fall|flakes?|storm|ing|s)|blizzard\w*|flurr(?:y|ies)|sleet|flakes?)\b|"
                        rf"\bsnow(?![ -](?:capped|covered|clad|topped|peaked|white|man|men|board\w*|mobile|ball\w*|"
                        rf"shoe\w*|leopard|drop\w*|globe|field\w*|line|bank\w*|pack|plough|plow))\b(?=[^,;]*\b{_FALLING})|"
                        r"\b(?:heavy|light|gentle|soft|thick|fine|dense|falling|fresh) snow\b|^snow$")),
    ("rain", re.compile(r"\b(?:rain(?:s|ing|fall|drops?|storm|y)?|drizzl\w*|downpour\w*|thunderstorm\w*|showers?)\b"
                        r"(?![ -](?:soaked|slicked|wet|coat|boots?|jacket|forest|bow))")),
    ("fog", re.compile(r"\b(?:fog(?:gy|s)?|mist(?:y|s)?|haz(?:e|y)|smog)\b")),
    ("clouds", re.compile(r"\b(?:cloud(?:s|y)?|overcast)\b(?! of)")),
)
#: Verbs that belong to an effect or a camera clause (not the subject's own motion).
_CARRIER_VERBS = re.compile(rf"\b(?:{_FALLING}|roll\w*|mov(?:e|es|ing)|rises?|rising|spread\w*|billow\w*|"
                            r"pass(?:es|ing)?|gather\w*|hang\w*|cover\w*|fill\w*|glid\w*|flow\w*)\b")
# --- what the engine cannot draw: the subject's own motion --------------------------------------
_SUBJECT_MOTION = re.compile(
    r"\b(?:waving|waves? (?:her|his|their|its|at|to|hello|goodbye)|walk(?:s|ing)?|run(?:s|ning)?|ran|danc(?:e|es|ed|ing)|"
    r"talk(?:s|ing)?|speak(?:s|ing)?|smil(?:e|es|ing)|laugh\w*|blink\w*|nod(?:s|ding)?|jump\w*|bloom\w*|"
    r"blossom\w*|grow(?:s|ing)?|open(?:s|ing)|sway\w*|rustl\w*|flutter\w*|flicker\w*|flow(?:s|ing)?|"
    r"crash(?:es|ing)?|rippl\w*|splash\w*|driv(?:e|es|ing)|sail(?:s|ing)?|swim\w*|fl(?:y|ies|ying)|gallop\w*|"
    r"eat(?:s|ing)|drink\w*|sing(?:s|ing)|play(?:s|ing)|wag\w*|breath\w*|cr(?:y|ies|ying)|hug\w*|kiss\w*|"
    r"ris(?:e|es|ing)|burn(?:s|ing)|melt\w*|fall(?:s|ing)|turn(?:s|ing)? (?:her|his|its|their) head|"
    r"mov(?:e|es|ing)|wink\w*|spin(?:s|ning)|rotat(?:e|es|ing)|roll(?:s|ing)|bounc\w*|shak(?:e|es|ing)|"
    r"glid(?:e|es|ing)|soar\w*|circl(?:e|es|ing)|chas\w*|climb\w*|march\w*|pour\w*|erupt\w*|explod\w*|"
    r"sprout\w*|unfold\w*|sparkl\w*|twinkl\w*|blow(?:s|ing)|crawl\w*|leap\w*|hop(?:s|ping)|rac(?:e|es|ing)|"
    r"rid(?:e|es|ing)|drip\w*|billow\w*|puff\w*|steam(?:s|ing)?|smok(?:e|es|ing)|wav(?:e|es) crash\w*|"
    r"pass(?:es|ing)|nibbl\w*|peck\w*|stretch\w*|yawn\w*|sits? down|stand(?:s|ing)? up|look(?:s|ing)? (?:at|around|up|down))\b")


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
            cam = " then ".join(", ".join(_said(m.family, m.phrase, m.intensity) for m in phase)
                                for phase in self.phases)
        fx = ", ".join(_said(e.name, e.phrase, e.intensity) for e in self.effects) or "none"
        line = f"camera: {cam}; effects: {fx}; strength {self.strength:g}"
        if self.suppressed:
            line += "; suppressed by negative prompt: " + ", ".join(self.suppressed)
        return line

    def limits(self) -> list[str]:
        """Log lines for what was asked but cannot be drawn."""
        return [f'not animated: "{u}": this engine moves the camera and draws weather, it cannot make the '
                f"subject move by itself; {USE_INSTEAD}" for u in self.unsupported]


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
        moves, negated, still, spans = _camera_in(clause)
        negated_camera |= negated
        if still:
            holds.add(clause.phase)
        if (still or negated) and not still_phrase:
            still_phrase = still or clause.text
        removed |= any(m.family in suppressed for m in moves)
        by_phase[clause.phase].extend(m for m in moves if m.family not in suppressed)
        found = _effects_in(clause)
        for e in found:
            if e.name not in suppressed and e.name not in effects:
                effects[e.name] = e
        if not negated and _subject_motion(clause, spans, carried=bool(moves or found or still)):
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
        phases=phase_moves, effects=tuple(sorted(effects.values(), key=lambda e: order[e.name])),
        strength=float(cfg_scale), still=still, suppressed=tuple(sorted(named)), default_move=default,
        unsupported=tuple(unsupported), still_phrase=still_phrase)


def _subject_motion(clause: Clause, spans: list[tuple[int, int]], *, carried: bool) -> bool:
    """Whether the clause describes the subject's own motion (not a camera verb, not an effect's verb)."""
    for m in _SUBJECT_MOTION.finditer(clause.text):
        if clause.negated(m.start()) or any(s < m.end() and m.start() < e for s, e in spans):
            continue
        if carried and _CARRIER_VERBS.fullmatch(m.group(0)):
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
    about_camera = bool(_CAMERA_CLAUSE.search(text))
    head = _FILLER.match(text)
    lead = head.end() if head else 0
    moves: list[Move] = []
    guessed: set[int] = set()
    negated = False
    taken: list[tuple[int, int]] = []
    for kind, pattern, needs_camera in _TRIGGER:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            if needs_camera and not about_camera and m.start() != lead:
                continue
            taken.append((m.start(), m.end()))
            if clause.negated(m.start()):
                negated = True
                continue
            if kind == "generic":
                continue
            direction = _direction(text[m.end():], text[:m.start()])
            table = _FAMILY_OF[kind]
            family = table.get(direction, table.get(""))
            if kind == "aerial" and (moves or any(k != "aerial" for k, *_ in _kinds_in(text))):
                continue  # "a drone shot panning left": the other word says the move
            if family is None:
                continue
            phrase = text[m.start():m.end()] + _direction_phrase(text[m.end():])
            moves.append(Move(family, phrase.strip(), intensity_at(clause, m.start(), m.end())))
            if len(table) > 1 and (direction not in table or not direction):
                guessed.add(len(moves) - 1)
    # A family guessed for want of a direction ("crane shot") gives way to a stated one of its kind
    # ("descending": crane-down) in the same clause.
    stated = {moves[k].family.split("-")[0] for k in range(len(moves)) if k not in guessed}
    moves = [m for k, m in enumerate(moves) if k not in guessed or m.family.split("-")[0] not in stated]
    still = _STILL.search(text)
    still_phrase = still.group(0) if still and not clause.negated(still.start()) else ""
    return moves, negated, still_phrase, taken


def _kinds_in(text: str) -> list[tuple[str, int]]:
    about_camera = bool(_CAMERA_CLAUSE.search(text))
    head = _FILLER.match(text)
    lead = head.end() if head else 0
    return [(kind, m.start()) for kind, pattern, ctx in _TRIGGER if kind not in ("generic", "move")
            for m in pattern.finditer(text) if not ctx or about_camera or m.start() == lead]


def _direction(after: str, before: str) -> str:
    """The direction the words after a camera verb give ("" when none), else the word just before it."""
    window = " ".join(after.split()[:7])
    m = _DIRECTIONS.search(window)
    if m:
        word = m.group(1) or m.group(2)
        return _DIRECTION_WORDS.get(word.replace("-", " ") if "clockwise" in word else word, "")
    prev = before.split()[-1:] if before.strip() else []
    if prev and prev[0] in ("left", "right", "upward", "downward", "clockwise", "counterclockwise"):
        return _DIRECTION_WORDS.get(prev[0], "")
    return ""


def _direction_phrase(after: str) -> str:
    window = " ".join(after.split()[:7])
    m = _DIRECTIONS.search(window)
    return " " + window[: m.end()] if m and (m.group(1) or m.group(2)) else ""


def _effects_in(clause: Clause) -> list[Effect]:
    out = []
    for name, pattern in _EFFECTS:
        for m in pattern.finditer(clause.text):
            if clause.negated(m.start()):
                continue
            out.append(Effect(name, m.group(0), intensity_at(clause, m.start(), m.end())))
            break
    return out


def _negative(text: str) -> tuple[set[str], set[str]]:
    """(families suppressed, names for the log) from the negative prompt: bare words count both ways."""
    suppressed: set[str] = set()
    norm = normalise(text)
    if re.search(r"\b(?:camera (?:movement|motion|moves?|moving)|moving camera|any movement|motion)\b(?! blur)",
                 norm):
        suppressed |= set(CAMERA_FAMILIES)
        return suppressed | _negative_effects(norm), {"all camera moves"} | _negative_effects(norm)
    for clause in clauses(text):
        for kind, pattern, _ in _TRIGGER:
            for m in pattern.finditer(clause.text):
                if kind == "generic" or kind in ("move", "rise", "sink", "approach", "recede"):
                    continue
                direction = _direction(clause.text[m.end():], "")
                table = _FAMILY_OF[kind]
                if direction and direction in table:
                    suppressed.add(table[direction])
                else:
                    suppressed |= set(_NEGATIVE_FAMILIES.get(kind, (table.get("", ""),))) - {""}
    effects = _negative_effects(norm)
    return suppressed | effects, suppressed | effects


def _negative_effects(norm: str) -> set[str]:
    words = {"snow": r"snow\w*|blizzard|flakes?", "rain": r"rain\w*|drizzl\w*|downpour",
             "fog": r"fog\w*|mist\w*|haz[ey]|smog", "clouds": r"cloud\w*|overcast"}
    return {name for name, p in words.items() if re.search(rf"\b(?:{p})\b", norm)}
