"""The embedded demo: a generated speech + music emotion corpus, tiny SSL backbones
pretrained on it, and the whole study run end to end offline.

`synth` writes the corpus in the RAVDESS layout; `pretrain` trains the small stand-in
backbones with wav2vec2's self-supervised objective.
"""
