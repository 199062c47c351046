"""The one structure function: hand cases, a slow reference, padding and the mask (causal and
structured layouts; the threads layout is in test_structure_threads.py)."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from parallel_r1.format.tags import TagIds
from parallel_r1.structure import attention_allowed, batch_structure, layout_from_ids

T = TagIds(100, 101, 102, 103, 104, 105)
PO, PC, AO, AC, SO, SC = T.as_tuple()


def reference(ids, start):
    """Slow restatement: find each block and its paths by search, then number them."""
    pos, block, path = list(range(len(ids))), [-1] * len(ids), [-1] * len(ids)
    i, nxt, b = start, start, -1
    while i < len(ids):
        if ids[i] != PO:
            pos[i], nxt, i = nxt, nxt + 1, i + 1
            continue
        b += 1
        q, furthest, k, p = nxt, nxt, i + 1, -1
        pos[i], block[i] = q, b
        while k < len(ids) and ids[k] != PC:
            block[k] = b
            if ids[k] == AO:  # a path: up to and including the next </Path>
                p += 1
                end = k
                while end < len(ids) and ids[end] != AC:
                    end += 1
                for j, idx in enumerate(range(k, min(end + 1, len(ids)))):
                    pos[idx], block[idx], path[idx] = q + 1 + j, b, p
                    furthest = max(furthest, q + 1 + j)
                k = end + 1
            else:  # glue
                furthest += 1
                pos[k] = furthest
                k += 1
        if k < len(ids):  # </Parallel>
            furthest += 1
            pos[k], block[k] = furthest, b
        nxt, i = furthest + 1, k + 1
    return pos, block, path


def test_worked_example_of_the_spec():
    ids = [1, 2, PO, AO, 5, 6, AC, AO, 7, AC, PC, 8, SO, 9, SC, 10]
    layout = layout_from_ids(ids, T)
    assert layout.position_ids == (0, 1, 2, 3, 4, 5, 6, 3, 4, 5, 7, 8, 9, 10, 11, 12)
    assert layout.critical_path_length() == 13
    allowed = attention_allowed(layout)
    assert not allowed[7:10, 3:7].any() and not allowed[3:7, 7:10].any()
    assert allowed[10, :11].all()  # </Parallel> sees both paths


def test_four_paths_of_different_lengths():
    ids = [PO, AO, 1, AC, AO, 1, 1, 1, AC, AO, AC, AO, 1, 1, AC, PC, 9]
    layout = layout_from_ids(ids, T)
    assert [layout.position_ids[i] for i in (1, 4, 9, 11)] == [1, 1, 1, 1]
    assert layout.position_ids[-2] == 0 + 5 + 1  # longest path has 5 tokens
    assert layout.path_id[:15].count(3) == 4


def test_tags_in_the_prompt_are_plain():
    ids = [PO, AO, 1, AC, PC, 7, PO, AO, 2, AC, PC]
    layout = layout_from_ids(ids, T, start=5)
    assert layout.position_ids[:6] == (0, 1, 2, 3, 4, 5)
    assert layout.block_id[:6] == (-1,) * 6 and layout.num_blocks == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([1, 2, 3, PO, PC, AO, AC, SO, SC]), max_size=40),
       st.integers(0, 5))
def test_matches_the_slow_reference(ids, start):
    start = min(start, len(ids))
    layout = layout_from_ids(ids, T, start=start)
    pos, block, path = reference(ids, start)
    assert list(layout.position_ids) == pos
    assert list(layout.block_id) == block
    assert list(layout.path_id) == path
    causal = layout_from_ids(ids, T, start=start, layout="causal")
    assert causal.position_ids == tuple(range(len(ids)))
    assert causal.critical_path_length() == layout.critical_path_length()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from([1, 2, PO, PC, AO, AC]), min_size=1, max_size=12),
                min_size=1, max_size=4), st.booleans())
def test_padded_batch_equals_each_sequence_alone(seqs, left):
    width = max(len(s) for s in seqs) + 2
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    real = torch.zeros(len(seqs), width, dtype=torch.long)
    offsets = []
    for b, s in enumerate(seqs):
        off = width - len(s) if left else 0
        ids[b, off:off + len(s)] = torch.tensor(s)
        real[b, off:off + len(s)] = 1
        offsets.append(off)
    pos, mask = batch_structure(ids, real, T, [o + 1 for o in offsets])
    assert (mask.amax(-1) == 0).all()  # every row may attend somewhere: no NaN
    for b, s in enumerate(seqs):
        o = offsets[b]
        alone = layout_from_ids(s, T, start=1)
        assert pos[b, o:o + len(s)].tolist() == list(alone.position_ids)
        allowed = mask[b, 0, o:o + len(s), o:o + len(s)] == 0
        assert torch.equal(allowed, attention_allowed(alone))
        assert (mask[b, 0, o:o + len(s)][:, real[b] == 0] < 0).all()  # never attend padding
