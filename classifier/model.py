"""The classification network: a BERT encoder plus a linear head over [CLS] and pooled spans."""
from __future__ import annotations

import torch
from torch import nn

# The target sentiment task's labels (kept here for the modules that read sentiment outputs).
LABELS = ("negative", "neutral", "positive")


class SpanClassifier(nn.Module):
    """Encoder + linear head on [h_CLS ; mean of span 1's token states ; ... ; span n].

    `target_mask` holds k on the tokens of the k-th span (0 elsewhere): one span (the target)
    for target sentiment, two (e1 and e2) for directed stance. Both tasks thus take the same
    four input tensors, so batching, ONNX export and RunInference code are shared.
    """

    def __init__(self, encoder: nn.Module, n_labels: int = len(LABELS), n_spans: int = 1,
                 dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.n_spans = n_spans
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear((1 + n_spans) * hidden, n_labels)

    def forward(self, input_ids, attention_mask, token_type_ids, target_mask):
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        features = [states[:, 0]]
        for k in range(1, self.n_spans + 1):
            weights = (target_mask == k).to(states.dtype).unsqueeze(-1)
            features.append((states * weights).sum(1) / weights.sum(1).clamp(min=1.0))
        return self.head(self.dropout(torch.cat(features, dim=-1)))


# The name the first release used; model directories and callers keep working.
TargetSentimentModel = SpanClassifier
