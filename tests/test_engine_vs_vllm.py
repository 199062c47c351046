"""bench/engine_vs_vllm.py's parts: the profiler-table reader (default tier) and vLLM's side,
the child process that times vLLM (tier `vllm`: run with .venv-vllm/bin/python -m pytest -m vllm)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from engine_vs_vllm_profile import group_of, parse_table, summarise  # noqa: E402


def test_parse_table_reads_what_torch_profiler_writes():
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(7):
            (a @ b).relu_()
    averages = prof.key_averages()
    rows, total = parse_table(averages.table(sort_by="self_cpu_time_total", row_limit=50))
    by_op = {r["op"]: r for r in rows}
    mm = next(e for e in averages if e.key == "aten::mm")
    assert by_op["aten::mm"]["calls"] == 7
    assert by_op["aten::mm"]["self_ms"] == pytest.approx(mm.self_cpu_time_total / 1e3, rel=0.01,
                                                         abs=0.002)
    assert total == pytest.approx(sum(e.self_cpu_time_total for e in averages) / 1e3, rel=0.01)
    summary = summarise(rows, total, new=7)
    assert summary["groups_ms_per_step"]["linear layers (GEMM)"] > 0
    assert sum(summary["groups_ms_per_step"].values()) == pytest.approx(total / 7, rel=0.01)


@pytest.mark.parametrize("op, group", [("aten::mm", "linear layers (GEMM)"),
                                       ("_C::onednn_mm", "linear layers (GEMM)"),
                                       ("aten::_scaled_dot_product_flash_attention_for_cpu",
                                        "attention"),
                                       ("_C::rms_norm", "norms"), ("aten::silu", "activation"),
                                       ("aten::copy_", "copies, views, casts"),
                                       ("aten::add", "elementwise")])
def test_group_of_names_the_kind_of_operator(op, group):
    assert group_of(op) == group


@pytest.mark.vllm
def test_vllm_side_times_causal_and_block_requests(vllm_tied_tiny_dir):
    from parallel_r1.format.tags import TagIds
    from parallel_r1.models import load

    _, tok = load(vllm_tied_tiny_dir)
    tags = TagIds.from_tokenizer(tok)
    prompt = tok.encode("Solve the following problem step by step.")
    env = dict(os.environ, OMP_NUM_THREADS="1", VLLM_CPU_OMP_THREADS_BIND="nobind",
               VLLM_CPU_KVCACHE_SPACE="1", PYTHONPATH=str(ROOT / "src"))
    cmds = [{"op": "causal", "prompt_ids": prompt, "batch": 3, "new": 5, "seed": 0},
            {"op": "block", "prompt_ids": prompt, "tags": tags.__dict__, "paths": 2,
             "path_tokens": 6, "join_ids": [tags.parallel_close, tags.summary_open], "after": 3,
             "seed": 0}, {"op": "quit"}]
    done = subprocess.run([sys.executable, str(ROOT / "bench/vllm_side.py"),
                           str(vllm_tied_tiny_dir)], input="".join(json.dumps(c) + "\n"
                                                                   for c in cmds),
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ready, causal, block = (json.loads(line) for line in done.stdout.splitlines())  # only these
    assert ready["ready"] and ready["vllm"] and ready["peak_rss_mb"] > 0
    assert causal["tokens"] == 15 and causal["seconds"] > 0
    assert block["tokens"] == 1 + 2 * 6 + 2 + 3 and len(block["seconds_parts"]) == 3
    assert block["seconds"] == pytest.approx(sum(block["seconds_parts"]))
