"""The prompt vocabulary's word lists: camera verbs, direction words, effect words, subject motion.

All patterns work on text normalised by ``prompt.normalise`` (lower case, contractions spelled
out) and are used by ``vocabulary.understand``, which documents the rules that combine them.
"""

from __future__ import annotations

import re

__all__ = [
    "CAMERA_CLAUSE",
    "CARRIER_VERBS",
    "DIRECTIONS",
    "DIRECTION_WORDS",
    "EFFECTS",
    "FALLING",
    "FAMILY_OF",
    "FILLER",
    "NEGATIVE_FAMILIES",
    "STILL",
    "SUBJECT_MOTION",
    "TRIGGER",
    "TRIGGERS",
]

# --- camera words ------------------------------------------------------------------------------
# (kind, pattern, needs a camera clause). The kind and the direction words after it give the family.
TRIGGERS: tuple[tuple[str, str, bool], ...] = (
    (
        "shake",
        (
            r"hand[ -]?held|shaky[ -]?cam\w*|camera shake|shaking camera|(?:shak(?:y|e|es|ing)|jitter\w*|"
            r"wobbl\w*|unsteady|trembl\w*)"
        ),
        False,
    ),
    ("push", r"push(?:es|ed|ing)?[ -](?:in|into|forward|toward|towards|closer)\b|push[ -]?in", False),
    ("pull", r"pull(?:s|ed|ing)?[ -](?:out|back|away)|pull[ -]?back|pullback|pull[ -]?out", False),
    ("zoom", r"(?:crash )?zoom(?:s|ed|ing)?", False),
    ("dolly", r"doll(?:y|ies|ied|ying)", False),
    ("truck", r"truck(?:s|ed|ing)?(?= (?:to the )?(?:left|right))", False),
    ("track", r"tracking|track(?:s|ed)?(?= (?:to the )?(?:left|right))|follow(?:s|ed|ing)?(?: shot| cam\w*)?", True),
    ("pan", r"(?<!\bfrying )(?<!\ba )(?<!\bthe )(?<!\bcooking )pan(?:s|ned|ning)?", False),
    ("tilt", r"tilt(?:s|ed|ing)?", False),
    (
        "crane",
        (
            r"(?:crane|boom|jib|pedestal)(?:s|ed|ing)?(?= (?:shot|up|down|upward|downward|move))|"
            r"(?:crane|jib|boom) shot|(?:crane|pedestal)(?:s|ed|ing)? (?:up|down)"
        ),
        False,
    ),
    ("orbit", r"orbit(?:s|ed|ing)?|360[ -]degree|arc shot", False),
    (
        "circle",
        (
            r"circl(?:e|es|ed|ing)|arc(?:s|ing)? (?:around|round)|revolv(?:e|es|ing)|go(?:es)? around|"
            r"moves? around|moving around"
        ),
        True,
    ),
    (
        "roll",
        (
            r"dutch (?:angle|tilt)|barrel roll|roll(?:s|ed|ing)?|rotat(?:e|es|ed|ing|ion)|spin(?:s|ning)?|"
            r"twist(?:s|ing)?|turn(?:s|ed|ing)?(?= (?:counter|anti|clockwise))"
        ),
        True,
    ),
    ("fly", r"fly[ -]?(?:through|over|by)|flyover|flythrough|fl(?:y|ies|ying|ew)|soar(?:s|ing)?|swoop(?:s|ing)?", True),
    ("aerial", r"drone|aerial|fpv|bird'?s[ -]eye|birds[ -]eye", False),
    (
        "rise",
        (
            r"ris(?:e|es|ing)|rose|ascend(?:s|ing)?|climb(?:s|ing)?|lift(?:s|ing)? (?:up|off)|elevat\w+|"
            r"(?:go(?:es)?|going|mov(?:e|es|ing)|float(?:s|ing)?|drift(?:s|ing)?) up(?:ward)?"
        ),
        True,
    ),
    (
        "sink",
        (
            r"descend(?:s|ing)?|lower(?:s|ing)?|sink(?:s|ing)?|(?:go(?:es)?|going|mov(?:e|es|ing)|drop(?:s|ping)?) "
            r"down(?:ward)?"
        ),
        True,
    ),
    (
        "approach",
        (
            r"approach(?:es|ed|ing)?|advanc(?:e|es|ing)|clos(?:e|es|ing) in|(?:get|gets|come|comes|coming) "
            r"closer"
        ),
        True,
    ),
    ("recede", r"reced(?:e|es|ing)|retreat(?:s|ing)?|back(?:s|ing)? (?:away|up|out)", True),
    (
        "move",
        (
            r"mov(?:e|es|ed|ing)|glid(?:e|es|ing)|slid(?:e|es|ing)|travel(?:s|ling|ing|led)?|drift(?:s|ing)?|"
            r"go(?:es)?|going|head(?:s|ing)?|sweep(?:s|ing)?|push(?:es|ing)?|strafe\w*"
        ),
        True,
    ),
    ("generic", r"movement|motion", True),
)
TRIGGER = [(kind, re.compile(rf"\b(?:{pattern})\b"), ctx) for kind, pattern, ctx in TRIGGERS]
STILL = re.compile(
    r"\b(?:(?:static|still|fixed|locked(?:[ -]off)?|stationary|steady|motionless|unmoving|frozen|"
    r"immobile)(?: \w+)? (?:camera|shot|frame|view|angle)|camera (?:is |stays |remains |holds |"
    r"keeps )?(?:\w+ly )?(?:still|static|fixed|stationary|steady|motionless|put|locked)|tripod|locked[ -]off|"
    r"holds? (?:still|steady|the shot|the frame)|stays? (?:still|put))\b"
)
CAMERA_CLAUSE = re.compile(
    r"\b(?:camera|cam|shot|view|lens|we|us|pov|drone|aerial|fpv|viewer|footage|picture|"
    r"image|frame|scene|viewpoint|perspective|video|filmed|shooting)\b"
)
FILLER = re.compile(
    r"^(?:(?:slow(?:ly)?|gentl[ey]|gently|quick(?:ly)?|fast|smooth(?:ly)?|steadily|then|and|"
    r"very|a|the|subtle|subtly|slight(?:ly)?|rapid(?:ly)?|swift(?:ly)?|now|first|camera|lets?|"
    r"please|cinematic|dramatic(?:ally)?|we)\s+)*"
)
DIRECTIONS = re.compile(
    r"from (?:the )?(?:left|right|top|bottom|up|down) to (?:the )?(left|right|top|bottom|up|down)|"
    r"(counter[ -]?clockwise|anti[ -]?clockwise|clockwise|leftwards?|rightwards?|upwards?|downwards?|"
    r"left|right|up|down|inwards?|in|into|closer|forwards?|toward|towards|outwards?|out|backwards?|back|away|"
    r"top|bottom|overhead|across|over|through)\b"
)
DIRECTION_WORDS = {
    "left": "left",
    "leftward": "left",
    "leftwards": "left",
    "right": "right",
    "rightward": "right",
    "rightwards": "right",
    "up": "up",
    "upward": "up",
    "upwards": "up",
    "top": "up",
    "down": "down",
    "downward": "down",
    "downwards": "down",
    "bottom": "down",
    "in": "in",
    "into": "in",
    "inward": "in",
    "inwards": "in",
    "closer": "in",
    "forward": "in",
    "forwards": "in",
    "toward": "in",
    "towards": "in",
    "out": "out",
    "outward": "out",
    "outwards": "out",
    "back": "out",
    "backward": "out",
    "backwards": "out",
    "away": "out",
    "clockwise": "cw",
    "counterclockwise": "ccw",
    "counter-clockwise": "ccw",
    "counter clockwise": "ccw",
    "anticlockwise": "ccw",
    "anti-clockwise": "ccw",
    "anti clockwise": "ccw",
    "overhead": "in",
    "across": "",
    "over": "in",
    "through": "in",
}
# kind -> {direction: family}; "" is the family when no direction word follows.
FAMILY_OF: dict[str, dict[str, str]] = {
    "push": {"": "push-in"},
    "pull": {"": "pull-out"},
    "approach": {"": "push-in"},
    "recede": {"": "pull-out"},
    "zoom": {"": "push-in", "in": "push-in", "out": "pull-out"},
    "dolly": {"": "push-in", "in": "push-in", "out": "pull-out", "left": "track-left", "right": "track-right"},
    "truck": {"": "track-right", "left": "track-left", "right": "track-right"},
    "track": {"": "track-right", "left": "track-left", "right": "track-right", "in": "push-in", "out": "pull-out"},
    "pan": {"": "pan-right", "left": "pan-left", "right": "pan-right", "up": "tilt-up", "down": "tilt-down"},
    "tilt": {"": "tilt-up", "up": "tilt-up", "down": "tilt-down"},
    "crane": {"": "crane-up", "up": "crane-up", "down": "crane-down"},
    "rise": {"": "crane-up"},
    "sink": {"": "crane-down"},
    # Seen from above with the camera south of the subject, counter-clockwise carries the camera to its right.
    "orbit": {
        "": "orbit-right",
        "left": "orbit-left",
        "right": "orbit-right",
        "cw": "orbit-left",
        "ccw": "orbit-right",
    },
    "roll": {"": "roll-cw", "cw": "roll-cw", "ccw": "roll-ccw", "left": "roll-ccw", "right": "roll-cw"},
    "fly": {
        "": "drone-forward",
        "in": "drone-forward",
        "out": "pull-out",
        "left": "track-left",
        "right": "track-right",
        "up": "crane-up",
        "down": "crane-down",
    },
    "aerial": {"": "drone-forward"},
    "move": {
        "in": "push-in",
        "out": "pull-out",
        "left": "track-left",
        "right": "track-right",
        "up": "crane-up",
        "down": "crane-down",
    },
    "shake": {"": "shake"},
}
FAMILY_OF["circle"] = FAMILY_OF["orbit"]
#: Families a bare word names in the negative prompt ("zoom" is both ways, "pan" both sides...).
NEGATIVE_FAMILIES = {
    "zoom": ("push-in", "pull-out"),
    "dolly": ("push-in", "pull-out"),
    "pan": ("pan-left", "pan-right"),
    "tilt": ("tilt-up", "tilt-down"),
    "track": ("track-left", "track-right"),
    "truck": ("track-left", "track-right"),
    "crane": ("crane-up", "crane-down"),
    "orbit": ("orbit-left", "orbit-right"),
    "circle": ("orbit-left", "orbit-right"),
    "roll": ("roll-cw", "roll-ccw"),
    "fly": ("drone-forward",),
    "aerial": ("drone-forward",),
    "shake": ("shake",),
}

# --- effect words -------------------------------------------------------------------------------
FALLING = r"(?:fall\w*|drift\w*|swirl\w*|com(?:e|es|ing) down|blow\w*|pour\w*|flutter\w*|float\w*|descend\w*|whirl\w*)"
EFFECTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "snow",
        re.compile(
            r"\b(?:snow(?:fall|flakes?|storm|ing|s)|blizzard\w*|flurr(?:y|ies)|sleet|flakes?)\b|"
            rf"\bsnow(?![ -](?:capped|covered|clad|topped|peaked|white|man|men|board\w*|mobile|ball\w*|"
            rf"shoe\w*|leopard|drop\w*|globe|field\w*|line|bank\w*|pack|plough|plow))\b(?=[^,;]*\b{FALLING})|"
            r"\b(?:heavy|light|gentle|soft|thick|fine|dense|falling|fresh) snow\b|^snow$"
        ),
    ),
    (
        "rain",
        re.compile(
            r"\b(?:rain(?:s|ing|fall|drops?|storm|y)?|drizzl\w*|downpour\w*|thunderstorm\w*|showers?)\b"
            r"(?![ -](?:soaked|slicked|wet|coat|boots?|jacket|forest|bow))"
        ),
    ),
    ("fog", re.compile(r"\b(?:fog(?:gy|s)?|mist(?:y|s)?|haz(?:e|y)|smog)\b")),
    ("clouds", re.compile(r"\b(?:cloud(?:s|y)?|overcast)\b(?! of)")),
)
#: Verbs that belong to an effect or a camera clause (not the subject's own motion).
CARRIER_VERBS = re.compile(
    rf"\b(?:{FALLING}|roll\w*|mov(?:e|es|ing)|rises?|rising|spread\w*|billow\w*|"
    r"pass(?:es|ing)?|gather\w*|hang\w*|cover\w*|fill\w*|glid\w*|flow\w*)\b"
)
# --- what the engine cannot draw: the subject's own motion --------------------------------------
SUBJECT_MOTION = re.compile(
    r"\b(?:waving|waves? (?:her|his|their|its|at|to|hello|goodbye)|walk(?:s|ing)?|run(?:s|ning)?|ran|"
    r"danc(?:e|es|ed|ing)|"
    r"talk(?:s|ing)?|speak(?:s|ing)?|smil(?:e|es|ing)|laugh\w*|blink\w*|nod(?:s|ding)?|jump\w*|bloom\w*|"
    r"blossom\w*|grow(?:s|ing)?|open(?:s|ing)|sway\w*|rustl\w*|flutter\w*|flicker\w*|flow(?:s|ing)?|"
    r"crash(?:es|ing)?|rippl\w*|splash\w*|driv(?:e|es|ing)|sail(?:s|ing)?|swim\w*|fl(?:y|ies|ying)|gallop\w*|"
    r"eat(?:s|ing)|drink\w*|sing(?:s|ing)|play(?:s|ing)|wag\w*|breath\w*|cr(?:y|ies|ying)|hug\w*|kiss\w*|"
    r"ris(?:e|es|ing)|burn(?:s|ing)|melt\w*|fall(?:s|ing)|turn(?:s|ing)? (?:her|his|its|their) head|"
    r"mov(?:e|es|ing)|wink\w*|spin(?:s|ning)|rotat(?:e|es|ing)|roll(?:s|ing)|bounc\w*|shak(?:e|es|ing)|"
    r"glid(?:e|es|ing)|soar\w*|circl(?:e|es|ing)|chas\w*|climb\w*|march\w*|pour\w*|erupt\w*|explod\w*|"
    r"sprout\w*|unfold\w*|sparkl\w*|twinkl\w*|blow(?:s|ing)|crawl\w*|leap\w*|hop(?:s|ping)|rac(?:e|es|ing)|"
    r"rid(?:e|es|ing)|drip\w*|billow\w*|puff\w*|steam(?:s|ing)?|smok(?:e|es|ing)|wav(?:e|es) crash\w*|"
    r"pass(?:es|ing)|nibbl\w*|peck\w*|stretch\w*|yawn\w*|sits? down|stand(?:s|ing)? up|"
    r"look(?:s|ing)? (?:at|around|up|down))\b"
)
