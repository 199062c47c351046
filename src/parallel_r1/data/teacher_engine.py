"""Cold-start traces from a parallel-thinking teacher sampled through the block program.

Where `teacher.generate` asks a chat model to write whole traces as text, this samples a model
that already writes the tags (served by vLLM, SGLang or `parallel-r1 serve`, spoken to in token
ids) with the engine's block program: each path is its own request (threads layout), so the
teacher's paths really are independent. The log has the same rows as `teacher.generate` (the
trace in `output`), is appended one whole line per problem, and resumes by problem id.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from parallel_r1.data.sources import Record
from parallel_r1.data.teacher import read_log
from parallel_r1.data.templates import render_prompt
from parallel_r1.files import append_jsonl


def generate_with_engine(records: Iterable[Record], out: str | Path, *, engine: Any,
                         tokenizer: Any, params: Any, model_name: str,
                         template: str = "parallel", chat: bool = True, seed: int = 0,
                         max_in_flight: int = 64, show_progress: bool = True) -> dict[str, Any]:
    """Sample one trace for every record whose id is not yet in the log `out`.

    Args:
        engine: a `parallel_r1.engine` Engine (e.g. over `OpenAIBackend`).
        params: its SamplingParams (n is ignored: one trace per problem).
        model_name: recorded in each row.
        seed: base seed; a problem's seed is derived from it and the problem id.

    Returns:
        metrics: num_total, num_skipped, num_done, num_failed, failures ({id: error}),
        num_repaired_bytes.
    """
    from dataclasses import replace

    from tqdm import tqdm

    from parallel_r1.engine.types import Request
    from parallel_r1.models.load import apply_template

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = list(records)
    done, log_metrics = read_log(out)
    todo = list({r.id: r for r in records if r.id not in done}.values())
    params = replace(params, n=1)
    pending, active, failures, written = list(reversed(todo)), {}, {}, 0
    bar = tqdm(total=len(todo), desc="teacher", unit="problem", disable=not show_progress)
    while pending or engine.has_unfinished():
        while pending and len(active) < max_in_flight:
            record = pending.pop()
            prompt = render_prompt(template, record.question)
            ids = apply_template(tokenizer, prompt, chat=chat)
            seeds = [(seed + zlib.crc32(record.id.encode())) % 2**31]
            active[record.id] = (record, prompt)
            engine.add_request(Request(record.id, ids, params, seeds))
        for step in engine.step():
            if step.rollout is None:
                continue
            record, prompt = active.pop(step.request_id)
            r = step.rollout
            bar.update(1)
            if r.finish_reason == "error":
                failures[record.id] = r.error or "the backend failed"
                continue
            append_jsonl(out, {"id": record.id, "question": record.question,
                               "answer": record.answer, "source": record.source,
                               "prompt": prompt, "model": model_name, "output": r.text,
                               "finish_reason": r.finish_reason, "layout": r.layout.kind,
                               "num_blocks": r.num_blocks, "seed": r.seed,
                               "usage": {"prompt_tokens": len(r.prompt_ids),
                                         "completion_tokens": len(r.completion_ids)}})
            written += 1
    bar.close()
    return {"num_total": len(records), "num_skipped": len(records) - len(todo),
            "num_done": written, "num_failed": len(failures), "failures": failures,
            "num_repaired_bytes": log_metrics["num_repaired_bytes"]}
