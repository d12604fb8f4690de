"""Instruction understanding: free text → :class:`~editable_deepsc.text.targets.ParsedInstruction`.

How it works
------------
1. **Clean** the text (lower case, NFKC, punctuation as tokens), refuse empty,
   letter-less or over-long (> :data:`MAX_CHARS`) input, rewrite number words as
   digits and **correct typos** against the prompt bank's words (optimal string
   alignment distance ≤ 1 for words of ≤ 4 letters, ≤ 2 otherwise; words in the
   MiniLM word list are left alone).
2. **Follow-ups** ("more", "a bit less", "undo", "start over") are recognised on
   the whole text (bare more/less/again/too much by rule, the rest by matching).
3. **Split compounds** on ``, ; & +`` and "and/plus/then/also/while/but"; a
   verb-less body part ("close her eyes and mouth") borrows the previous verb.
4. Per segment, **rules** take out the degree phrase (→ ``strength``), a number
   with its unit (→ ``amount``: years, degrees or an absolute age), negation cues
   (each flips the direction: "stop", "don't", "no", "without", "less", ...) and
   fillers (pronouns, "make", "please").
5. The remaining **core phrase** is embedded with the text encoder (MiniLM by
   default) and matched to the nearest phrase of the **prompt bank**
   (``text/data/prompt_bank.json``: phrases per ``attribute:direction`` label,
   plus ``unsupported:*`` phrases for edits the system knows it cannot make and
   ``followup:*`` phrases). Cosine similarity below :data:`MIN_SIMILARITY`, or a
   nearest phrase labelled ``unsupported``, refuses the whole instruction with
   :class:`~editable_deepsc.errors.UnsupportedInstruction`, naming the nearest
   supported edit.

The parser knows every attribute in :data:`~editable_deepsc.text.targets.ATTRIBUTES`;
which of them the built-in editor can move is for the editor to decide.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from editable_deepsc.errors import UnsupportedInstruction
from editable_deepsc.text import rules
from editable_deepsc.text.encoder import MiniLMEncoder, TextEncoder
from editable_deepsc.text.targets import ATTRIBUTES, EditTarget, FollowUp, ParsedInstruction, opposed

MAX_CHARS = 500
"""Longest instruction accepted, in characters."""

MIN_SIMILARITY = 0.55
"""Cosine similarity (MiniLM) below which a segment matches nothing and is refused."""

AGE_RANGE = (1.0, 100.0)
"""Ages accepted for "make him 60" (years)."""

MAX_DEGREES = 90.0
"""Largest head rotation accepted ("turn 30 degrees left"), in degrees."""

SUPPORTED_EXAMPLES: dict[str, str] = {
    "happy": "smile / stop smiling",
    "sad": "look sad",
    "angry": "less angry",
    "fearful": "look scared",
    "disgusted": "look disgusted",
    "surprised": "look surprised",
    "neutral": "neutral expression",
    "age": "20 years older / younger / make him 60",
    "gender": "more masculine / more feminine",
    "yaw": "turn head 30 degrees left / face the camera",
    "pitch": "look up / look down",
    "mouth_open": "open / close mouth",
    "eyes_open": "open / close eyes",
}
"""One example per attribute, listed in refusal messages."""


def default_bank_path() -> Path:
    """Path of the committed prompt bank (``editable_deepsc/text/data/prompt_bank.json``)."""
    return Path(str(resources.files("editable_deepsc.text") / "data" / "prompt_bank.json"))


@dataclass(frozen=True)
class BankEntry:
    """One prompt-bank phrase.

    Attributes
    ----------
    label : str
        ``"attribute:direction"``, ``"attribute:set:value"``, ``"followup:kind"`` or ``"unsupported:kind"``.
    phrase : str
        The phrase as written in the bank.
    core : str
        The phrase after the same normalisation as an instruction segment (what is embedded).
    """

    label: str
    phrase: str
    core: str

    @property
    def kind(self) -> str:
        """``"edit"``, ``"followup"`` or ``"unsupported"``."""
        head = self.label.split(":", 1)[0]
        return head if head in ("followup", "unsupported") else "edit"


@dataclass(frozen=True)
class Match:
    """The nearest bank phrase for one core phrase (``similarity`` is a cosine in [-1, 1])."""

    entry: BankEntry
    similarity: float


def load_bank(path: str | Path | None = None) -> list[BankEntry]:
    """Read a prompt bank JSON file.

    Parameters
    ----------
    path : str or Path, optional
        Default: :func:`default_bank_path`.

    Returns
    -------
    list of BankEntry

    Raises
    ------
    ValueError
        If a label names an unknown attribute or direction, or a phrase contains a
        negation, degree or number word (those are handled by rules, so a bank
        phrase containing one would be matched inconsistently).
    """
    data = json.loads(Path(path or default_bank_path()).read_text(encoding="utf-8"))
    entries = []
    for label, phrases in data["labels"].items():
        _check_label(label)
        for phrase in phrases:
            text = rules.normalise_text(phrase)
            rest, strength = rules.extract_strength(text)
            rest, flipped = rules.extract_negation(rest)
            if strength != 1.0 or flipped or re.search(r"\d", rest):
                raise ValueError(f"bank phrase {phrase!r} ({label}) contains a degree, negation or number word")
            core = rules.remove_fillers(rest)
            if not core:
                raise ValueError(f"bank phrase {phrase!r} ({label}) is empty after normalisation")
            entries.append(BankEntry(label, phrase, core))
    return entries


def _check_label(label: str) -> None:
    parts = label.split(":")
    if parts[0] in ("followup", "unsupported"):
        if parts[0] == "followup" and parts[1] not in FollowUp.KINDS:
            raise ValueError(f"unknown follow-up kind in bank label {label!r}")
        return
    if parts[0] not in ATTRIBUTES or len(parts) not in (2, 3) or parts[1] not in ("more", "less", "set"):
        raise ValueError(f"bad bank label {label!r}")
    if (parts[1] == "set") != (len(parts) == 3):
        raise ValueError(f"bad bank label {label!r}: 'set' needs a value, others none")


class InstructionParser:
    """Parse edit instructions with rules plus sentence-embedding matching.

    Parameters
    ----------
    encoder : TextEncoder, optional
        Sentence encoder for the core phrases and the bank (default: :class:`MiniLMEncoder`).
    bank_path : str or Path, optional
        Prompt bank JSON (default: the committed one).
    min_similarity : float
        Refusal threshold on the cosine similarity of the nearest bank phrase.

    Notes
    -----
    The bank is embedded on the first :meth:`parse` (about 800 phrases, ~1–3 s on
    a CPU) and kept by the instance; reuse one parser for many instructions.

    Examples
    --------
    >>> p = InstructionParser()
    >>> p.parse("smile a bit and look 20 years older").targets
    (EditTarget(attribute='happy', direction='more', strength=0.5, amount=None),
     EditTarget(attribute='age', direction='more', strength=1.0, amount=20.0))
    """

    def __init__(self, encoder: TextEncoder | None = None, bank_path: str | Path | None = None,
                 min_similarity: float = MIN_SIMILARITY):
        self.encoder: TextEncoder = encoder if encoder is not None else MiniLMEncoder()
        self.bank = load_bank(bank_path)
        self.min_similarity = float(min_similarity)
        self._bank_emb: torch.Tensor | None = None
        self._speller: rules.SpellChecker | None = None

    # ------------------------------------------------------------------ resources
    @property
    def bank_embeddings(self) -> torch.Tensor:
        """float32 (B, D) unit-norm embeddings of the bank's core phrases (computed once)."""
        if self._bank_emb is None:
            self._bank_emb = _cached_embeddings(self.encoder, [e.core for e in self.bank])
        return self._bank_emb

    @property
    def speller(self) -> rules.SpellChecker:
        """Typo corrector whose targets are the bank's words and the rule words."""
        if self._speller is None:
            targets: set[str] = set()
            for e in self.bank:
                targets.update(rules.normalise_text(e.phrase).replace("-", " ").split())
            for group in (rules.NEGATION_WORDS, rules.FILLER_WORDS, rules.NEUTRAL_DEGREE_WORDS,
                          tuple(p for p, _ in rules.STRENGTH_WORDS), rules._VERBS):
                for p in group:
                    if re.fullmatch(r"[a-z]+", p):
                        targets.add(p)
            targets.update(("years", "year", "degrees", "older", "younger", "left", "right", "look", "turn"))
            self._speller = rules.SpellChecker(known=_known_words() | targets, targets=targets)
        return self._speller

    # ------------------------------------------------------------------ matching
    def match(self, cores: list[str]) -> list[list[Match]]:
        """Rank bank labels for each core phrase.

        Parameters
        ----------
        cores : list of str
            Normalised core phrases.

        Returns
        -------
        list of list of Match
            Per core, the best phrase of every label, best first.
        """
        if not cores:
            return []
        sims = self.encoder.encode(cores) @ self.bank_embeddings.T  # (S, B)
        out = []
        for row in sims:
            best: dict[str, Match] = {}
            for i in torch.argsort(row, descending=True).tolist():
                e = self.bank[i]
                if e.label not in best:
                    best[e.label] = Match(e, float(row[i]))
            out.append(sorted(best.values(), key=lambda m: -m.similarity))
        return out

    # ------------------------------------------------------------------ parsing
    def parse(self, text: str) -> ParsedInstruction:
        """Parse one instruction.

        Parameters
        ----------
        text : str
            The instruction ("make her smile a bit and look 20 years older").

        Returns
        -------
        ParsedInstruction
            ``targets`` in order of mention; or no targets and ``followup`` set for
            session commands ("more", "undo").

        Raises
        ------
        UnsupportedInstruction
            Empty, letter-less, too long, unmatched or unsupported instructions; its
            ``supported`` lists the attributes with an example each and ``nearest``
            names the closest supported edit.
        """
        result = self.parse_many([text])[0]
        if isinstance(result, UnsupportedInstruction):
            raise result
        return result

    def parse_many(self, texts: list[str]) -> list[ParsedInstruction | UnsupportedInstruction]:
        """Parse several instructions with one batched encoder call.

        Parameters
        ----------
        texts : list of str
            N instructions.

        Returns
        -------
        list
            N results, each a :class:`ParsedInstruction` or the
            :class:`UnsupportedInstruction` that :meth:`parse` would raise.
        """
        prepared: list[object] = []
        cores: list[str] = []
        for text in texts:
            try:
                item = self._prepare(text)
            except UnsupportedInstruction as e:
                item = e
            prepared.append(item)
            if isinstance(item, tuple):
                cores.extend(s.core for s in item[1] if s.core)
        ranked_all = iter(self.match(cores))
        out: list[ParsedInstruction | UnsupportedInstruction] = []
        for text, item in zip(texts, prepared):
            if not isinstance(item, tuple):
                out.append(item)  # a follow-up or an early refusal
                continue
            clean, segments = item
            ranked = [next(ranked_all) if s.core else [] for s in segments]
            try:
                out.append(self._finish(text, clean, segments, ranked))
            except UnsupportedInstruction as e:
                out.append(e)
        return out

    __call__ = parse

    def supported(self) -> list[str]:
        """Every attribute with an example, e.g. ``"happy (smile / stop smiling)"``."""
        return [f"{a} ({SUPPORTED_EXAMPLES[a]})" for a in ATTRIBUTES]

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _rule_followup(clean: str) -> FollowUp | None:
        t = re.sub(r"[,!?.]|\bplease\b|\bnow\b", " ", clean)
        t = re.sub(r"\s+", " ", t).strip()
        if re.fullmatch(r"(?:that'?s |it'?s |that is |it is |this is )?(?:a bit |way )?(?:too|overly) "
                        r"(?:much|far|strong|extreme)", t):
            return FollowUp("reverse", 0.5)
        if re.fullmatch(r"(?:oops |no |wait )?(?:undo|undo (?:that|it|this|the last (?:edit|change|step))|"
                        r"revert(?: that| it)?|never ?mind|go back|step back|cancel(?: that| it)?)", t):
            return FollowUp("undo")
        if re.fullmatch(r"reset(?: (?:it|all|everything))?|start (?:over|again|afresh)|restart|"
                        r"(?:go )?back to (?:the )?(?:original|start|beginning)(?: image| photo| face)?", t):
            return FollowUp("reset")
        rest, strength = rules.extract_strength(t)
        words = set(rest.split())
        if not words:
            return None
        if words <= {"more", "even", "again", "once", "do", "it", "that", "this", "same", "the"} and \
                words & {"more", "again"}:
            return FollowUp("repeat", strength)
        if words <= {"less", "even", "a", "do", "it", "that", "this"} and "less" in words:
            return FollowUp("reverse", strength)
        return None

    def _prepare(self, raw: str) -> ParsedInstruction | tuple[str, list[_Segment]]:
        """Rules only: clean, check, detect rule follow-ups, split and strip segments."""
        if not isinstance(raw, str):
            raise UnsupportedInstruction(f"instruction must be text, got {type(raw).__name__}",
                                         self.supported(), None)
        if len(raw) > MAX_CHARS:
            self._refuse(raw, f"instruction is too long ({len(raw)} characters; at most {MAX_CHARS})")
        clean = rules.normalise_text(raw)
        if not re.search(r"[a-z]", clean):
            self._refuse(raw, "instruction is empty" if not clean else "instruction has no words")
        clean = self.speller.correct(rules.words_to_numbers(clean))
        follow = self._rule_followup(clean)
        if follow is not None:
            return ParsedInstruction(raw, (), 1.0, meta={"clean": clean}, followup=follow)
        segments = self._segments(clean)
        if not segments:
            self._refuse(raw, "no edit found")
        return clean, segments

    def _finish(self, raw: str, clean: str, segments: list[_Segment],
                ranked: list[list[Match]]) -> ParsedInstruction:
        """Turn matched segments into targets (or a follow-up, or a refusal)."""
        targets: list[EditTarget] = []
        confidences: list[float] = []
        for seg, seg_ranked in zip(segments, ranked):
            result = self._segment_target(raw, seg, seg_ranked, len(segments))
            if isinstance(result, FollowUp):
                return ParsedInstruction(raw, (), round(seg_ranked[0].similarity, 4), meta={"clean": clean},
                                         followup=result)
            target, conf = result
            confidences.append(conf)
            if any(t.attribute == target.attribute and t.direction != target.direction for t in targets):
                self._refuse(raw, f"the instruction contradicts itself about {target.attribute}")
            clash = next((t for t in targets if opposed(t, target)), None)
            if clash is not None:
                self._refuse(raw, f"the instruction contradicts itself: a face cannot look more {clash.attribute} "
                                  f"and more {target.attribute} at once (ask for one)")
            if target not in targets:
                targets.append(target)
        return ParsedInstruction(raw, tuple(targets), round(min(confidences), 4), meta={"clean": clean})

    def _segments(self, clean: str) -> list[_Segment]:
        segments: list[_Segment] = []
        for part in rules.split_compound(clean):
            rest, strength = rules.extract_strength(part)
            rest, amount = rules.extract_amount(rest)
            rest, flipped = rules.extract_negation(rest)
            core = rules.remove_fillers(rest)
            if segments and rules.is_bare_body_part(core):
                verb = rules.leading_verb(segments[-1].core)
                if verb:
                    core = f"{verb} {core}"
                    flipped = flipped or segments[-1].flipped
            if not core and amount is None:
                if strength != 1.0 and segments:  # "smile, a lot": a degree for the previous part
                    segments[-1].strength = strength
                    continue
                if part.strip(" !?.") in ("please", ""):
                    continue
            segments.append(_Segment(part, core, strength, amount, flipped))
        return segments

    def _segment_target(self, raw: str, seg: _Segment, ranked: list[Match],
                        n_segments: int) -> tuple[EditTarget, float] | FollowUp:
        amount = seg.amount
        if amount is not None and amount.kind == "age_set":
            lo, hi = AGE_RANGE
            if not lo <= amount.value <= hi:
                self._refuse(raw, f"age {amount.value:g} is outside {lo:g}–{hi:g} years", ranked)
            return EditTarget("age", "set", amount=amount.value), 1.0
        if not ranked:
            if amount is not None and amount.kind == "years":  # "add 5 years"
                return EditTarget("age", "less" if seg.flipped else "more", seg.strength, amount.value), 1.0
            self._refuse(raw, f"{seg.text!r} names no edit", ranked)
        best = ranked[0]
        label = best.entry.label.split(":")
        if amount is not None and amount.kind == "years":
            # the number fixes the attribute; the words (older/younger/add/take off) fix the direction
            age = next((m for m in ranked if m.entry.label.startswith("age:")), None)
            direction = age.entry.label.split(":")[1] if age and best.entry.label.startswith("age:") else "more"
            if re.search(r"\b(?:younger|off|take|subtract|minus|fewer)\b", seg.text):
                direction = "less"
            if seg.flipped:
                direction = "less" if direction == "more" else "more"
            return EditTarget("age", direction, seg.strength, amount.value), max(best.similarity, 0.0)
        if best.similarity < self.min_similarity:
            self._refuse(raw, f"{seg.text!r} matches no supported edit (best similarity {best.similarity:.2f} "
                              f"< {self.min_similarity:.2f})", ranked)
        if label[0] == "unsupported":
            self._refuse(raw, f"{seg.text!r} asks for {label[1].replace('_', ' / ')}, which cannot be edited "
                              f"(nearest phrase {best.entry.phrase!r})", ranked)
        if label[0] == "followup":
            if n_segments > 1 or seg.flipped:
                self._refuse(raw, f"{seg.text!r} is a session command and cannot be combined with edits", ranked)
            return FollowUp(label[1], seg.strength)
        attribute, direction = label[0], label[1]
        if direction == "set":
            if seg.flipped:
                self._refuse(raw, f"{seg.text!r}: cannot negate setting {attribute}", ranked)
            return EditTarget(attribute, "set", amount=float(label[2])), best.similarity
        sign = rules.pose_sign(attribute, seg.text)
        if sign:
            direction = "more" if sign > 0 else "less"
        if seg.flipped:
            direction = "less" if direction == "more" else "more"
        value = None
        if amount is not None and amount.kind == "degrees":
            if attribute not in ("yaw", "pitch"):
                self._refuse(raw, f"{seg.text!r}: degrees apply only to head pose (yaw, pitch)", ranked)
            if not 0 < amount.value <= MAX_DEGREES:
                self._refuse(raw, f"{amount.value:g} degrees is outside (0, {MAX_DEGREES:g}]", ranked)
            value = amount.value
        return EditTarget(attribute, direction, seg.strength, value), best.similarity

    def _refuse(self, raw: str, reason: str, ranked: list[Match] | None = None) -> None:
        nearest = None
        if ranked:
            edit = next((m for m in ranked if m.entry.kind == "edit"), None)
            if edit is not None:
                nearest = f"{_describe_label(edit.entry.label)} (e.g. {edit.entry.phrase!r})"
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        msg = f"unsupported instruction {shown!r}: {reason}"
        if nearest:
            msg += f"; nearest supported edit: {nearest}"
        msg += "; supported: " + ", ".join(ATTRIBUTES)
        raise UnsupportedInstruction(msg, self.supported(), nearest)


@dataclass
class _Segment:
    text: str
    core: str
    strength: float
    amount: rules.Amount | None
    flipped: bool


def _describe_label(label: str) -> str:
    parts = label.split(":")
    if parts[1] == "set":
        return f"{parts[0]}: set to {parts[2]}"
    return f"{parts[0]}: {parts[1]}"


@functools.lru_cache(maxsize=1)
def _known_words() -> frozenset[str]:
    """Whole words of the MiniLM word-piece vocabulary (a ~20k-word English list); empty if absent."""
    try:
        from editable_deepsc.text.encoder import minilm_model_dir

        vocab = (minilm_model_dir() / "vocab.txt").read_text(encoding="utf-8").split()
    except Exception:  # noqa: BLE001 - the spell checker then corrects more eagerly, nothing breaks
        return frozenset()
    return frozenset(w for w in vocab if w.isalpha() and len(w) > 1)


def _cached_embeddings(encoder: TextEncoder, phrases: list[str]) -> torch.Tensor:
    """``encoder.encode(phrases)``, cached on disk for the MiniLM encoder (keyed by model + phrases).

    The cache lives in the user cache folder (``$EDSC_CACHE`` or the platform's);
    it only saves start-up time: a missing or unreadable cache is recomputed.
    """
    if not isinstance(encoder, MiniLMEncoder):
        return encoder.encode(phrases)
    import hashlib

    from editable_deepsc.paths import cache_dir
    from editable_deepsc.zoo.registry import save_state_dict

    key = hashlib.sha256(("\n".join([str(encoder.model_dir)] + phrases)).encode()).hexdigest()[:24]
    path = cache_dir() / "text" / f"bank-{key}.safetensors"
    if path.is_file():
        try:
            from safetensors.torch import load_file

            emb = load_file(str(path))["embeddings"]
            if emb.shape[0] == len(phrases):
                return emb
        except Exception:  # noqa: BLE001 - a broken cache is just recomputed
            pass
    emb = encoder.encode(phrases)
    try:
        save_state_dict({"embeddings": emb}, path)
    except OSError:
        pass
    return emb


@functools.lru_cache(maxsize=1)
def default_parser() -> InstructionParser:
    """A process-wide :class:`InstructionParser` with the default encoder and bank (built lazily)."""
    return InstructionParser()


def parse_instruction(text: str, parser: InstructionParser | None = None) -> ParsedInstruction:
    """Parse an edit instruction into edit targets.

    Parameters
    ----------
    text : str
        Free-text instruction, e.g. ``"make her smile a bit more"``.
    parser : InstructionParser, optional
        Parser to use (default: :func:`default_parser`).

    Returns
    -------
    ParsedInstruction

    Raises
    ------
    UnsupportedInstruction
        For refused instructions (see :meth:`InstructionParser.parse`).
    """
    return (parser or default_parser()).parse(text)
