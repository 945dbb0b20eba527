"""Prompt vocabulary: which words ask for which camera move or ambient effect.

Matching is case-insensitive on word boundaries. An occurrence preceded (within two words)
by "no", "not", "without" or "never" is ignored. Every entry the negative prompt names is
suppressed; a negative prompt naming camera movement itself suppresses every camera move.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Entry", "Match", "Understanding", "VOCABULARY", "understand"]


@dataclass(frozen=True)
class Entry:
    """One vocabulary entry. Camera parameters are at full strength (cfg_scale 1)."""

    name: str
    kind: str  # "camera", "still" or "effect"
    patterns: tuple[str, ...]
    zoom: float = 1.0  # scale factor reached at the end of the clip
    pan: tuple[float, float] = (0.0, 0.0)  # view moves by this fraction of the frame (x right, y down)
    roll: float = 0.0  # degrees the picture turns, positive counter-clockwise
    replaces: tuple[str, ...] = ()  # more specific than these entries: drop them when both match

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile("|".join(rf"\b(?:{p})\b" for p in self.patterns), re.I))

    def find(self, text: str) -> str | None:
        """The first non-negated occurrence in ``text``, or None."""
        for m in self._regex.finditer(text):  # type: ignore[attr-defined]
            before = text[: m.start()].split()[-2:]
            if not any(w.lower().strip(",.;:!?") in _NEGATORS for w in before):
                return m.group(0)
        return None


_NEGATORS = {"no", "not", "without", "never"}
_V = r"(?:s|es|ed|ing)?"  # verb endings
_E = r"(?:e|es|ed|ing)"  # endings of verbs whose stem drops a final e
_PAN = r"pan(?:s|ned|ning)?"

VOCABULARY: tuple[Entry, ...] = (
    Entry("still", "still", (
        r"(?:still|static|fixed|locked|locked[ -]off|stationary|steady) (?:camera|shot|frame|view)",
        r"camera (?:is |stays |remains |holds )?(?:still|static|fixed|stationary|steady)",
        r"tripod", r"no camera (?:movement|motion)",
    )),
    Entry("push-in", "camera", (
        rf"push{_V}[ -]in", rf"zoom{_V}[ -]in", r"zoom(?:s|ing)? closer",
        rf"mov{_E} (?:forward|forwards|closer|in)", rf"approach{_V}", rf"advanc{_E}",
    ), zoom=1.25),
    Entry("dolly-in", "camera",
          (rf"dolly{_V}(?![ -](?:out|back|left|right))(?:[ -](?:in|forward))?", r"dollies(?: in)?"),
          zoom=1.35, pan=(0.0, -0.015)),
    Entry("pull-out", "camera", (
        rf"pull{_V}[ -](?:out|back|away)", rf"zoom{_V}[ -]out", rf"mov{_E} (?:back|backward|backwards|away)",
        rf"reced{_E}", r"wide reveal",
    ), zoom=0.8),
    Entry("dolly-out", "camera", (rf"dolly{_V}[ -](?:out|back)", r"dollies (?:out|back)"), zoom=0.75,
          pan=(0.0, 0.015), replaces=("dolly-in",)),
    Entry("pan-left", "camera", (rf"{_PAN}[ -](?:to the )?left", r"truck(?:s|ing)? left", rf"dolly{_V} left"),
          pan=(-0.1, 0.0), replaces=("dolly-in",)),
    Entry("pan-right", "camera", (rf"{_PAN}(?![ -](?:to the )?left)(?:[ -](?:to the )?right)?",
                                  r"truck(?:s|ing)? right", rf"dolly{_V} right"),
          pan=(0.1, 0.0), replaces=("dolly-in",)),
    Entry("tilt-up", "camera", (rf"tilt{_V}[ -]up", r"(?:camera )?look(?:s|ing)? up", rf"cran{_E} up",
                                rf"pedestal{_V} up"), pan=(0.0, -0.1)),
    Entry("tilt-down", "camera", (rf"tilt{_V}[ -]down", r"(?:camera )?look(?:s|ing)? down", rf"cran{_E} down",
                                  rf"pedestal{_V} down"), pan=(0.0, 0.1)),
    Entry("orbit-right", "camera", (rf"orbit{_V}(?![ -](?:to the )?left)(?:[ -](?:to the )?right)?",
                                    rf"circl{_E} around", rf"arc{_V} around", rf"revolv{_E} around"),
          pan=(0.08, 0.0), roll=-3.0, zoom=1.05),
    Entry("orbit-left", "camera", (rf"orbit{_V}[ -](?:to the )?left",), pan=(-0.08, 0.0), roll=3.0, zoom=1.05,
          replaces=("orbit-right",)),
    Entry("rotate-cw", "camera", (rf"rotat{_E}", r"rotation", r"clockwise", r"camera roll(?:s|ing)?",
                                  r"barrel roll", rf"spin{_V}", r"spinning", rf"twist{_V}"), roll=-6.0),
    Entry("rotate-ccw", "camera", (r"counter[ -]?clockwise", r"anti[ -]?clockwise"), roll=6.0,
          replaces=("rotate-cw",)),
    Entry("snow", "effect", (r"snow\w*", r"blizzard\w*", r"flurr(?:y|ies)")),
    Entry("rain", "effect", (r"rain(?!bow)\w*", r"drizzl\w*", r"downpour\w*", r"raindrops?")),
    Entry("fog", "effect", (r"fog\w*", r"mist(?!ake)\w*", r"haz(?:e|y)", r"smoke")),
    Entry("clouds", "effect", (r"cloud\w*", r"overcast")),
)

_CAMERA_ITSELF = re.compile(r"\b(?:camera (?:movement|motion|moves?|shake)|moving camera)\b", re.I)
#: The move used when the prompt names none: a slow push-in at this fraction of "push-in".
DEFAULT_MOVE = "push-in"
DEFAULT_MOVE_STRENGTH = 0.4


@dataclass(frozen=True)
class Match:
    entry: Entry
    phrase: str  # the words of the prompt that matched; "" for the default move


@dataclass(frozen=True)
class Understanding:
    """What the prompt asks for, after the negative prompt and cfg_scale."""

    camera: tuple[Match, ...]
    effects: tuple[Match, ...]
    strength: float  # cfg_scale: multiplies camera moves; effect opacity is its square root
    still: bool
    suppressed: tuple[str, ...] = field(default=())
    default_move: bool = False

    def describe(self, *, camera: bool = True) -> str:
        """One log line, e.g. ``camera: push-in (from "moves forward"); effects: snow (from "Snowflakes")``.

        With ``camera=False`` (motion brush) the camera part says the brush replaces camera moves.
        """
        if self.strength <= 0:
            return "camera: still (cfg_scale 0: prompt ignored); effects: none"
        if not camera:
            named = [m for m in self.camera if not self.default_move]
            cam = "none (the motion brush replaces camera moves"
            cam += "; ignored: " + ", ".join(f'"{m.phrase}"' for m in named) + ")" if named else ")"
        elif self.still:
            cam = "still" + "".join(f' (from "{m.phrase}")' for m in self.camera if m.entry.kind == "still")
        elif self.default_move:
            cam = f"{DEFAULT_MOVE} (default, gentle)"
        else:
            cam = ", ".join(f'{m.entry.name} (from "{m.phrase}")' for m in self.camera) or "still"
        fx = ", ".join(f'{m.entry.name} (from "{m.phrase}")' for m in self.effects) or "none"
        line = f"camera: {cam}; effects: {fx}; strength {self.strength:g}"
        if self.suppressed:
            line += "; suppressed by negative prompt: " + ", ".join(self.suppressed)
        return line


def understand(prompt: str, negative_prompt: str = "", cfg_scale: float = 0.5) -> Understanding:
    """Parse ``prompt`` against the vocabulary, minus what ``negative_prompt`` names."""
    if not 0.0 <= cfg_scale <= 1.0:
        raise ValueError(f"cfg_scale must be in [0, 1], got {cfg_scale}")
    if cfg_scale == 0.0:
        return Understanding(camera=(), effects=(), strength=0.0, still=True)
    suppressed = {e.name for e in VOCABULARY if e.find(negative_prompt or "")}
    named = set(suppressed)
    if _CAMERA_ITSELF.search(negative_prompt or ""):
        suppressed |= {e.name for e in VOCABULARY if e.kind == "camera"}
        named = {n for n in named if _entry(n).kind != "camera"} | {"all camera moves"}
    found = [Match(e, p) for e in VOCABULARY if e.name not in suppressed and (p := e.find(prompt or ""))]
    replaced = {r for m in found for r in m.entry.replaces}
    found = [m for m in found if m.entry.name not in replaced]
    still = any(m.entry.kind == "still" for m in found)
    camera = [m for m in found if m.entry.kind in ("camera", "still")]
    effects = tuple(m for m in found if m.entry.kind == "effect")
    default = False
    if not camera and DEFAULT_MOVE not in suppressed:
        camera, default = [Match(_entry(DEFAULT_MOVE), "")], True
    elif not camera:
        still = True
    if still:
        camera = [m for m in camera if m.entry.kind == "still"]
    return Understanding(camera=tuple(camera), effects=effects, strength=float(cfg_scale), still=still,
                         suppressed=tuple(sorted(named)), default_move=default)


def _entry(name: str) -> Entry:
    return next(e for e in VOCABULARY if e.name == name)
