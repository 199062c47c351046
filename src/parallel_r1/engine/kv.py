"""A KV cache of independent rows that can be forked and joined without recomputation.

Every thread (a sample's main text, or one path of a block) owns one row. A row holds the keys
and values of exactly the tokens that thread attends to, so path isolation is physical: a path's
row holds the shared prefix and its own tokens, never a sibling's. Forking copies a row's slots;
joining appends the paths' slots to one row. RoPE is applied before keys are cached, so slots
can be moved between rows without changing what they mean.

Rows in use are kept contiguous ([0, num_rows)), so a forward over all of them uses plain views.
The model sees this object as its `past_key_values`: it only calls `update`.
"""

from __future__ import annotations

import torch


class RowCache:
    """Per-layer buffers [R_cap, H, L_cap, D] with a valid length per row."""

    def __init__(self, device: torch.device | str = "cpu", rows: int = 8, length: int = 256):
        self.device = torch.device(device)
        self.cap_rows, self.cap_len = rows, length
        self.keys: list[torch.Tensor] = []  # per layer [R_cap, H, L_cap, D]
        self.values: list[torch.Tensor] = []
        self.lengths = torch.zeros(rows, dtype=torch.long)  # [R_cap] valid slots per row
        self.num_rows = 0
        self._rows = slice(0, 0)  # rows of the forward in progress
        self._slots: torch.Tensor | None = None  # [R, T] slot each new token is written to
        self._view_len = 0

    # ---- rows -------------------------------------------------------------------------------
    def add_rows(self, n: int) -> list[int]:
        """Append n empty rows; returns their indices."""
        self._ensure(self.num_rows + n, self.cap_len)
        first = self.num_rows
        self.num_rows += n
        self.lengths[first:self.num_rows] = 0
        return list(range(first, self.num_rows))

    def copy_prefix(self, src: int, dst: int, length: int) -> None:
        """Make row dst hold the first `length` slots of row src."""
        for buf in (*self.keys, *self.values):
            buf[dst, :, :length] = buf[src, :, :length]
        self.lengths[dst] = length

    def append_slots(self, dst: int, src: int, start: int, end: int) -> None:
        """Append slots [start, end) of row src to the end of row dst."""
        n, at = end - start, int(self.lengths[dst])
        self._ensure(self.cap_rows, at + n)
        for buf in (*self.keys, *self.values):
            buf[dst, :, at:at + n] = buf[src, :, start:end]
        self.lengths[dst] = at + n

    def remove_row(self, row: int) -> int | None:
        """Free a row by moving the last row into it; returns the moved row's old index."""
        last = self.num_rows - 1
        moved = None
        if row != last:
            self.copy_prefix(last, row, int(self.lengths[last]))
            moved = last
        self.num_rows -= 1
        self.lengths[last] = 0
        return moved

    # ---- one forward --------------------------------------------------------------------------
    def begin(self, rows: slice, slots: torch.Tensor) -> None:
        """Prepare a forward over `rows` writing token t of row r to slot slots[r, t] ([R, T])."""
        self._view_len = int(slots.max()) + 1 if slots.numel() else 0
        self._view_len = max(self._view_len, int(self.lengths[rows].max()) if rows.stop > rows.start else 0)
        self._ensure(self.cap_rows, self._view_len)
        self._rows, self._slots = rows, slots.to(self.device)

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Called by every attention layer: store key/value [R, H, T, D], return [R, H, L, D]."""
        if layer_idx == len(self.keys):
            shape = (self.cap_rows, key.shape[1], self.cap_len, key.shape[3])
            self.keys.append(torch.zeros(shape, dtype=key.dtype, device=self.device))
            self.values.append(torch.zeros(shape, dtype=value.dtype, device=self.device))
        idx = self._slots[:, None, :, None].expand(-1, key.shape[1], -1, key.shape[3])  # [R,H,T,D]
        kbuf = self.keys[layer_idx][self._rows]
        vbuf = self.values[layer_idx][self._rows]
        kbuf.scatter_(2, idx, key)
        vbuf.scatter_(2, idx, value)
        return kbuf[:, :, :self._view_len], vbuf[:, :, :self._view_len]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.lengths[:self.num_rows].max()) if self.num_rows else 0

    @property
    def view_len(self) -> int:
        return self._view_len

    # ---- capacity -------------------------------------------------------------------------------
    def _ensure(self, rows: int, length: int) -> None:
        if rows <= self.cap_rows and length <= self.cap_len:
            return
        new_rows = max(rows, self.cap_rows * 2 if rows > self.cap_rows else self.cap_rows)
        new_len = max(length, self.cap_len * 2 if length > self.cap_len else self.cap_len)
        for bufs in (self.keys, self.values):
            for i, buf in enumerate(bufs):
                grown = buf.new_zeros(new_rows, buf.shape[1], new_len, buf.shape[3])
                grown[:self.cap_rows, :, :self.cap_len] = buf
                bufs[i] = grown
        lengths = torch.zeros(new_rows, dtype=torch.long)
        lengths[:self.cap_rows] = self.lengths
        self.lengths = lengths
        self.cap_rows, self.cap_len = new_rows, new_len

    def memory_bytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in (*self.keys, *self.values))
