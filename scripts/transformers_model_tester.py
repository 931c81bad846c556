"""transformers' common model tests (`ModelTesterMixin`, `ConfigTester`) bound to hub_emo.

Not collected by the project's suite: `run_transformers_model_tests.py` copies this file
beside transformers' own `test_modeling_common.py` / `test_configuration_common.py` (fetched
from the sdist of the locked version) and runs it there. The tester follows
`Wav2Vec2ModelTest` (tests/models/wav2vec2/test_modeling_wav2vec2.py); every departure is
commented with its reason. One test class per variant: last layer, weighted sum, LoRA,
bottleneck adapters, full fine-tuning.
"""

from __future__ import annotations

import math
import unittest

import torch
from transformers import Wav2Vec2Config
from transformers.testing_utils import torch_device

from hub_emo import EmoConfig, EmoForAudioClassification

from .test_configuration_common import ConfigTester
from .test_modeling_common import ModelTesterMixin, floats_tensor


class EmoModelTester:
    """Wav2Vec2ModelTester's tiny backbone and batch, wrapped in an `EmoConfig` of one variant."""

    def __init__(self, parent, variant: dict, batch_size=13, seq_length=1024, hidden_size=16, num_hidden_layers=2,
                 num_attention_heads=2, num_labels=3):
        self.parent = parent
        self.variant = variant
        self.batch_size = batch_size
        self.seq_length = seq_length  # speech is longer (as Wav2Vec2ModelTester)
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_labels = num_labels
        self.is_training = True
        # Attention and hidden states are frame sequences: the conv stack's output length.
        frames = seq_length
        for kernel, stride in zip((8, 8, 8), (4, 4, 4)):
            frames = (frames - (kernel - 1)) / stride
        self.output_seq_length = int(math.ceil(frames))
        self.encoder_seq_length = self.output_seq_length

    def backbone_config(self) -> Wav2Vec2Config:
        """Wav2Vec2ModelTester.get_config's values (group-norm feature encoder, post-norm layers)."""
        return Wav2Vec2Config(
            hidden_size=self.hidden_size, feat_extract_norm="group", feat_extract_dropout=0.0,
            feat_extract_activation="gelu", conv_dim=(32, 32, 32), conv_stride=(4, 4, 4), conv_kernel=(8, 8, 8),
            conv_bias=False, mask_time_prob=0.5, mask_time_length=2, num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2, num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads, hidden_dropout_prob=0.1, intermediate_size=20,
            layer_norm_eps=1e-5, do_stable_layer_norm=False, hidden_act="gelu", initializer_range=0.02,
            vocab_size=32,
        )

    def get_config(self) -> EmoConfig:
        # A small head (one hidden layer of 8) instead of the default [128, 16]: the mixin
        # checks that test models stay small.
        return EmoConfig(backbone_config=self.backbone_config(), num_labels=self.num_labels,
                         head_hidden_sizes=[8], attention_pool_size=8, lora_rank=4, **self.variant)

    def prepare_config_and_inputs(self):
        input_values = floats_tensor([self.batch_size, self.seq_length], scale=1.0)
        # Wav2Vec2ModelTester draws a mask with random holes (random_attention_mask). hub_emo reads
        # a mask as clip lengths (1 = real sample, padding at the end), as the feature extractor
        # pads and as transformers' own _get_feature_vector_attention_mask reads it, so here the
        # mask is right padding: random lengths from half to all of the batch, the first clip full.
        lengths = torch.randint(self.seq_length // 2, self.seq_length + 1, (self.batch_size,))
        lengths[0] = self.seq_length
        attention_mask = (torch.arange(self.seq_length)[None, :] < lengths[:, None]).long()
        input_values = input_values * attention_mask  # zero padding, as the feature extractor pads
        return self.get_config(), input_values, attention_mask

    def prepare_config_and_inputs_for_common(self):
        config, input_values, attention_mask = self.prepare_config_and_inputs()
        return config, {"input_values": input_values, "attention_mask": attention_mask}


class EmoModelTestBase(ModelTesterMixin):
    all_model_classes = (EmoForAudioClassification,)
    variant: dict = {}
    # As Wav2Vec2ModelTest: no pruning or head masking in audio encoders.
    test_pruning = False
    test_headmasking = False
    # No token embeddings to resize (as Wav2Vec2ModelTest's skips of the resize tests).
    test_resize_embeddings = False
    # The mixin only runs this for models with a "# Copyright 2023+" header in their config file;
    # hub_emo's files carry none, and the test is exactly what a wrapper must pass.
    test_can_init_all_missing_weights_before_2023 = True
    # The checkpoint nests a backbone config: a composite model in the mixin's terms.
    _is_composite = True

    def setUp(self):
        self.model_tester = EmoModelTester(self, self.variant)
        # EmoConfig nests the backbone config, so ConfigTester checks no flat hidden_size:
        # the common properties live on backbone_config (as for other composite configs).
        self.config_tester = ConfigTester(self, config_class=EmoConfig, has_text_modality=False,
                                          common_properties=[], aggregation="last")

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        # The mixin adds classification labels only for classes named in transformers' static
        # audio-classification table; hub_emo registers with the Auto classes at run time,
        # so its labels are added here the same way (one class index per clip; fixed, as the
        # mixin's are, since some tests compare two calls with separately prepared inputs).
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=False)
        if return_labels:
            labels = torch.arange(self.model_tester.batch_size) % self.model_tester.num_labels
            inputs_dict["labels"] = labels.to(torch_device)
        return inputs_dict

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = EmoForAudioClassification(config).to(torch_device).eval()
        with torch.no_grad():
            out = model(**inputs)
        self.assertEqual(tuple(out.logits.shape), (self.model_tester.batch_size, self.model_tester.num_labels))

    @unittest.skip(reason="Model has no inputs_embeds (as Wav2Vec2ModelTest)")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="Model has input_values instead of input_ids (as Wav2Vec2ModelTest)")
    def test_forward_signature(self):
        pass

    @unittest.skip(reason="Model has no tokens embeds (as Wav2Vec2ModelTest)")
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip(reason="Model has no inputs_embeds (as Wav2Vec2ModelTest)")
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip(reason="Feed forward chunking is not implemented (as Wav2Vec2ModelTest)")
    def test_feed_forward_chunking(self):
        pass


class EmoLastLayerTest(EmoModelTestBase, unittest.TestCase):
    variant = {"aggregation": "last"}


class EmoWeightedSumTest(EmoModelTestBase, unittest.TestCase):
    variant = {"aggregation": "weighted_sum"}


class EmoLoRATest(EmoModelTestBase, unittest.TestCase):
    variant = {"aggregation": "weighted_sum", "adapter": "lora"}


class EmoBottleneckTest(EmoModelTestBase, unittest.TestCase):
    variant = {"aggregation": "last", "adapter": "bottleneck", "bottleneck_reduction": 4}


class EmoFullFineTuningTest(EmoModelTestBase, unittest.TestCase):
    variant = {"aggregation": "weighted_sum", "freeze_backbone": False}
