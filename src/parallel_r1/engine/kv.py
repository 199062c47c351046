"""A KV cache of independent rows that can be forked and joined without recomputation.

Every running segment (a sample's main text, or one path of a block) owns one row; a finished
segment's row stays (parked) while the program may continue it. A row holds the keys and values
of exactly the tokens its segment attends to, so path isolation is physical: a path's row holds
the shared prefix and its own tokens, never a sibling's. Forking copies a row's slots; joining
appends the paths' slots to one row. RoPE is applied before keys are cached, so slots can be
moved between rows without changing what they mean.

Rows are numbered [0, num_rows); the backend keeps its running rows in front, so a forward
runs over plain views. The model sees this object as its `past_key_values`: it calls `update`.
"""

from __future__ import annotations

from typing import Any

import torch


class RowCache:
    """Per-layer buffers [R_cap, H, L_cap, D] with a valid length per row."""

    def __init__(self, device: torch.device | str = "cpu", rows: int = 8, length: int = 256,
                 max_rows: int | None = None):
        self.device = torch.device(device)
        self.cap_rows, self.cap_len = rows, length
        self.max_rows = max_rows  # growth never allocates more rows than this
        self.max_slots: int | None = None  # rows x length growth keeps within (a KV budget)
        self.keys: list[torch.Tensor] = []  # per layer [R_cap, H, L_cap, D]
        self.values: list[torch.Tensor] = []
        self.lengths = torch.zeros(rows, dtype=torch.long)  # [R_cap] valid slots per row
        self.num_rows = 0
        self._rows = slice(0, 0)  # rows of the forward in progress
        self._slots: torch.Tensor | None = None  # [R, T] slot each new token is written to
        self._view_len = 0
        self._same: int | None = None

    # ---- rows -------------------------------------------------------------------------------
    def add_row(self) -> int:
        """Append one empty row; returns its index."""
        self._ensure(self.num_rows + 1, self.cap_len)
        self.num_rows += 1
        self.lengths[self.num_rows - 1] = 0
        return self.num_rows - 1

    def pop_row(self) -> None:
        """Drop the last row."""
        self.num_rows -= 1
        self.lengths[self.num_rows] = 0

    def swap(self, a: int, b: int) -> None:
        """Exchange the contents of rows a and b."""
        if a == b:
            return
        n = int(max(self.lengths[a], self.lengths[b]))
        for buf in (*self.keys, *self.values):
            tmp = buf[a, :, :n].clone()
            buf[a, :, :n] = buf[b, :, :n]
            buf[b, :, :n] = tmp
        self.lengths[[a, b]] = self.lengths[[b, a]]

    def copy_prefix(self, src: int, dst: int, length: int) -> None:
        """Make row dst hold the first `length` slots of row src."""
        self._ensure(self.cap_rows, length)
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

    def length(self, row: int) -> int:
        return int(self.lengths[row])

    # ---- one forward --------------------------------------------------------------------------
    def begin(self, rows: slice, slots: torch.Tensor, view_len: int,
              same_slot: int | None = None) -> None:
        """Prepare a forward over `rows` writing token t of row r to slot slots[r, t] ([R, T],
        on the cache's device); attention reads slots [0, view_len). `same_slot`: every row
        writes its one token there (a plain copy instead of a scatter)."""
        self._ensure(self.cap_rows, view_len)
        self._view_len = view_len
        self._rows, self._slots, self._same = rows, slots, same_slot

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Called by every attention layer: store key/value [R, H, T, D], return [R, H, L, D]."""
        if layer_idx == len(self.keys):
            shape = (self.cap_rows, key.shape[1], self.cap_len, key.shape[3])
            self.keys.append(torch.zeros(shape, dtype=key.dtype, device=self.device))
            self.values.append(torch.zeros(shape, dtype=value.dtype, device=self.device))
        kbuf = self.keys[layer_idx][self._rows]
        vbuf = self.values[layer_idx][self._rows]
        if self._same is not None:
            kbuf[:, :, self._same:self._same + 1] = key
            vbuf[:, :, self._same:self._same + 1] = value
        else:
            idx = self._slots[:, None, :, None].expand(-1, key.shape[1], -1, key.shape[3])
            kbuf.scatter_(2, idx, key)  # idx [R, H, T, D]
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
        if self.max_rows is not None:
            new_rows = max(rows, min(new_rows, self.max_rows))
        new_len = max(length, self.cap_len * 2 if length > self.cap_len else self.cap_len)
        if self.max_slots is not None:  # spare capacity only where the budget has room
            needed = rows if rows > self.cap_rows else self.num_rows
            new_len = max(length, min(new_len, self.max_slots // max(needed, 1)))
            new_rows = max(needed, min(new_rows, self.max_slots // new_len))
        kept = min(self.cap_rows, new_rows)  # rows past num_rows hold nothing
        for bufs in (self.keys, self.values):
            for i, buf in enumerate(bufs):
                grown = buf.new_zeros(new_rows, buf.shape[1], new_len, buf.shape[3])
                grown[:kept, :, :self.cap_len] = buf[:kept]
                bufs[i] = grown
        lengths = torch.zeros(new_rows, dtype=torch.long)
        lengths[:kept] = self.lengths[:kept]
        self.lengths = lengths
        self.cap_rows, self.cap_len = new_rows, new_len

    def memory_bytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in (*self.keys, *self.values))


def slot_bytes(model: Any) -> int:
    """Bytes of keys and values one token takes in the cache, over all layers."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else \
        model.config
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    size = torch.empty((), dtype=model.dtype).element_size()
    return 2 * cfg.num_hidden_layers * kv_heads * head_dim * size
