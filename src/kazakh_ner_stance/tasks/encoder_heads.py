"""What the project's own model types share: a pretrained encoder (any AutoModel, stored as a
config dict inside ours) with small heads on top, saved as one safetensors checkpoint.

`KnsJointModel` (tasks/joint.py) and `KnsStanceModel` (tasks/stance_model.py) build on it."""

from __future__ import annotations

from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

from ..errors import KnsError


class EncoderHeadsConfig(PretrainedConfig):
    """Base config: `encoder` holds the wrapped encoder's config as a dict (so one config.json
    describes the whole model); subclasses add their heads' settings."""

    def __init__(self, encoder: dict | None = None, **kwargs):
        if isinstance(encoder, PretrainedConfig):
            encoder = encoder.to_dict()
        self.encoder = dict(encoder or {})
        super().__init__(**kwargs)

    def encoder_config(self) -> PretrainedConfig:
        d = dict(self.encoder)
        model_type = d.pop("model_type")
        return AutoConfig.for_model(model_type, **d)


def encoder_from_config(enc_cfg):
    """A randomly initialised encoder without BERT's pooler (the heads read token vectors)."""
    try:
        return AutoModel.from_config(enc_cfg, add_pooling_layer=False)
    except TypeError:  # encoders without a pooler
        return AutoModel.from_config(enc_cfg)


def load_pretrained_encoder(model_dir):
    """The encoder in float32 for fine-tuning: transformers 5 loads a checkpoint in the dtype it
    was stored in, and a half-precision encoder (a trimmed float16 copy, a hub model saved in
    fp16) would otherwise train with half-precision master weights and clash with float32 heads."""
    import torch

    try:
        return AutoModel.from_pretrained(model_dir, use_safetensors=True, add_pooling_layer=False, dtype=torch.float32)
    except TypeError:  # encoders without a pooler
        return AutoModel.from_pretrained(model_dir, use_safetensors=True, dtype=torch.float32)


def mlp_head(in_dim: int, hidden: int, n_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, n_out),
    )


class EncoderWithHeads(PreTrainedModel):
    """Base class: `self.encoder` plus heads; `config.encoder` holds the encoder's config."""

    base_model_prefix = "encoder"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    # forward returns a mean loss: Trainer divides it by the gradient-accumulation steps.
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        std = float(self.config.encoder.get("initializer_range", 0.02))
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.encoder.set_input_embeddings(value)

    def copy_encoder_weights(self, pretrained) -> None:
        """Copy a pretrained encoder's weights in (after post_init, so that no weight
        initialisation can touch them); an error when they do not fit."""
        missing, unexpected = self.encoder.load_state_dict(pretrained.state_dict(), strict=False)
        if unexpected or [k for k in missing if "position_ids" not in k]:
            raise KnsError(f"encoder weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
