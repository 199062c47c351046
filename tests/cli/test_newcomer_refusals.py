"""A newcomer's first hour (issue 22 review): a device this torch lacks, a corrupt
parallel_r1.json, a bad template or model path are one line each, before any warning is printed
or any folder is made; a folder whose config records settings but holds no samples binds nothing."""

from __future__ import annotations

import json

import pytest
import torch

from parallel_r1.devices import check_device
from parallel_r1.errors import ConfigError
from parallel_r1.eval.resume import check_resume
from parallel_r1.models import build_tiny, save

QUICK = ("--benchmarks", "synthetic-l1", "--limit", "1", "--samples", "1", "--max-tokens", "4")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A saved tiny model that records its template ('none') and layout."""
    model, tok = build_tiny(0)
    meta = {"recipe": "r", "stage": "sft", "kind": "sft", "mode": "structured",
            "num_paths": 2, "training": {"template": "none"}}
    return save(model, tok, tmp_path_factory.mktemp("m") / "model", meta=meta)


@pytest.fixture
def no_cuda_build(monkeypatch):
    """This torch as a CPU-only build (what a CUDA build on a GPU machine would also refuse)."""
    monkeypatch.setattr(torch.version, "cuda", None)


@pytest.mark.parametrize("command", [("eval", "tiny"), ("serve", "tiny")])
def test_cuda_on_a_cpu_torch_build_is_one_line(cli, no_cuda_build, command):
    line = cli.refused(*command, "--device", "cuda")
    assert line == (f"error: --device cuda: this torch build has no CUDA (torch "
                    f"{torch.__version__}); use --device cpu or install a CUDA torch")


@pytest.mark.parametrize("command", [("eval", "tiny"), ("serve", "tiny")])
def test_an_unknown_device_lists_the_known_ones(cli, command):
    line = cli.refused(*command, "--device", "gpu")
    assert line.startswith("error: --device gpu: unknown device; known: auto | cpu | cuda")


def test_check_device_resolves_and_refuses(no_cuda_build):
    assert check_device("cpu") == "cpu" and check_device("auto") == "cpu"
    for bad in ("cpu:1", "cuda:x", "tpu", ""):
        with pytest.raises(ConfigError, match="unknown device"):
            check_device(bad)
    with pytest.raises(ConfigError, match="cuda:1: this torch build has no CUDA"):
        check_device("cuda:1")


@pytest.mark.parametrize("command", ["eval", "serve"])
def test_a_corrupt_provenance_file_names_file_line_and_column(cli, model_dir, tmp_path,
                                                              command):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "parallel_r1.json").write_text('{"mode": "structured",\n {bad')
    line = cli.refused(command, broken)
    assert line.startswith(f"error: {broken / 'parallel_r1.json'}:2: invalid JSON: ")
    assert "(column 2)" in line


def test_a_bad_template_stops_before_any_warning_or_folder(cli, model_dir, tmp_path):
    out = tmp_path / "D"
    code, _, err = cli("eval", model_dir, "--template", "nope", "--out", out, *QUICK)
    assert code == 2 and "warning" not in err and "unknown template 'nope'" in err, err
    assert not out.exists()


@pytest.mark.parametrize("model", ["/nonexistent/model", "README.md"])
def test_a_bad_model_path_stops_before_the_output_folder(cli, tmp_path, monkeypatch, model):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("# not a model\n")
    line = cli.refused("eval", model, *QUICK)
    assert "does not exist" in line or "is a file, not a model directory" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]  # no eval-out/


def _config(folder, **sampling):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"sampling": {"model": "m", **sampling}}))


def _resume(folder, **sampling):
    check_resume(folder, {"model": "m", **sampling}, {}, config_file="config.json",
                 samples_file="samples.jsonl")


def test_a_config_without_samples_binds_nothing(tmp_path):
    _config(tmp_path / "D", template="nope")
    _resume(tmp_path / "D", template="none")  # a failed first run left only its config
    (tmp_path / "D" / "samples.jsonl").write_text("")
    _resume(tmp_path / "D", template="none")
    (tmp_path / "D" / "samples.jsonl").write_text('{"sample": 0}\n')
    with pytest.raises(ConfigError, match=r"holds samples drawn with other settings \(template\)"):
        _resume(tmp_path / "D", template="none")


def test_a_corrupt_eval_config_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{bad")
    (tmp_path / "samples.jsonl").write_text('{"sample": 0}\n')
    with pytest.raises(ConfigError, match=r"config.json:1: invalid JSON: .*\(column 2\)"):
        _resume(tmp_path, template="none")


def test_eval_takes_paths_and_warns_where_the_record_differs(cli, model_dir):
    from parallel_r1.eval.defaults import settle_eval

    cfg, warnings = settle_eval(str(model_dir), {"num_paths": 3})
    assert cfg.num_paths == 3 and warnings == [
        f"warning: --paths 3 differs from the num paths 2 that {model_dir} records "
        "(parallel_r1.json); using 3"]
    assert settle_eval(str(model_dir), {"num_paths": None})[0].num_paths == 2  # the record's
    assert settle_eval(str(model_dir), {"num_paths": 0})[0].num_paths is None  # model decides
    assert "num_paths" in cli.refused("eval", model_dir, "--paths", "9", *QUICK)


ONE_STAGE = """output_dir: {out}
model: {{name: tiny}}
stages:
  - {{kind: sft, data: "synthetic:1:4:0", template: none, max_steps: 1}}
"""


def test_run_check_counts_stages_in_words_and_hints_stage_keys(cli, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(ONE_STAGE.format(out=tmp_path / "run"))
    code, out, _ = cli("run", recipe, "--check")
    assert code == 0 and f"ok: {recipe} (1 stage: sft)" in out, out
    line = cli.refused("run", recipe, "--check", "learning_rat=1e-3")
    assert line.endswith("; did you mean stages.<name>.learning_rate? (a stage key; stages "
                         "here: sft)"), line
    assert "did you mean 'name'?" in cli.refused("run", recipe, "--check", "nam=x")


def test_demo_names_its_own_output_option(tmp_path, monkeypatch):
    from parallel_r1.train import demo, runner

    seen = {}

    def run(recipe, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt  # stop before any stage

    monkeypatch.setattr(runner, "run", run)
    with pytest.raises(KeyboardInterrupt):
        demo.run_demo(tmp_path / "demo", quick=True)
    assert seen == {"out_option": "--out DIR"}


def test_the_resume_command_is_what_the_user_can_type(tmp_path, monkeypatch):
    import sys

    from parallel_r1.files import command_line

    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    script = venv / "parallel-r1"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # the venv is not activated
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [".venv/bin/parallel-r1", "run", "my recipe.yaml"])
    assert command_line() == ".venv/bin/parallel-r1 run 'my recipe.yaml'"
    monkeypatch.setattr(sys, "argv", ["/x/parallel_r1/__main__.py", "eval", "tiny"])
    assert command_line() == f"{sys.executable} -m parallel_r1 eval tiny"
    monkeypatch.setenv("PATH", str(venv))  # activated: the short name runs this very script
    monkeypatch.setattr(sys, "argv", [str(script), "run", "r.yaml"])
    assert command_line() == "parallel-r1 run r.yaml"


def test_progress_in_a_log_file_is_a_few_lines_not_one_per_sample(cli, tmp_path, monkeypatch):
    """stderr is not a terminal here (captured): a bar draws at most every 30 s, its postfix
    (the running accuracy) included, so 16 samples leave four lines, not one per sample."""
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)  # restored after the test
    monkeypatch.setenv("PARALLEL_R1_EVAL_DIR", str(tmp_path))
    code, _, err = cli("eval", "tiny", "--benchmarks", "synthetic-l1", "--limit", "4",
                       "--samples", "4", "--max-tokens", "6", "--template", "none")
    drawn = [x for x in err.replace("\r", "\n").splitlines() if x.startswith("eval:")]
    assert code == 0 and drawn[-1].startswith("eval: 100%") and "16/16" in drawn[-1], err
    assert len(drawn) <= 4, drawn  # start, total known, first sample, end


def test_serve_checks_every_setting_before_a_warning(cli, model_dir):
    code, _, err = cli("serve", model_dir, "--paths", "3", "--device", "gpu")
    assert code == 2 and "warning" not in err and "--device gpu: unknown device" in err, err
