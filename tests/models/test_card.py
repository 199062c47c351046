"""Model cards: valid Hugging Face metadata, what a user needs, evals added later."""

from __future__ import annotations

import json

import yaml

from parallel_r1.models import build_tiny, save
from parallel_r1.models.card import record_eval, render_card

SUMMARY = {"benchmarks": {"gsm8k": {"title": "GSM8K", "grades": {
    "math-verify": {"k": 4, "mean": {"value": 0.25}, "pass_unbiased": {"value": 0.5}}}}},
    "avg": {}, "graders": ["math-verify"], "config": {"dropped": True}}
META = {"recipe": "smollm2-cpu", "stage": "rl", "kind": "rl", "mode": "structured",
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "data": "gsm8k", "num_paths": 2,
        "training": {"learning_rate": 2e-6, "max_steps": 6}}


def header(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_metadata_is_valid_hub_yaml():
    from huggingface_hub import ModelCard, ModelCardData

    text = render_card({**META, "evals": {"eval-rl": {"summary": SUMMARY, "table": "| a |"}}},
                       "model")
    data = header(text)
    assert data["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-generation"
    assert {"parallel-r1", "grpo", "structured"} <= set(data["tags"])
    assert "datasets" not in data  # "gsm8k" is our data set name, not a Hub repo id
    result = data["model-index"][0]
    assert result["name"] == "smollm2-cpu-rl"
    metrics = {m["type"]: m["value"] for m in result["results"][0]["metrics"]}
    assert metrics == {"mean@4": 25.0, "pass@4": 50.0}
    # huggingface_hub reads it back without a metadata error, the evals included.
    card = ModelCard(text, ignore_metadata_errors=False)
    assert isinstance(card.data, ModelCardData) and len(card.data.eval_results) == 2


def test_card_says_how_to_load_and_serve():
    text = render_card(META, "model")
    assert "# smollm2-cpu / rl" in text and "AutoModelForCausalLM.from_pretrained" in text
    assert "parallel-r1 serve MODEL_DIR --mode structured" in text
    assert "| data | `gsm8k` |" in text and "| learning_rate | `2e-06` |" in text
    assert "structured (\"Unseen\") layout" in text
    local = header(render_card({**META, "base_model": "tiny", "mode": "causal"}, "m"))
    assert "base_model" not in local and "causal" in local["tags"]


def test_save_writes_the_card_and_an_eval_adds_its_table(tmp_path):
    model, tok = build_tiny(0)
    path = save(model, tok, tmp_path / "model", meta=META)
    text = (path / "README.md").read_text()
    assert "| `<Parallel>` |" in text and "## Evaluation" not in text
    record_eval(path, "eval-rl", SUMMARY, "caption\n| Model | x |\n|---|---|\n| rl | 1 |\n")
    text = (path / "README.md").read_text()
    assert "## Evaluation (eval-rl)" in text and "caption\n\n| Model | x |" in text
    provenance = json.loads((path / "parallel_r1.json").read_text())
    assert "config" not in provenance["evals"]["eval-rl"]["summary"]
    assert header(text)["model-index"][0]["results"]


def test_the_cards_python_snippet_runs(tmp_path, capsys):
    model, tok = build_tiny(0)
    path = save(model, tok, tmp_path / "model", meta=META)
    text = (path / "README.md").read_text()
    code = text.split("```python\n")[1].split("```")[0]
    exec(code.replace("MODEL_DIR", str(path)).replace("max_new_tokens=256", "max_new_tokens=4"),
         {})
    assert capsys.readouterr().out  # it ran to its print (a random model writes anything)


def test_an_rl_model_after_sft_names_both_stages(tmp_path):
    """The lineage of a model goes through every stage that trained it (issue 22 item 7)."""
    from parallel_r1.train.recipe import load
    from parallel_r1.train.stages import card_meta

    path = tmp_path / "r.yaml"
    path.write_text("name: two\nstages:\n  - {kind: sft, data: 'synthetic:1:4:0'}\n"
                    "  - {kind: rl, data: 'synthetic:2:4:1', max_steps: 1}\n")
    recipe = load(path)
    model, tok = build_tiny(0)
    sft_dir = save(model, tok, tmp_path / "sft", meta=card_meta(recipe, recipe.stages[0], None))
    rl = card_meta(recipe, recipe.stages[1], str(sft_dir))
    assert [(m["stage"], m["kind"]) for m in rl["lineage"]] == [("sft", "sft"), ("rl", "rl")]
    text = render_card(rl, "model")
    assert ("from `tiny` by supervised fine-tuning on parallel traces (stage sft, data "
            "`synthetic:1:4:0`), then GRPO reinforcement learning (stage rl, data "
            "`synthetic:2:4:1`).") in text
    assert "| lineage | `tiny -> sft (sft) -> rl (rl)` |" in text
    # A parent written before lineages were recorded still counts as a step.
    old = {k: v for k, v in json.loads((sft_dir / "parallel_r1.json").read_text()).items()
           if k != "lineage"}
    (sft_dir / "parallel_r1.json").write_text(json.dumps(old))
    assert [m["stage"] for m in card_meta(recipe, recipe.stages[1], str(sft_dir))["lineage"]] \
        == ["sft", "rl"]
