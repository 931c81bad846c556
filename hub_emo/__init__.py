"""hub_emo: emotion recognition across speech and music with self-supervised audio models.

``import hub_emo`` registers `EmoConfig`, `EmoForAudioClassification` and the feature
extractor with the transformers Auto classes, so ``AutoModelForAudioClassification`` and
``pipeline("audio-classification")`` load hub_emo checkpoints without remote code; that
pipeline then preprocesses a hub_emo model's input as `hub-emo predict` does (one path). Saved
models also carry their code (``auto_map``), so a process without hub_emo loads them with
``trust_remote_code=True``.

Importing hub_emo also sets its thread policy (`hub_emo.threads`: OpenMP threads that
sleep instead of spinning on a shared machine) where the environment does not say otherwise.

The registration waits until transformers is imported (by you or by hub_emo), so that
importing hub_emo stays cheap for the parts that need neither torch nor transformers (the
CLI's help, the local Hub server).
"""

from __future__ import annotations

import importlib
import sys

from hub_emo import threads as _threads

_threads.configure()

__version__ = "0.1.0"

_LAZY = {
    "EmoConfig": "hub_emo.modeling",
    "EmoForAudioClassification": "hub_emo.modeling",
    "EmoClassifierOutput": "hub_emo.modeling",
    "pipeline": "hub_emo.inference",
    "predict": "hub_emo.inference",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hub_emo' has no attribute {name!r}")


def _register_now() -> None:
    for name in ("hub_emo.modeling", "hub_emo.inference"):  # each registers itself when imported
        module = sys.modules.get(name)
        if module is None or not getattr(module.__spec__, "_initializing", False):
            importlib.import_module(name)


class _RegisterAfterTransformers:
    """A meta-path finder that runs the registration once transformers has been imported."""

    _busy = False

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "transformers" or cls._busy:
            return None
        cls._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            cls._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            if cls in sys.meta_path:
                sys.meta_path.remove(cls)
            _register_now()

        spec.loader.exec_module = exec_module
        return spec


if "transformers" in sys.modules:
    _register_now()
elif _RegisterAfterTransformers not in sys.meta_path:
    import importlib.util

    sys.meta_path.insert(0, _RegisterAfterTransformers)
