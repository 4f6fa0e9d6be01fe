"""A target-stance classifier that reads the target markers' vectors (`KnsStanceModel`).

`AutoModelForSequenceClassification` classifies from the first token through BERT's pooler
(dense + tanh). Multilingual-e5 ships no pooler weights, so that layer starts random, and the
first token has to learn where in the sentence the target is. Relation classifiers read the
entity markers instead ("entity start" pooling, Baldini Soares et al., 2019): the output
vectors at ``[TGT]`` and ``[/TGT]`` already attend to the words around the target, which is
where Kazakh news puts the cues of stance (a verb after the target, a genitive/dative phrase
around it). This head concatenates those two vectors (and, with ``use_cls``, the first token)
and classifies them with a small MLP.

The class registers itself with `AutoModelForSequenceClassification` (model_type
``kns_stance``), so `load_stance_checkpoint` and the predictor load it like the plain head;
the weights are one ``model.safetensors`` as always.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from ..errors import KnsError
from .encoder_heads import EncoderHeadsConfig, EncoderWithHeads, encoder_from_config, mlp_head


class KnsStanceConfig(EncoderHeadsConfig):
    """The encoder's config (as a dict) plus the marker head's settings."""

    model_type = "kns_stance"

    def __init__(self, encoder: dict | None = None, marker_ids: Sequence[int] = (), use_cls: bool = True,
                 head_hidden: int | None = None, head_dropout: float = 0.1, **kwargs):
        self.marker_ids = [int(i) for i in marker_ids]
        self.use_cls = bool(use_cls)
        self.head_hidden = head_hidden
        self.head_dropout = float(head_dropout)
        super().__init__(encoder=encoder, **kwargs)


class KnsStanceModel(EncoderWithHeads):
    config_class = KnsStanceConfig

    def __init__(self, config: KnsStanceConfig, encoder=None):
        super().__init__(config)
        if len(config.marker_ids) != 2:
            raise KnsError(f"kns_stance needs the ids of the opening and closing marker, got {config.marker_ids}")
        enc_cfg = config.encoder_config()
        self.encoder = encoder if encoder is not None else encoder_from_config(enc_cfg)
        h = int(enc_cfg.hidden_size)
        hidden = int(config.head_hidden or h)
        in_dim = h * (3 if config.use_cls else 2)
        self.head = mlp_head(in_dim, hidden, config.num_labels, config.head_dropout)
        self.post_init()

    @classmethod
    def from_encoder(cls, encoder, marker_ids: Sequence[int], **config_kwargs) -> "KnsStanceModel":
        """Wrap a loaded encoder (its embedding matrix already holds the marker rows)."""
        config_kwargs.setdefault("pad_token_id", encoder.config.pad_token_id)
        config = KnsStanceConfig(encoder=encoder.config.to_dict(), marker_ids=marker_ids, **config_kwargs)
        model = cls(config)
        model.copy_encoder_weights(encoder)
        return model

    def marker_positions(self, input_ids):
        """[batch, 2] first position of each marker; 0 (the first token) where a marker is absent
        (only when a target longer than the whole window was cut, which encode_stance avoids)."""
        cols = []
        for mid in self.config.marker_ids:
            hit = input_ids == int(mid)
            cols.append(torch.where(hit.any(1), hit.int().argmax(1), torch.zeros_like(hit[:, 0], dtype=torch.long)))
        return torch.stack(cols, dim=1)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, return_dict=None,
                **kwargs):
        enc_kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            enc_kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**enc_kwargs).last_hidden_state
        pos = self.marker_positions(input_ids)
        parts = torch.gather(hidden, 1, pos.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))  # [b, 2, h]
        vec = parts.reshape(hidden.shape[0], -1)
        if self.config.use_cls:
            vec = torch.cat([vec, hidden[:, 0]], dim=-1)
        logits = self.head(vec)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register("kns_stance", KnsStanceConfig, exist_ok=True)
AutoModelForSequenceClassification.register(KnsStanceConfig, KnsStanceModel, exist_ok=True)
