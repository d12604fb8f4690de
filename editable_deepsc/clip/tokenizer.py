"""CLIP's byte-level BPE tokenizer, reading the usual merges file.

The file is the one OpenAI CLIP and OpenCLIP ship (``bpe_simple_vocab_16e6.txt.gz``):
gzip-compressed (or plain) text, a ``#version`` header line, then one merge
``"a b"`` per line in priority order. The vocabulary is the 256 byte symbols, the
same with the end-of-word mark ``</w>``, one symbol per merge used, and the two
special tokens ``<|startoftext|>`` and ``<|endoftext|>`` — 49,408 entries for
the usual file (its first 48,894 merges).

Text cleaning is HTML-unescape, whitespace collapse and lower-casing; the
original also runs ``ftfy`` (mojibake repair), which is not used here, so text
with broken encodings may tokenize differently.
"""

from __future__ import annotations

import functools
import gzip
import html
from pathlib import Path

import regex
import torch

from editable_deepsc.errors import CheckpointError

SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
USUAL_MERGES = 49152 - 256 - 2
"""Merges of the usual file that CLIP uses (vocabulary 49,408)."""

_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


@functools.lru_cache(maxsize=1)
def byte_symbols() -> dict[int, str]:
    """Map every byte to a printable unicode character (printable Latin-1 bytes map to themselves)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def read_merges(path: str | Path, max_merges: int | None = USUAL_MERGES) -> list[tuple[str, str]]:
    """Read a CLIP merges file (gzip or plain text, first line a header).

    Parameters
    ----------
    path : str or Path
        The file.
    max_merges : int or None
        Use at most this many merges (CLIP uses the first 48,894); None = all.

    Returns
    -------
    list of (str, str)

    Raises
    ------
    CheckpointError
        If the file is missing or a line is not two symbols.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw).decode("utf-8") if raw[:2] == b"\x1f\x8b" else raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read CLIP vocabulary {path}: {e}") from e
    lines = text.split("\n")[1:]
    merges = []
    for n, line in enumerate(lines, 2):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise CheckpointError(f"{path}:{n}: a merge line needs two symbols, got {line!r}")
        merges.append((parts[0], parts[1]))
        if max_merges is not None and len(merges) >= max_merges:
            break
    return merges


class ClipTokenizer:
    """Byte-level BPE tokenizer compatible with OpenAI CLIP / OpenCLIP.

    Parameters
    ----------
    merges_path : str or Path
        The merges file (see module docstring).
    max_merges : int or None
        Merges to use (default: CLIP's 48,894; fewer if the file has fewer).
    context_length : int
        Default token-sequence length for :meth:`tokenize` (77 for CLIP).
    """

    def __init__(self, merges_path: str | Path, max_merges: int | None = USUAL_MERGES, context_length: int = 77):
        merges = read_merges(merges_path, max_merges)
        symbols = list(byte_symbols().values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT, EOT]
        self.encoder: dict[str, int] = {tok: i for i, tok in enumerate(vocab)}
        self.decoder: dict[int, str] = {i: tok for tok, i in self.encoder.items()}
        self.ranks: dict[tuple[str, str], int] = {m: i for i, m in enumerate(merges)}
        self.byte_decoder = {c: b for b, c in byte_symbols().items()}
        self.sot_id = self.encoder[SOT]
        self.eot_id = self.encoder[EOT]
        self.context_length = int(context_length)
        self._cache: dict[str, tuple[str, ...]] = {SOT: (SOT,), EOT: (EOT,)}

    @property
    def vocab_size(self) -> int:
        """Number of token ids (49,408 for the usual file)."""
        return len(self.encoder)

    def bpe(self, word: str) -> tuple[str, ...]:
        """Split one pre-token (already mapped to byte symbols) into BPE symbols; the last ends in ``</w>``."""
        if word in self._cache:
            return self._cache[word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), None), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            ranked = [(r, i) for r, i in pairs if r is not None]
            if not ranked:
                break
            best = min(ranked)[0]
            a, b = next((parts[i], parts[i + 1]) for r, i in ranked if r == best)
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        out = tuple(parts)
        if len(self._cache) < 100_000:
            self._cache[word] = out
        return out

    @staticmethod
    def clean(text: str) -> str:
        """HTML-unescape (twice), collapse whitespace, strip, lower-case."""
        text = html.unescape(html.unescape(text))
        return " ".join(text.split()).lower()

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no start/end tokens)."""
        table = byte_symbols()
        ids: list[int] = []
        for piece in _PATTERN.findall(self.clean(text)):
            symbols = "".join(table[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[s] for s in self.bpe(symbols))
        return ids

    def decode(self, ids: list[int]) -> str:
        """Text of token ids (special tokens dropped, ``</w>`` as spaces)."""
        data = bytearray()
        for i in ids:
            if i in (self.sot_id, self.eot_id):
                continue
            tok = self.decoder[i]
            end = tok.endswith("</w>")
            data.extend(self.byte_decoder[c] for c in (tok[:-4] if end else tok))
            if end:
                data.extend(b" ")
        return bytes(data).decode("utf-8", errors="replace").strip()

    def tokenize(self, texts: str | list[str], context_length: int | None = None) -> torch.Tensor:
        """Token-id matrix for the text tower.

        Parameters
        ----------
        texts : str or list of str
            N texts.
        context_length : int, optional
            Sequence length L (default: the tokenizer's). Longer texts are truncated,
            keeping the end-of-text token last.

        Returns
        -------
        Tensor
            int64 (N, L): ``<|startoftext|>``, tokens, ``<|endoftext|>``, zero padding.
        """
        if isinstance(texts, str):
            texts = [texts]
        length = int(context_length or self.context_length)
        out = torch.zeros(len(texts), length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot_id] + self.encode(text)[: length - 2] + [self.eot_id]
            out[row, : len(ids)] = torch.tensor(ids)
        return out
