"""A tiny Qwen3 model and byte-level BPE tokenizer with the six tags, built offline in < 1 s.

For tests and the CPU demo: the weights are random (seeded), the tokenizer is trained in code on a
small corpus, so nothing is downloaded and the same seed always gives the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parallel_r1.format.tags import ANSWER_PREFIX, TAGS

EOS = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

# Qwen's template (no <think> block): system turn only when given, generation prompt on request.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Enough text that common words, numbers and the format's keywords become merged tokens; any other
# ASCII still encodes through the 256 byte tokens.
_CORPUS = [
    "Solve the following problem step by step. Let's think step by step.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "How many clips did Natalia sell altogether in April and May? She sold 48 / 2 = 24 clips in May.",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting.",
    "The answer is the total number of apples, oranges and pears in the basket.",
    "First, compute the sum. Then multiply the result by 3 and subtract 7.",
    "Alternatively, we can check the result with a different method. Both paths agree.",
    "Problem: What is 17 + 25? Answer: 42. What is 6 * 7? What is 100 - 58?",
    "x = 3, y = 4, x^2 + y^2 = 25, sqrt(25) = 5, (a + b) * c = a*c + b*c, 1/2 + 1/4 = 3/4",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 20 25 30 40 50 64 99 100 128 256 1000",
    "+ - * / = < > ( ) [ ] { } ^ % $ . , : ; ! ? ' \" \\boxed{42} \\frac{1}{2} 3.14 -5",
    f"{ANSWER_PREFIX} 42\n{ANSWER_PREFIX} 7\n{ANSWER_PREFIX} 1000\n",
    "Therefore, the final result is 18.\nSo the total is 24 + 48 = 72.\n\n",
    "In summary, each path gives the same answer, so we are confident.\n",
    "Let me verify: 12 * 50 / 60 = 10. Yes, she earned $10.\n",
    "the of and to in is was for on that with as by at from it this be are have\n",
]
# The words of the synthetic tasks (`parallel_r1.data.synthetic`, `trap`, `fork`), added to the
# corpus of the digit-level tokenizer only (the default one stays as it was): with every digit its
# own token, merges go to words, so a problem takes fewer tokens.
_TASK_CORPUS = [
    "Ann Bo Cy Dee Eli Fay Gus Ivy has 3 bags of 4 apples coins books pens eggs cards shells beads.",
    "Then 5 more apples are added. Then 3 apples are given away. Then the number of apples doubles.",
    "Then 3 or 9 apples are given away, so that between 12 and 17 are left.",
    "Then 3 or 9 more coins are added, so that between 12 and 17 are there.",
    "How many apples are there now? Only 18 is between 12 and 17, so 18 apples.",
    "Both give 12 apples. All give 12 coins. Both check out: 26 apples. So it is 26, not 25.",
    "so 7 are left\n",
]


def build_tokenizer(*, with_tags: bool = True, digits: bool = False) -> Any:
    """Train the tiny byte-level BPE tokenizer (deterministic, about 10 ms).

    Args:
        with_tags: add the six tags as special tokens (False gives a "base" tokenizer that
            `add_tags` can be tested on).
        digits: split every digit into its own token before byte-level BPE (as Llama and Qwen
            do), so "12" and "21" are both two tokens; the corpus then also holds the words of
            the synthetic tasks. False: the original tokenizer, unchanged.

    Returns:
        A `PreTrainedTokenizerFast` with eos = pad = `<|endoftext|>`, the Qwen-like chat template
        and (by default) the six tags as single special tokens, ids 512..517.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.pre_tokenizer = (pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True), byte_level]) if digits else byte_level)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=[EOS, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: any text encodes
        show_progress=False,
    )
    core.train_from_iterator(_CORPUS + _TASK_CORPUS if digits else _CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token=EOS, pad_token=EOS, bos_token=None, unk_token=None,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    if with_tags:
        tokenizer.add_special_tokens({"extra_special_tokens": list(TAGS)})
    return tokenizer


def build_tiny(
    seed: int = 0,
    *,
    num_layers: int = 2,
    hidden: int = 64,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_positions: int = 2048,
    digits: bool = False,
) -> tuple[Any, Any]:
    """Build a tiny random Qwen3ForCausalLM (float32, eval mode) and its tokenizer.

    Args:
        seed: seeds the weight init; the same seed gives bit-identical weights.
        num_layers: decoder layers (2..4 keeps it well under a second).
        hidden: hidden size (64..128); must be divisible by `num_heads`.
        num_heads, num_kv_heads: attention heads (grouped-query when fewer kv heads).
        max_positions: `max_position_embeddings` of the config.
        digits: the digit-level tokenizer (`build_tokenizer(digits=True)`).

    Returns:
        (model, tokenizer); the embedding table has exactly `len(tokenizer)` rows.

    Raises:
        ConfigError: the sizes do not fit together.
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from parallel_r1.errors import ConfigError

    if hidden % num_heads:
        raise ConfigError(f"hidden={hidden} is not divisible by num_heads={num_heads}",
                          field="hidden")
    if num_heads % num_kv_heads:
        raise ConfigError(f"num_heads={num_heads} is not divisible by num_kv_heads={num_kv_heads}",
                          field="num_kv_heads")
    tokenizer = build_tokenizer(digits=digits)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden // num_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    # Seed a private generator scope so building a model does not disturb the caller's RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    model = model.to(torch.float32).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save_tiny(directory: str | Path, seed: int = 0, **sizes: Any) -> Path:
    """Build the tiny model and save it as a standard transformers directory.

    Args:
        directory: where to write (created; replaced atomically if it exists).
        seed, sizes: passed to `build_tiny` (and recorded in the saved meta, `digits` too).

    Returns:
        The directory path.
    """
    from parallel_r1.models.load import save

    model, tokenizer = build_tiny(seed, **sizes)
    return save(model, tokenizer, directory, meta={"source": "tiny", "kind": "tiny", "seed": seed,
                                                    **sizes})


def bias_tags(model: Any, tokenizer: Any, **bias: float) -> None:
    """Make a random model write some tags often, in its weights (for tests and benchmarks).

    Residual dimension 0 is held at a constant (the embeddings set it, no layer writes to it)
    and an untied LM head reads it into the named tags' logits (`eos`: the end-of-text
    token's), shifting each by about `bias` (e.g. `parallel_open=4.0`); a new call replaces the
    previous shifts. Every engine that loads
    the weights (the built-in one, a server, vLLM) sees the same model, which a forward hook
    could not give. Works on Qwen3- and Llama-style models.

    Raises:
        EngineError: a name is not one of the six tags' TagIds fields.
    """
    import torch

    from parallel_r1.format.tags import TagIds

    tags = TagIds.from_tokenizer(tokenizer)
    emb, head = model.get_input_embeddings().weight, model.lm_head.weight
    with torch.no_grad():
        if head is emb or head.data_ptr() == emb.data_ptr():  # untie: a head of its own
            model.lm_head.weight = torch.nn.Parameter(emb.detach().clone())
            model.config.tie_word_embeddings = False
            head = model.lm_head.weight
        emb[:, 0] = 4.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0] = 0
            layer.mlp.down_proj.weight[0] = 0
        head[:, 0] = 0
        probe = torch.arange(100, 164, device=emb.device)[None] % emb.shape[0]
        level = model.model(input_ids=probe).last_hidden_state[0, :, 0].float().mean()
        for name, value in bias.items():
            token_id = tokenizer.eos_token_id if name == "eos" else getattr(tags, name)
            head[token_id, 0] = value / level
