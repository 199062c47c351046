"""Token ids -> the structure of a parallel-thinking sequence: positions, blocks, paths, mask.

This is the one place that decides how a block is laid out, used by SFT, the RL log-prob pass,
the generation engine's tests and the analysis. Imports torch only.

The rule (structured mode, DESIGN.md "Unseen"), scanning from `start` (the first response token):
- main text is numbered sequentially;
- `<Parallel>` at position q opens a block; each `<Path>` inside it restarts at q + 1, so all
  paths of a block start at the same position, and a path never sees a sibling path;
- `</Parallel>` takes position (furthest position of any path of the block) + 1, and everything
  after it attends to every path (plain causal attention);
- tags inside a path (even `<Parallel>`) are plain path tokens: blocks do not nest;
- tokens inside a block but outside any path ("glue"; the engine never makes them) continue after
  the furthest path position, belong to no path, and are visible to later paths;
- tokens before `start` (the prompt, which may quote the tags) are plain.
Causal mode ("Seen") uses the same scan for block and path ids but sequential positions and the
plain causal mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from parallel_r1.format.tags import TagIds

NO_ID = -1

_MAIN, _BLOCK, _PATH = 0, 1, 2


@dataclass(frozen=True)
class Layout:
    """Structure of one sequence; every list has one entry per token ([T])."""

    position_ids: tuple[int, ...]  # [T] multiverse positions (sequential in causal mode)
    block_id: tuple[int, ...]  # [T] 0, 1, ... for tokens of a block (tags included), -1 outside
    path_id: tuple[int, ...]  # [T] 0, 1, ... within its block for path tokens, -1 otherwise
    structured: bool
    start: int  # index of the first token scanned for structure (the response start)

    def __len__(self) -> int:
        return len(self.position_ids)

    @property
    def num_blocks(self) -> int:
        return max(self.block_id, default=NO_ID) + 1

    def critical_path_length(self) -> int:
        """Tokens on the longest path through the response: its sequential depth.

        Measured with multiverse positions whatever the mode, so a causal ("Seen") rollout
        reports the depth it would have had if its paths had run side by side.
        """
        if len(self) <= self.start:
            return 0
        positions = self.position_ids
        if not self.structured:
            positions = _scan(self.block_id, self.path_id, self.start)
        return max(positions[self.start:]) - self.start + 1


def layout_from_ids(ids: Sequence[int], tags: TagIds, *, start: int = 0,
                    structured: bool = True) -> Layout:
    """Derive the structure of a token sequence.

    Args:
        ids: token ids [T] (prompt followed by response).
        tags: token ids of the six tags in this tokenizer.
        start: index of the first response token; tags before it are plain text.
        structured: multiverse positions (True) or sequential positions (False).

    Returns:
        A Layout with positions, block ids and path ids, each [T].
    """
    block_id, path_id = _ids(ids, tags, start)
    if structured:
        positions = _scan(block_id, path_id, start)
    else:
        positions = tuple(range(len(ids)))
    return Layout(positions, block_id, path_id, structured, start)


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


def attention_allowed(layout: Layout) -> torch.Tensor:
    """Boolean attention mask of one sequence: [T, T], True where query i may attend key j."""
    n = len(layout)
    causal = torch.ones(n, n, dtype=torch.bool).tril()  # [T, T]
    if not layout.structured:
        return causal
    block = torch.tensor(layout.block_id)  # [T]
    path = torch.tensor(layout.path_id)  # [T]
    return causal & ~_siblings(block[None], path[None])[0]


def _siblings(block: torch.Tensor, path: torch.Tensor) -> torch.Tensor:
    """[B, T, T] True where i and j are tokens of different paths of the same block."""
    in_path = path != NO_ID  # [B, T]
    same_block = block[:, :, None] == block[:, None, :]  # [B, T, T]
    other_path = path[:, :, None] != path[:, None, :]  # [B, T, T]
    return same_block & other_path & in_path[:, :, None] & in_path[:, None, :]


def batch_structure(input_ids: torch.Tensor, token_mask: torch.Tensor, tags: TagIds,
                    response_start: Sequence[int] | torch.Tensor | int, *, structured: bool = True,
                    dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Position ids and a 4-D additive attention mask for a padded batch.

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
    if isinstance(response_start, int):
        response_start = [response_start] * bsz
    starts = [int(s) for s in response_start]
    position_ids = torch.zeros(bsz, seq, dtype=torch.long)  # [B, T]
    block = torch.full((bsz, seq), NO_ID, dtype=torch.long)  # [B, T]
    path = torch.full((bsz, seq), NO_ID, dtype=torch.long)  # [B, T]
    for b in range(bsz):
        idx = real[b].nonzero().flatten()  # [T_b] indices of real tokens
        ids = input_ids[b, idx].tolist()
        start = int((idx < starts[b]).sum())  # response start among the real tokens
        layout = layout_from_ids(ids, tags, start=start, structured=structured)
        position_ids[b, idx] = torch.tensor(layout.position_ids, dtype=torch.long)
        block[b, idx] = torch.tensor(layout.block_id, dtype=torch.long)
        path[b, idx] = torch.tensor(layout.path_id, dtype=torch.long)
    allowed = torch.ones(seq, seq, dtype=torch.bool).tril()[None] & real[:, None, :]  # [B, T, T]
    if structured:
        allowed &= ~_siblings(block, path)
    allowed |= torch.eye(seq, dtype=torch.bool)[None]  # padding rows see themselves
    mask = torch.zeros(bsz, 1, seq, seq, dtype=dtype)  # [B, 1, T, T]
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    return position_ids, mask
