"""The threads layout: positions as sampled, the packed sequence, and every context it rebuilds."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_structure import AC, AO, PC, PO, SC, SO, T

from parallel_r1.structure import attention_allowed, batch_packed, layout_from_ids, pack

WORKED = [1, 2, PO, AO, 5, 6, AC, AO, 7, AC, PC, 8, SO, 9, SC, 10]


def test_worked_example_positions_and_packing():
    layout = layout_from_ids(WORKED, T, layout="threads")
    # path 1 (indices 7..9) restarts after <Parallel> (position 2); the rest is plain
    assert layout.position_ids == (0, 1, 2, 3, 4, 5, 6, 3, 4, 5, 10, 11, 12, 13, 14, 15)
    assert layout.critical_path_length() == 13  # as in the structured layout
    packed = pack(layout)
    assert packed.source == tuple(range(16)) + (7, 8, 9)  # path 1 once more, isolated
    assert packed.position_ids[16:] == (3, 4, 5)
    assert packed.predictor[7:11] == (2, 16, 17, 9)  # opener at <Parallel>; </Parallel> plain
    allowed = attention_allowed(layout)
    assert allowed.shape == (19, 19)
    assert not allowed[:16, 16:].any()  # nothing in the plain sequence sees the copy
    assert allowed[16:, :3].all() and not allowed[16:, 3:16].any()  # copy: prefix + itself
    assert torch.equal(allowed[16:, 16:], torch.ones(3, 3, dtype=torch.bool).tril())
    assert torch.equal(allowed[:16, :16], torch.ones(16, 16, dtype=torch.bool).tril())


def sampled_context(ids, start, i):
    """(plain index, position) pairs a threads sampler had in context when it drew token i."""
    layout = layout_from_ids(ids, T, start=start, layout="threads")
    b, p = layout.block_id[i], layout.path_id[i]
    if p >= 1:
        q = layout.block_id.index(b)  # the block's <Parallel>
        members = [k for k in range(len(ids)) if (layout.block_id[k], layout.path_id[k]) == (b, p)]
        j = members.index(i)
        return sorted([(m, m) for m in range(q + 1)] + [(m, q + 1 + t)
                                                          for t, m in enumerate(members[:j])])
    return [(m, m) for m in range(i)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([1, 2, 3, PO, PC, AO, AC, SO, SC]), min_size=1, max_size=40),
       st.integers(0, 5))
def test_every_token_is_scored_in_the_context_it_was_sampled_in(ids, start):
    start = min(start, len(ids))
    layout = layout_from_ids(ids, T, start=start, layout="threads")
    packed = pack(layout)
    allowed = attention_allowed(layout)
    for i in range(1, len(ids)):
        row = packed.predictor[i]
        assert packed.source[row] == (i - 1 if layout.path_id[i] < 1 or
                                      layout.path_id[i - 1] == layout.path_id[i]
                                      else layout.block_id.index(layout.block_id[i]))
        seen = sorted((packed.source[j], packed.position_ids[j])
                      for j in range(len(packed)) if allowed[row, j])
        assert seen == sampled_context(ids, start, i), i


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from([1, 2, PO, PC, AO, AC]), min_size=1, max_size=12),
                min_size=1, max_size=4), st.booleans())
def test_packed_batch_equals_each_sequence_alone(seqs, left):
    width = max(len(s) for s in seqs) + 2
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    real = torch.zeros(len(seqs), width, dtype=torch.long)
    offsets = []
    for b, s in enumerate(seqs):
        off = width - len(s) if left else 0
        ids[b, off:off + len(s)] = torch.tensor(s)
        real[b, off:off + len(s)] = 1
        offsets.append(off)
    batch = batch_packed(ids, real, T, [o + 1 for o in offsets], layout="threads")
    assert (batch.attention_mask.amax(-1) == 0).all()  # no fully blocked row: no NaN
    for b, s in enumerate(seqs):
        alone = layout_from_ids(s, T, start=1, layout="threads")
        packed = pack(alone)
        n = len(packed)
        assert batch.input_ids[b, :n].tolist() == [s[i] for i in packed.source]
        assert batch.position_ids[b, :n].tolist() == list(packed.position_ids)
        allowed = batch.attention_mask[b, 0, :n, :n] == 0
        assert torch.equal(allowed, attention_allowed(alone))
        assert (batch.attention_mask[b, 0, :n, n:] < 0).all()  # never attend padding
        o = offsets[b]
        assert batch.predictor[b, o:o + len(s)].tolist() == list(packed.predictor)
        assert (batch.predictor[b][real[b] == 0] == -1).all()


def test_causal_and_structured_pack_to_themselves():
    for kind in ("causal", "structured"):
        layout = layout_from_ids(WORKED, T, layout=kind)
        packed = pack(layout)
        assert packed.source == tuple(range(len(WORKED)))
        assert packed.predictor == tuple(range(-1, len(WORKED) - 1))
        assert packed.position_ids == layout.position_ids
