"""The recompute-in-backward switch is named from the config class's own fields (transformers 5.19
knows `gradient_checkpointing` only, 5.23 also `activation_checkpointing`), never the version."""

import dataclasses

import pytest

from parallel_r1.errors import ConfigError
from parallel_r1.train.trainer_args import checkpointing_args


@dataclasses.dataclass
class Old:  # the 5.19 TrainingArguments shape
    gradient_checkpointing: bool = False


@dataclasses.dataclass
class New(Old):  # the 5.23 shape: the new name and the deprecated alias
    activation_checkpointing: bool = False


@dataclasses.dataclass
class Neither:
    output_dir: str = "x"


def test_the_new_name_where_the_class_has_it_else_the_old():
    assert checkpointing_args(New, True) == {"activation_checkpointing": True}
    assert checkpointing_args(Old, True) == {"gradient_checkpointing": True}


def test_a_class_with_neither_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match="activation_checkpointing"):
        checkpointing_args(Neither, False)


def test_the_projects_grpo_and_sft_configs_build_with_it(tmp_path):
    """transformers 5.19 refused `activation_checkpointing` here ("unexpected keyword argument")."""
    from parallel_r1.train.grpo import GRPOHyper, grpo_args
    from parallel_r1.train.sft import SFTHyper, sft_args

    grpo = grpo_args(tmp_path, GRPOHyper(activation_checkpointing=True))
    sft = sft_args(tmp_path, SFTHyper(activation_checkpointing=True))
    assert grpo.gradient_checkpointing and sft.gradient_checkpointing  # both versions read it
