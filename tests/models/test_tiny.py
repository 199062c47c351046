"""The tiny Qwen3 + BPE tokenizer used by every model-tier test."""

import time

import pytest
import torch

from parallel_r1.errors import ConfigError
from parallel_r1.format.tags import TAGS, TagIds
from parallel_r1.models import build_tiny, load, save_tiny


def test_builds_under_a_second():
    build_tiny(0)  # warm up: the first call pays for importing transformers' model code
    start = time.perf_counter()
    model, tokenizer = build_tiny(1, num_layers=4, hidden=128)
    assert time.perf_counter() - start < 1.0
    assert model.dtype == torch.float32
    assert not model.training
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_same_seed_same_weights_and_caller_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, _ = build_tiny(7)
    after = torch.rand(3)
    b, _ = build_tiny(7)
    c, _ = build_tiny(8)
    assert torch.equal(expected, after)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_tags_are_single_special_tokens():
    _, tokenizer = build_tiny(0)
    ids = TagIds.from_tokenizer(tokenizer).as_tuple()
    assert len(set(ids)) == 6
    text = "<Parallel><Path>a</Path><Path>b</Path></Parallel><Summary>ok</Summary>"
    tokens = tokenizer.convert_ids_to_tokens(tokenizer.encode(text))
    assert [t for t in tokens if t in TAGS] == ["<Parallel>", "<Path>", "</Path>", "<Path>",
                                                "</Path>", "</Parallel>", "<Summary>", "</Summary>"]


def test_special_tokens_and_template():
    _, tokenizer = build_tiny(0)
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "2+2?"}],
                                         add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert len(tokenizer.encode("<|im_start|>", add_special_tokens=False)) == 1


@pytest.mark.parametrize("text", [
    "Final Answer: 42\n",
    "Natalia sold 48/2 = 24 clips; x^2 + y^2 = 25 \\boxed{3.5} ~`@#&|_ {}[]",
    "".join(chr(c) for c in range(32, 127)) + "\n\t",
    "non-ASCII still round-trips: é π ∑",
])
def test_any_text_round_trips(text):
    _, tokenizer = build_tiny(0)
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_final_answer_is_few_tokens():
    _, tokenizer = build_tiny(0)
    assert len(tokenizer.encode("Final Answer:")) <= 3


def test_bad_sizes():
    with pytest.raises(ConfigError, match="hidden"):
        build_tiny(0, hidden=66, num_heads=4)


def test_save_tiny_round_trip(tmp_path):
    path = save_tiny(tmp_path / "tiny", seed=3)
    model, tokenizer = load(path)
    reference, _ = build_tiny(3)
    ids = torch.tensor([tokenizer.encode("What is 6 * 7?")])  # [1, T]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)


def test_digit_tokenizer_splits_every_number_into_digits_and_keeps_the_tags_whole():
    import hashlib
    import json
    import re

    from parallel_r1.data.fork import generate_fork
    from parallel_r1.models.tiny import build_tokenizer

    default = build_tokenizer()
    vocab = json.dumps(sorted(default.get_vocab().items())).encode()
    assert hashlib.sha256(vocab).hexdigest()[:16] == "d9505df20ccb2aa7"  # unchanged by `digits`
    assert len(default.tokenize("12")) == 1 and len(default.tokenize("21")) == 2
    model, tokenizer = build_tiny(0, digits=True)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert TagIds.from_tokenizer(tokenizer).as_tuple() == TagIds.from_tokenizer(
        default).as_tuple()
    for record in generate_fork((1, 3), 20, seed=0):
        for text in (record.question, record.extras["trajectory"]):
            tokens = tokenizer.convert_ids_to_tokens(tokenizer.encode(text))
            digit_tokens = [t.lstrip("Ġ") for t in tokens if any(c.isdigit() for c in t)]
            assert all(len(t) == 1 for t in digit_tokens), digit_tokens
            assert len(digit_tokens) == sum(len(n) for n in re.findall(r"\d+", text))
            assert [t for t in tokens if t in TAGS] == re.findall(r"</?(?:Parallel|Path|Summary)>",
                                                                  text)
            assert tokenizer.decode(tokenizer.encode(text)) == text


def test_save_tiny_records_digits_and_the_tokenizer_keeps_them(tmp_path):
    path = save_tiny(tmp_path / "tiny", seed=3, digits=True)
    _, tokenizer = load(path)
    assert tokenizer.tokenize("1234") == ["1", "2", "3", "4"]
    assert '"digits": true' in (path / "parallel_r1.json").read_text()
