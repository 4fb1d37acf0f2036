"""The target-dependent sentiment network: a BERT encoder plus a head over [CLS] and the target."""
from __future__ import annotations

import torch
from torch import nn

LABELS = ("negative", "neutral", "positive")


class TargetSentimentModel(nn.Module):
    """Encoder + linear head on [h_CLS ; mean of the target's token states]."""

    def __init__(self, encoder: nn.Module, n_labels: int = len(LABELS), dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, n_labels)

    def forward(self, input_ids, attention_mask, token_type_ids, target_mask):
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        weights = target_mask.to(states.dtype).unsqueeze(-1)
        target = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        features = torch.cat([states[:, 0], target], dim=-1)
        return self.head(self.dropout(features))
