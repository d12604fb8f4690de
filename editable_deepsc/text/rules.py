"""The rule half of instruction parsing: words that change structure, not meaning.

Rules handle what sentence embeddings are bad at — negation, degree words,
numbers and units, compounds and typos — and leave a short *core* phrase
("smiling", "turn head left") that :mod:`editable_deepsc.text.parser` matches
against the prompt bank with sentence embeddings.

Every function here is pure string processing on lower-cased text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# --- strength ---------------------------------------------------------------------------------
# (regex, strength), tried in order; the first that matches wins and is removed from the text.
STRENGTH_WORDS: tuple[tuple[str, float], ...] = (
    (r"a tiny (?:little )?bit", 0.25),
    (r"(?:very|ever so) slightly", 0.25),
    (r"just a (?:touch|hint)", 0.25),
    (r"a tiny amount", 0.25),
    (r"a little bit", 0.5),
    (r"a bit", 0.5),
    (r"a little", 0.5),
    (r"a touch", 0.5),
    (r"a tad", 0.5),
    (r"a slight", 0.5),
    (r"slightly", 0.5),
    (r"slight", 0.5),
    (r"somewhat", 0.5),
    (r"kind of", 0.5),
    (r"kinda", 0.5),
    (r"sort of", 0.5),
    (r"mildly", 0.5),
    (r"subtly", 0.5),
    (r"a lot", 1.5),
    (r"lots", 1.5),
    (r"much", 1.5),
    (r"very", 1.5),
    (r"really", 1.5),
    (r"significantly", 1.5),
    (r"considerably", 1.5),
    (r"noticeably", 1.5),
    (r"strongly", 1.5),
    (r"a big", 1.5),
    (r"big", 1.5),
    (r"wide", 1.5),
    (r"widely", 1.5),
    (r"way(?= (?:more|less|\w+er)\b)", 2.0),
    (r"extremely", 2.0),
    (r"super", 2.0),
    (r"hugely", 2.0),
    (r"massively", 2.0),
    (r"incredibly", 2.0),
    (r"enormously", 2.0),
    (r"dramatically", 2.0),
)

# --- negation ---------------------------------------------------------------------------------
# Each occurrence flips the direction once ("less" included: "less angry" = angry, flipped).
NEGATION_WORDS: tuple[str, ...] = (
    r"no longer", r"no more", r"not anymore", r"not any ?more", r"do not", r"does not", r"don'?t", r"doesn'?t",
    r"[a-z]+n't", r"stop", r"stops", r"quit", r"cease", r"without", r"never", r"not", r"no", r"less",
    r"get rid of", r"take away", r"wipe", r"remove", r"lose",
)
# Words that only mark a comparative and carry no direction of their own.
NEUTRAL_DEGREE_WORDS: tuple[str, ...] = (r"any ?more", r"more", r"even", r"so", r"too", r"off")

# --- fillers ----------------------------------------------------------------------------------
FILLER_WORDS: tuple[str, ...] = (
    r"the person", r"this person", r"that person", r"the subject", r"can you", r"could you", r"would you",
    r"i want", r"i'd like", r"i would like", r"let'?s",
    r"him", r"her", r"them", r"his", r"hers", r"their", r"theirs", r"he", r"she", r"they", r"he'?s", r"she'?s",
    r"they'?re", r"it", r"its", r"it'?s", r"you", r"your", r"yourself", r"me", r"my", r"please", r"make", r"makes",
    r"making", r"be", r"is", r"are", r"just", r"now", r"bit", r"again",
    # "look sad" means "sad"; "look up" keeps its "look"
    r"look(?:s|ing)? like", r"look(?:s|ing)?(?! (?:up|down|left|right|at|to|into|straight|over|away|forward|ahead"
    r"|back|upwards?|downwards?|leftwards?|rightwards?|towards?|sideways|skyward)\b)",
    r"appear(?:s|ing)?", r"seem(?:s|ing)?", r"(?:turn|turned|transform|transformed|change|changed) into", r"become",
    r"like",
)

# --- numbers ----------------------------------------------------------------------------------
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_DECADES = {"teens": 10, "twenties": 20, "thirties": 30, "forties": 40, "fifties": 50, "sixties": 60,
            "seventies": 70, "eighties": 80, "nineties": 90}

COMPOUND_SPLIT = re.compile(r"\s*(?:[,;&+]|\band then\b|\bas well as\b|\band also\b|\band\b|\bplus\b|\bthen\b"
                            r"|\balso\b|\bwhile\b|\bbut\b)\s*")
BODY_PARTS = frozenset({"mouth", "eyes", "eye", "lips", "head", "chin", "face"})
_VERBS = ("open", "close", "shut", "turn", "tilt", "raise", "lower", "widen", "narrow", "rotate", "lift", "part")


# --- spatial direction ------------------------------------------------------------------------
# Sentence embeddings barely separate left from right or up from down, so the direction of a head
# pose edit comes from these words when present. "left"/"right" are the viewer's (image) sides;
# "his/her/their/own left" is the subject's, i.e. the opposite image side.
_YAW_WORDS = {"right": 1, "rightward": 1, "rightwards": 1, "left": -1, "leftward": -1, "leftwards": -1}
_PITCH_WORDS = {"up": 1, "upward": 1, "upwards": 1, "skyward": 1, "skywards": 1, "raise": 1, "lift": 1,
                "sky": 1, "ceiling": 1, "down": -1, "downward": -1, "downwards": -1, "lower": -1, "bow": -1,
                "floor": -1, "ground": -1, "feet": -1}


def pose_sign(attribute: str, seg: str) -> int:
    """Direction a pose segment names by its words: +1, -1, or 0 when it names none.

    Parameters
    ----------
    attribute : {"yaw", "pitch"}
        The matched pose attribute (others give 0).
    seg : str
        The segment text (normalised, pronouns still in place).

    Returns
    -------
    int
        +1 = towards image right / up, -1 = image left / down.
    """
    table = {"yaw": _YAW_WORDS, "pitch": _PITCH_WORDS}.get(attribute)
    if not table:
        return 0
    words = seg.split()
    for i, w in enumerate(words):
        if w in table:
            sign = table[w]
            if attribute == "yaw" and i > 0 and words[i - 1] in ("his", "her", "their", "own", "your"):
                sign = -sign
            return sign
    return 0


def normalise_text(text: str) -> str:
    """Lower-case, NFKC, straight quotes, spaces around punctuation, single spaces.

    Parameters
    ----------
    text : str
        Raw instruction.

    Returns
    -------
    str
        Cleaned text; words, digits and the punctuation ``, ; & + ° % ! ? .`` as tokens.
    """
    t = unicodedata.normalize("NFKC", text).lower()
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    t = re.sub(r"(\d)\s*°", r"\1 degrees", t)
    t = re.sub(r"[\"()\[\]{}<>*_~^|\\/:=#@$]", " ", t)
    t = re.sub(r"([,;&+!?.])", r" \1 ", t)
    t = re.sub(r"(?<=\d) \. (?=\d)", ".", t)
    return re.sub(r"\s+", " ", t).strip()


def words_to_numbers(text: str) -> str:
    """Rewrite number words as digits ("twenty-five years" → "25 years", "a decade" → "10 years").

    Parameters
    ----------
    text : str
        Normalised text.

    Returns
    -------
    str
        The same text with numbers as digits.
    """
    t = re.sub(r"\b(a|one|two|three|four|five) decades?\b",
               lambda m: f"{10 * (1 if m.group(1) in ('a', 'one') else _UNITS[m.group(1)])} years", text)
    t = re.sub(r"\bhalf a century\b", "50 years", t)
    t = re.sub(r"\ba couple of years\b", "2 years", t)
    t = re.sub(r"\ba year\b", "1 year", t)

    def tens(m: re.Match) -> str:
        return str(_TENS[m.group(1)] + (_UNITS[m.group(2)] if m.group(2) else 0))

    t = re.sub(r"\b(" + "|".join(_TENS) + r")(?:[ -](one|two|three|four|five|six|seven|eight|nine))?\b", tens, t)
    t = re.sub(r"\b(" + "|".join(_UNITS) + r")\b(?= ?(?:years?|yrs?|degrees?|deg)\b)",
               lambda m: str(_UNITS[m.group(1)]), t)
    return t


@dataclass
class Amount:
    """A number found in a segment.

    Attributes
    ----------
    kind : {"age_set", "years", "degrees"}
        Absolute age, relative years, or relative degrees.
    value : float
        The number, in years or degrees.
    """

    kind: str
    value: float


_NUM = r"(\d+(?:\.\d+)?)"


def extract_amount(seg: str) -> tuple[str, Amount | None]:
    """Find an age, a number of years or a number of degrees in one segment.

    Parameters
    ----------
    seg : str
        One normalised segment with numbers as digits.

    Returns
    -------
    rest : str
        The segment with the amount phrase removed.
    amount : Amount or None
        What was found.
    """
    m = re.search(r"\b(?:in (?:\w+ )?)?(early |mid |mid-|late )?(" + "|".join(_DECADES) + r"|(\d)0'?s)\b", seg)
    if m:
        base = _DECADES.get(m.group(2), int(m.group(3)) * 10 if m.group(3) else 0)
        offset = {"early ": 2, "late ": 8}.get(m.group(1) or "", 5)
        return _cut(seg, m), Amount("age_set", float(base + offset))
    m = re.search(r"\b" + _NUM + r" ?(?:-| )?(?:years?|yrs?)(?: |-)?old\b", seg)
    if m:
        return _cut(seg, m), Amount("age_set", float(m.group(1)))
    m = re.search(r"\b(?:set|change|put) (?:\w+ )?age to " + _NUM + r"\b", seg)
    if m:
        return _cut(seg, m), Amount("age_set", float(m.group(1)))
    m = re.search(r"\b(?:by )?" + _NUM + r" ?(?:degrees?|degs?)\b", seg)
    if m:
        return _cut(seg, m), Amount("degrees", float(m.group(1)))
    m = re.search(r"\b(?:by )?" + _NUM + r" ?(?:more )?(?:years?|yrs?)\b", seg)
    if m:
        return _cut(seg, m), Amount("years", float(m.group(1)))
    m = re.search(r"\b(?:aged?|at|age of) " + _NUM + r"\b", seg)
    if m:
        return _cut(seg, m), Amount("age_set", float(m.group(1)))
    m = re.search(r"\b(?:about |around |roughly |approximately )?" + _NUM + r"\b", seg)
    if m:
        rest = _cut(seg, m)
        # a bare number is an age only after "make/look/like/become/turn": "make him 60", "look 25"
        if re.search(r"\b(?:make|makes|look|looks|like|become|turn|appear|seem|aged?)\b", rest):
            return rest, Amount("age_set", float(m.group(1)))
    return seg, None


def _cut(seg: str, m: re.Match) -> str:
    return re.sub(r"\s+", " ", seg[: m.start()] + " " + seg[m.end():]).strip()


def _remove_all(seg: str, patterns: tuple[str, ...]) -> tuple[str, int]:
    n = 0
    for p in patterns:
        seg, k = re.subn(r"(?<![\w'-])" + p + r"(?![\w'-])", " ", seg)
        if k:
            n += k
            seg = re.sub(r"\s+", " ", seg).strip()
    return re.sub(r"\s+", " ", seg).strip(), n


def extract_strength(seg: str) -> tuple[str, float]:
    """Find and remove the first degree phrase ("a bit" → 0.5, "much" → 1.5, "extremely" → 2.0).

    Parameters
    ----------
    seg : str
        One normalised segment.

    Returns
    -------
    rest : str
        The segment without the degree phrase.
    strength : float
        1.0 when there is none.
    """
    for pattern, value in STRENGTH_WORDS:
        m = re.search(r"(?<![\w'-])" + pattern + r"(?![\w'-])", seg)
        if m:
            return _cut(seg, m), value
    return seg, 1.0


def extract_negation(seg: str) -> tuple[str, bool]:
    """Remove negation cues; return whether the direction flips (odd count).

    ``"stop smiling"`` → ``("smiling", True)``; ``"less young"`` → ``("young", True)``;
    ``"don't close eyes"`` → ``("close eyes", True)``.
    """
    seg, n = _remove_all(seg, NEGATION_WORDS)
    seg, _ = _remove_all(seg, NEUTRAL_DEGREE_WORDS)
    return seg, bool(n % 2)


def remove_fillers(seg: str) -> str:
    """Drop pronouns, politeness and "make" — words that do not change which edit is meant."""
    seg, _ = _remove_all(seg, FILLER_WORDS)
    seg = re.sub(r"\s*[!?.]+\s*", " ", seg)
    return re.sub(r"\s+", " ", seg).strip()


def split_compound(text: str) -> list[str]:
    """Split "smile, look up and close eyes" into ``["smile", "look up", "close eyes"]`` (empty parts dropped)."""
    return [p.strip() for p in COMPOUND_SPLIT.split(text) if p and p.strip(" !?.")]


def leading_verb(core: str) -> str | None:
    """The edit verb a segment starts with ("close her eyes" → "close"), if any."""
    for w in core.split():
        if w in _VERBS:
            return w
    return None


def is_bare_body_part(core: str) -> bool:
    """True for a verb-less segment such as "mouth" in "close her eyes and mouth"."""
    words = [w for w in core.split() if w not in ("the", "a", "an")]
    return bool(words) and all(w in BODY_PARTS for w in words)


@dataclass
class SpellChecker:
    """Correct words outside a known vocabulary to the nearest word of a target vocabulary.

    Parameters
    ----------
    known : set of str
        Words left alone (a general English word list plus the target words).
    targets : set of str
        Words a typo may be corrected to (the prompt bank's words).
    """

    known: set[str]
    targets: set[str]
    _by_len: dict[int, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for w in self.targets:
            if len(w) >= 3 and w.isalpha():
                self._by_len.setdefault(len(w), []).append(w)

    def correct_word(self, word: str) -> str:
        """Return ``word`` or its correction (distance ≤ 1 for ≤ 4 letters, ≤ 2 otherwise)."""
        if not word.isalpha() or word in self.known or len(word) < 3:
            return word
        limit = 1 if len(word) <= 4 else 2
        best: tuple[int, bool, int, str] | None = None
        for n in range(len(word) - limit, len(word) + limit + 1):
            for cand in self._by_len.get(n, ()):
                d = osa_distance(word, cand, limit)
                if d <= limit:
                    # prefer fewer edits, the same first letter (rarely mistyped), then a longer
                    # candidate (typos drop letters more often than they add them)
                    key = (d, cand[0] != word[0], -len(cand), cand)
                    if best is None or key < best:
                        best = key
        return best[-1] if best else word

    def correct(self, text: str) -> str:
        """Correct every word of a normalised text."""
        return " ".join(self.correct_word(w) for w in text.split())


def osa_distance(a: str, b: str, limit: int = 99) -> int:
    """Optimal-string-alignment edit distance (insert, delete, substitute, swap neighbours).

    Returns ``limit + 1`` early once the distance must exceed ``limit``.
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]
