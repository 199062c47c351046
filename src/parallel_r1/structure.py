"""Token ids -> the structure of a parallel-thinking sequence: positions, blocks, paths, mask.

This is the one place that decides how a block is laid out, used by SFT, the RL log-prob pass,
the generation engine's tests and the analysis. Imports torch only. Three layouts:

- causal ("Seen"): the tags are plain tokens; sequential positions, the plain causal mask.
- structured ("Unseen"), scanning from `start` (the first response token):
  main text is numbered sequentially; `<Parallel>` at position q opens a block; each `<Path>`
  restarts at q + 1, so all paths of a block start at the same position, and a path never sees a
  sibling path; `</Parallel>` takes position (furthest position of any path) + 1, and everything
  after it attends to every path. Tags inside a path (even `<Parallel>`) are plain path tokens:
  blocks do not nest. Tokens inside a block but outside any path ("glue"; the engine never makes
  them) continue after the furthest path position, belong to no path and are visible to later
  paths.
- threads (what a stock engine samples): every path is its own request continuing the shared
  prefix through `<Parallel>`, so a path restarts at q + 1 and sees the prefix and itself; after
  the block the model continues over the plain concatenation of the paths with plain positions.
  The trainer runs one packed sequence (`pack`): the plain sequence with the plain causal mask,
  which is every context the sampler saw outside the paths, followed by a copy of each path
  beyond the first in its isolated context (positions q + 1 ..., attending to the prefix through
  `<Parallel>` and to itself). Path 0's isolated context is its plain one, so it is not copied.
  Each token's log-prob is read at its `predictor`: the previous token of the context it was
  sampled in (a path opener's predictor is its block's `<Parallel>`).

Tokens before `start` (the prompt, which may quote the tags) are plain in every layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from parallel_r1.format.tags import TagIds

NO_ID = -1
LAYOUTS = ("causal", "structured", "threads")

_MAIN, _BLOCK, _PATH = 0, 1, 2


@dataclass(frozen=True)
class Layout:
    """Structure of one sequence; every list has one entry per token ([T])."""

    position_ids: tuple[int, ...]  # [T] position each token had in the context it was sampled in
    block_id: tuple[int, ...]  # [T] 0, 1, ... for tokens of a block (tags included), -1 outside
    path_id: tuple[int, ...]  # [T] 0, 1, ... within its block for path tokens, -1 otherwise
    kind: str  # "causal" | "structured" | "threads"
    start: int  # index of the first token scanned for structure (the response start)

    def __len__(self) -> int:
        return len(self.position_ids)

    @property
    def structured(self) -> bool:
        return self.kind == "structured"

    @property
    def num_blocks(self) -> int:
        return max(self.block_id, default=NO_ID) + 1

    def critical_path_length(self) -> int:
        """Tokens on the longest path through the response: its sequential depth.

        Measured with multiverse positions whatever the layout, so a causal ("Seen") or threads
        rollout reports the depth it would have had if its paths had run side by side.
        """
        if len(self) <= self.start:
            return 0
        positions = self.position_ids
        if not self.structured:
            positions = _scan(self.block_id, self.path_id, self.start)
        return max(positions[self.start:]) - self.start + 1


def layout_from_ids(ids: Sequence[int], tags: TagIds, *, start: int = 0,
                    layout: str = "structured") -> Layout:
    """Derive the structure of a token sequence in one of the three layouts.

    Args:
        ids: token ids [T] (prompt followed by response).
        tags: token ids of the six tags in this tokenizer.
        start: index of the first response token; tags before it are plain text.
        layout: "causal", "structured" or "threads" (see the module docstring).

    Returns:
        A Layout with positions, block ids and path ids, each [T].

    Raises:
        ValueError: an unknown layout.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    block_id, path_id = _ids(ids, tags, start)
    if layout == "structured":
        positions = _scan(block_id, path_id, start)
    elif layout == "threads":
        positions = _threads_positions(block_id, path_id)
    else:
        positions = tuple(range(len(ids)))
    return Layout(positions, block_id, path_id, layout, start)


def _ids(ids: Sequence[int], tags: TagIds, start: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    block_ids, path_ids = [NO_ID] * len(ids), [NO_ID] * len(ids)
    state, block, path = _MAIN, NO_ID, NO_ID
    for i in range(start, len(ids)):
        tok = ids[i]
        if state == _MAIN:
            if tok == tags.parallel_open:
                state, block, path = _BLOCK, block + 1, NO_ID
                block_ids[i] = block
        elif state == _BLOCK:
            block_ids[i] = block
            if tok == tags.path_open:
                state, path = _PATH, path + 1
                path_ids[i] = path
            elif tok == tags.parallel_close:
                state = _MAIN
        else:  # inside a path: everything is a path token until </Path>
            block_ids[i], path_ids[i] = block, path
            if tok == tags.path_close:
                state = _BLOCK
    return tuple(block_ids), tuple(path_ids)


def _scan(block_id: Sequence[int], path_id: Sequence[int], start: int) -> tuple[int, ...]:
    """Multiverse positions from block and path ids (see the module docstring)."""
    positions = list(range(min(start, len(block_id))))
    nxt = start  # next sequential position in the main text
    q = furthest = NO_ID  # position of the open block's <Parallel>, furthest position in it
    cur_block, cur_path, path_pos = NO_ID, NO_ID, 0
    for i in range(start, len(block_id)):
        b, p = block_id[i], path_id[i]
        if b == NO_ID:  # main text
            pos = nxt
        elif b != cur_block:  # <Parallel> of a new block
            cur_block, cur_path, q = b, NO_ID, nxt
            pos = furthest = q
        elif p == NO_ID:  # glue or </Parallel>: after the furthest path token
            pos = furthest = furthest + 1
        else:
            if p != cur_path:  # <Path>: restart right after <Parallel>
                cur_path, path_pos = p, q + 1
            pos, path_pos = path_pos, path_pos + 1
            furthest = max(furthest, pos)
        positions.append(pos)
        nxt = pos + 1 if (b == NO_ID or p == NO_ID) else max(nxt, furthest + 1)
    return tuple(positions)


def _isolated_paths(block_id: Sequence[int], path_id: Sequence[int]
                    ) -> list[tuple[int, list[int]]]:
    """(index of the block's <Parallel>, indices of the path's tokens) for every path k >= 1."""
    opener: dict[int, int] = {}
    paths: dict[tuple[int, int], list[int]] = {}
    for i, (b, p) in enumerate(zip(block_id, path_id)):
        if b != NO_ID:
            opener.setdefault(b, i)
        if p >= 1:
            paths.setdefault((b, p), []).append(i)
    return [(opener[b], members) for (b, _), members in paths.items()]


def _threads_positions(block_id: Sequence[int], path_id: Sequence[int]) -> tuple[int, ...]:
    """Plain positions, except that every path beyond the first restarts after `<Parallel>`."""
    positions = list(range(len(block_id)))
    for q, members in _isolated_paths(block_id, path_id):
        for j, i in enumerate(members):
            positions[i] = q + 1 + j
    return tuple(positions)


@dataclass(frozen=True)
class Packed:
    """The sequence a trainer runs for one layout ([T'] entries; T' = T unless threads)."""

    source: tuple[int, ...]  # [T'] index in the plain sequence of each packed token
    position_ids: tuple[int, ...]  # [T']
    context_end: tuple[int, ...]  # [T'] last plain index a copied path token sees (own index else)
    group: tuple[int, ...]  # [T'] id of the isolated path copy a token belongs to, -1 if plain
    predictor: tuple[int, ...]  # [T] packed index whose logits give plain token i (-1 for i = 0)
    kind: str
    block_id: tuple[int, ...]  # [T'] of the source tokens (for the structured mask)
    path_id: tuple[int, ...]  # [T']

    def __len__(self) -> int:
        return len(self.source)


def pack(layout: Layout) -> Packed:
    """The packed training sequence of a layout: the plain sequence, plus (threads) a copy of
    each path beyond the first in its isolated context. See the module docstring."""
    n = len(layout)
    source, context_end, group = list(range(n)), list(range(n)), [NO_ID] * n
    predictor = [i - 1 for i in range(n)]
    positions = list(range(n)) if layout.kind == "threads" else list(layout.position_ids)
    if layout.kind == "threads":
        for g, (q, members) in enumerate(_isolated_paths(layout.block_id, layout.path_id)):
            prev = q  # a path opener is predicted at its block's <Parallel>
            for i in members:
                predictor[i], prev = prev, len(source)
                source.append(i)
                positions.append(layout.position_ids[i])
                context_end.append(q)
                group.append(g)
    return Packed(tuple(source), tuple(positions), tuple(context_end), tuple(group),
                  tuple(predictor), layout.kind, tuple(layout.block_id[i] for i in source),
                  tuple(layout.path_id[i] for i in source))


def _packed_allowed(packed: Packed, num_plain: int) -> torch.Tensor:
    """[T', T'] visibility of a packed sequence (see the module docstring)."""
    idx = torch.arange(len(packed))  # [T']
    causal = idx[None, :] <= idx[:, None]  # [T', T']
    if packed.kind == "causal":
        return causal
    if packed.kind == "structured":
        block = torch.tensor(packed.block_id)  # [T']
        path = torch.tensor(packed.path_id)  # [T']
        return causal & ~_siblings(block[None], path[None])[0]
    ctx = torch.tensor(packed.context_end)  # [T']
    grp = torch.tensor(packed.group)  # [T']
    plain = (idx[None, :] < num_plain) & (idx[None, :] <= ctx[:, None])  # [T', T']
    copy = (grp[:, None] == grp[None, :]) & (grp[:, None] >= 0) & causal  # [T', T']
    return plain | copy


def attention_allowed(layout: Layout) -> torch.Tensor:
    """Boolean attention mask of one sequence's packed form: [T', T'], True where query i may
    attend key j (T' = T for the causal and structured layouts)."""
    return _packed_allowed(pack(layout), len(layout))


def _siblings(block: torch.Tensor, path: torch.Tensor) -> torch.Tensor:
    """[B, T, T] True where i and j are tokens of different paths of the same block."""
    in_path = path != NO_ID  # [B, T]
    same_block = block[:, :, None] == block[:, None, :]  # [B, T, T]
    other_path = path[:, :, None] != path[:, None, :]  # [B, T, T]
    return same_block & other_path & in_path[:, :, None] & in_path[:, None, :]


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, T, T] bool -> [B, 1, T, T] additive mask: 0 where allowed, the dtype's min elsewhere."""
    mask = torch.zeros(allowed.shape[0], 1, *allowed.shape[1:], dtype=dtype)
    return mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)


def batch_structure(input_ids: torch.Tensor, token_mask: torch.Tensor, tags: TagIds,
                    response_start: Sequence[int] | torch.Tensor | int, *, structured: bool = True,
                    dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Position ids and a 4-D additive attention mask for a padded batch (causal or structured).

    Padding may sit anywhere (TRL left-pads prompts and right-pads completions); the real tokens
    of a row, in order, form its sequence. A real token never attends to padding; a padding
    token attends to itself only, so no row of the mask is fully blocked (no NaN in softmax).

    Args:
        input_ids: [B, T] token ids.
        token_mask: [B, T] 1 for real tokens, 0 for padding.
        tags: token ids of the six tags.
        response_start: per row, the index (in `input_ids`) of the first response token.
        structured: multiverse positions and path isolation, or plain causal.
        dtype: dtype of the additive mask (the model's dtype).

    Returns:
        position_ids [B, T] (0 on padding) and mask [B, 1, T, T] with 0 where attention is
        allowed and `torch.finfo(dtype).min` where it is blocked.
    """
    bsz, seq = input_ids.shape
    real = token_mask.bool()  # [B, T]
    starts = _starts(response_start, bsz)
    position_ids = torch.zeros(bsz, seq, dtype=torch.long)  # [B, T]
    block = torch.full((bsz, seq), NO_ID, dtype=torch.long)  # [B, T]
    path = torch.full((bsz, seq), NO_ID, dtype=torch.long)  # [B, T]
    for b in range(bsz):
        idx = real[b].nonzero().flatten()  # [T_b] indices of real tokens
        start = int((idx < starts[b]).sum())  # response start among the real tokens
        layout = layout_from_ids(input_ids[b, idx].tolist(), tags, start=start,
                                 layout="structured" if structured else "causal")
        position_ids[b, idx] = torch.tensor(layout.position_ids, dtype=torch.long)
        block[b, idx] = torch.tensor(layout.block_id, dtype=torch.long)
        path[b, idx] = torch.tensor(layout.path_id, dtype=torch.long)
    allowed = torch.ones(seq, seq, dtype=torch.bool).tril()[None] & real[:, None, :]  # [B, T, T]
    if structured:
        allowed &= ~_siblings(block, path)
    allowed |= torch.eye(seq, dtype=torch.bool)[None]  # padding rows see themselves
    return position_ids, _additive(allowed, dtype)


def _starts(response_start: Sequence[int] | torch.Tensor | int, bsz: int) -> list[int]:
    if isinstance(response_start, int):
        return [response_start] * bsz
    return [int(s) for s in response_start]


@dataclass
class PackedBatch:
    """A padded batch in packed form, ready for one forward pass."""

    input_ids: torch.Tensor  # [B, T'] packed tokens, left-aligned, padded with 0 on the right
    position_ids: torch.Tensor  # [B, T']
    attention_mask: torch.Tensor  # [B, 1, T', T'] additive
    predictor: torch.Tensor  # [B, T] packed column whose logits give each input column; -1: none


def batch_packed(input_ids: torch.Tensor, token_mask: torch.Tensor, tags: TagIds,
                 response_start: Sequence[int] | torch.Tensor | int, *, layout: str,
                 dtype: torch.dtype = torch.float32) -> PackedBatch:
    """The packed form (`pack`) of every row of a padded batch, for a trainer's log-prob pass.

    Args:
        input_ids: [B, T] token ids, padding anywhere.
        token_mask: [B, T] 1 for real tokens.
        tags: token ids of the six tags.
        response_start: per row, the index (in `input_ids`) of the first response token.
        layout: "causal", "structured" or "threads".
        dtype: dtype of the additive mask.

    Returns:
        A PackedBatch: the log-prob of input column c of row b is read from the model's
        next-token distribution at packed column `predictor[b, c]` (-1 on padding and on a row's
        first real token).
    """
    bsz = input_ids.shape[0]
    real = token_mask.bool()  # [B, T]
    starts = _starts(response_start, bsz)
    rows, width = [], 1
    for b in range(bsz):
        idx = real[b].nonzero().flatten()  # [T_b]
        start = int((idx < starts[b]).sum())
        lay = layout_from_ids(input_ids[b, idx].tolist(), tags, start=start, layout=layout)
        rows.append((idx, lay, pack(lay)))
        width = max(width, len(rows[-1][2]))
    ids = torch.zeros(bsz, width, dtype=torch.long)  # [B, T']
    pos = torch.zeros(bsz, width, dtype=torch.long)  # [B, T']
    predictor = torch.full(input_ids.shape, NO_ID, dtype=torch.long)  # [B, T]
    allowed = torch.eye(width, dtype=torch.bool).repeat(bsz, 1, 1)  # [B, T', T'] pads: self
    for b, (idx, lay, packed) in enumerate(rows):
        n = len(packed)
        ids[b, :n] = input_ids[b, idx][torch.tensor(packed.source, dtype=torch.long)]
        pos[b, :n] = torch.tensor(packed.position_ids, dtype=torch.long)
        predictor[b, idx] = torch.tensor(packed.predictor, dtype=torch.long)
        allowed[b, :n, :n] = _packed_allowed(packed, len(lay))
    return PackedBatch(ids, pos, _additive(allowed, dtype), predictor)
