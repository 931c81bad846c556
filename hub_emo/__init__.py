"""hub_emo: emotion recognition across speech and music with self-supervised audio models.

Importing hub_emo changes nothing for code that does not use it: it loads neither torch nor
transformers, registers nothing and writes nothing to ``os.environ``. What uses the model
registers it: ``from hub_emo import EmoForAudioClassification`` (or anything else from
`hub_emo.modeling`) adds `EmoConfig` and `EmoForAudioClassification` to the transformers
Auto classes, so ``AutoModelForAudioClassification`` loads hub_emo checkpoints without remote
code; `register` does the same explicitly. Saved models also carry their code
(``auto_map``), so a process without hub_emo loads them with ``trust_remote_code=True``.

hub_emo's robust inference (paths, any rate, channels and length) is `hub_emo.pipeline`.
``register(pipeline=True)`` makes ``transformers.pipeline("audio-classification")`` use it for
hub_emo models too; without that call the stock pipeline stays transformers' own.

The thread policy (`hub_emo.threads`) belongs to the command line: `hub-emo` sets it, an
import does not.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "EmoConfig": "hub_emo.modeling",
    "EmoForAudioClassification": "hub_emo.modeling",
    "EmoClassifierOutput": "hub_emo.modeling",
    "pipeline": "hub_emo.inference",
    "predict": "hub_emo.inference",
}

__all__ = [*_LAZY, "register", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hub_emo' has no attribute {name!r}")


def register(pipeline: bool = False) -> None:
    """Register hub_emo with the transformers Auto classes; with ``pipeline=True`` also make
    ``transformers.pipeline("audio-classification")`` give hub_emo models hub_emo's input
    handling (other models keep the stock behaviour)."""
    importlib.import_module("hub_emo.modeling").register()
    if pipeline:
        importlib.import_module("hub_emo.inference").register_pipeline()
