"""Our model card in every checkpoint, in place of TRL's default card in the stage directory.

TRL writes a README.md ("a fine-tuned version of [None]") into the trainer's output directory at
every save; that directory is not a model. `CardedCheckpoints` writes nothing there and puts the
project's card (`parallel_r1.models.card`) into each `checkpoint-N/`, which is a loadable model.
"""

from __future__ import annotations

import os
from typing import Any


class CardedCheckpoints:
    """Trainer mixin: our card in each checkpoint; `card_meta` holds the stage's provenance."""

    card_meta: dict[str, Any] | None = None

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """No card in the output directory (it holds checkpoints, it is not a model)."""

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = os.path.join(self._get_output_dir(trial=trial),
                                  f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            self.write_checkpoint_card(folder)

    def write_checkpoint_card(self, folder: str) -> None:
        """README.md for one checkpoint: the stage's provenance, its step, the tags' ids."""
        from parallel_r1.format.tags import TAGS, TagIds
        from parallel_r1.models.card import write_card
        from parallel_r1.models.load import missing_tags

        meta = dict(self.card_meta or {})
        meta["step"] = self.state.global_step
        tok = self.processing_class
        if not missing_tags(tok):
            meta["tag_ids"] = dict(zip(TAGS, TagIds.from_tokenizer(tok).as_tuple()))
        write_card(folder, meta)
