"""Domain-adaptive pretraining: masked-LM training of the base encoder on unlabelled news text.

    stancebeam adapt --news ../shared/data/news/wikinews.jsonl --out runs/dapt
    stancebeam train ... --init-from runs/dapt

The base encoder (all-MiniLM-L6-v2) was trained on sentence similarity, not on news; a few
epochs of masked-LM on news articles move its layers towards the domain before the task
fine-tune starts from them (`--init-from`, which takes the `encoder.*` tensors only). The word
embeddings stay frozen, as in every fine-tune here, so the adapted encoder is still a delta over
the pinned package and a model trained from it ships in the same format. The package has no
masked-LM head: its transform layer starts untrained and the decoder is tied to the (frozen)
word embeddings. The output folder holds `weights.safetensors` (the encoder's tensors, named as
`init_from` reads them) and `adapt_log.json` (settings, the held-out masked-LM loss before and
after, the loss curve). The texts are Wikinews (CC BY 2.5): a model derived from them keeps
`data/NOTICE-wikinews.md` with it.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from stancebeam.classifier.artifacts import (DEFAULT_BASE, WEIGHTS, WORD_EMBEDDINGS, load_base,
                                             resolve_base)
from stancebeam.classifier.tasks import jsonl_records
from stancebeam.classifier.train import linear_schedule

log = logging.getLogger(__name__)


def news_texts(path: str) -> list[str]:
    """The article bodies of a JSONL news file (`text` of each record), blank ones skipped."""
    texts = (record.get("text") or "" for _, record in jsonl_records(path))
    return [text for text in texts if text.strip()]


def chunked(tokenizer, texts: list[str], length: int) -> list[list[int]]:
    """The texts' tokens run together and cut into sequences of `length` ([CLS] ... [SEP])."""
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        stream.append(tokenizer.sep_token_id)  # an article boundary
    body = length - 2
    return [[tokenizer.cls_token_id, *stream[i:i + body], tokenizer.sep_token_id]
            for i in range(0, len(stream) - body + 1, body)]


def mask_tokens(ids: torch.Tensor, tokenizer, generator: torch.Generator, rate: float = 0.15):
    """BERT's masking: `rate` of the ordinary tokens are predicted; of those 80% become [MASK],
    10% a random token, 10% stay. Returns (inputs, labels with -100 where nothing is predicted)."""
    special = torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id])
    ordinary = ~torch.isin(ids, special)
    chosen = (torch.rand(ids.shape, generator=generator) < rate) & ordinary
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    draw = torch.rand(ids.shape, generator=generator)
    inputs[chosen & (draw < 0.8)] = tokenizer.mask_token_id
    randomised = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[randomised] = torch.randint(len(tokenizer), ids.shape, generator=generator)[randomised]
    return inputs, labels


def masked_lm(encoder):
    """A BertForMaskedLM around the base encoder's weights, the decoder tied to its frozen
    word embeddings (the package ships no masked-LM head)."""
    from transformers import BertForMaskedLM

    mlm = BertForMaskedLM(encoder.config)
    missing, _ = mlm.bert.load_state_dict(encoder.state_dict(), strict=False)
    if any(not k.startswith("pooler.") for k in missing):
        raise ValueError(f"the base encoder does not fit a BERT masked LM: {missing[:3]}")
    mlm.cls.predictions.decoder.weight = mlm.bert.embeddings.word_embeddings.weight
    mlm.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return mlm


def masked_loss(mlm, inputs: torch.Tensor, labels: torch.Tensor, encoder_grad: bool = True):
    """Cross-entropy at the masked positions only: the vocabulary projection is as costly as the
    encoder when applied to every token, and only ~15% of them are predicted."""
    with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
        hidden = mlm.bert(input_ids=inputs).last_hidden_state
    chosen = labels != -100
    return torch.nn.functional.cross_entropy(mlm.cls(hidden[chosen]), labels[chosen])


@torch.no_grad()
def mlm_loss(mlm, batches) -> float:
    mlm.eval()
    losses = [masked_loss(mlm, x, y).item() for x, y in batches]
    mlm.train()
    return float(np.mean(losses)) if losses else float("nan")


def adapt(news: str, out: str, base: dict | None = None, epochs: int = 2, batch_size: int = 32,
          length: int = 128, lr: float = 1e-4, warmup: float = 0.06, head_only: float = 0.1,
          heldout: float = 0.03, seed: int = 13, threads: int = 2,
          limit: int | None = None) -> dict:
    torch.set_num_threads(threads)
    random.seed(seed)
    torch.manual_seed(seed)
    base = base or dict(DEFAULT_BASE)
    tokenizer, encoder = load_base(resolve_base(base, out))
    texts = news_texts(news)[:limit]
    rng = random.Random(seed)
    rng.shuffle(texts)
    n_held = max(1, int(len(texts) * heldout)) if len(texts) > 1 else 0
    train_seqs = torch.tensor(chunked(tokenizer, texts[n_held:], length))
    held_seqs = torch.tensor(chunked(tokenizer, texts[:n_held], length))
    if not len(train_seqs):
        raise ValueError(f"{news}: not enough text for one sequence of {length} tokens")
    generator = torch.Generator().manual_seed(seed)
    # The held-out sequences are masked once, so the loss before and after compares like with like.
    held = [mask_tokens(held_seqs[i:i + batch_size], tokenizer, generator)
            for i in range(0, len(held_seqs), batch_size)]
    mlm = masked_lm(encoder)
    mlm.train()
    params = [p for p in mlm.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train_seqs) / batch_size)
    total = steps_per_epoch * epochs
    head_steps = int(total * head_only)
    scheduler = linear_schedule(optimizer, total, warmup)
    before = mlm_loss(mlm, held)
    log.info("adapting on %d sequences of %d tokens (%d held out), %d steps; held-out loss %.3f",
             len(train_seqs), length, len(held_seqs), total, before)
    curve, started, step = [], time.time(), 0
    for epoch in range(epochs):
        order = torch.randperm(len(train_seqs), generator=generator)
        running = []
        for i in range(0, len(order), batch_size):
            inputs, labels = mask_tokens(train_seqs[order[i:i + batch_size]], tokenizer, generator)
            # The head starts untrained: its first steps train it alone, so the encoder is not
            # pushed around by a random projection's gradients.
            loss = masked_loss(mlm, inputs, labels, encoder_grad=step >= head_steps)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            running.append(loss.item())
            if step % 50 == 0 or step == total:
                entry = {"step": step, "epoch": round(step / steps_per_epoch, 2),
                         "train_loss": round(float(np.mean(running)), 4),
                         "elapsed_s": round(time.time() - started)}
                curve.append(entry)
                running = []
                log.info("adapt %s", json.dumps(entry))
    after = mlm_loss(mlm, held)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    state = {f"encoder.{k}": v.detach().to(torch.float16).contiguous()
             for k, v in mlm.bert.state_dict().items()
             if not k.startswith("pooler.") and f"encoder.{k}" != WORD_EMBEDDINGS}
    save_file(state, str(out_dir / WEIGHTS))
    summary = {"news": news, "base": base, "documents": len(texts), "sequences": len(train_seqs),
               "heldout_sequences": len(held_seqs), "length": length, "epochs": epochs,
               "batch_size": batch_size, "lr": lr, "seed": seed, "steps": total,
               "head_only_steps": head_steps,
               "heldout_mlm_loss_before": round(before, 4), "heldout_mlm_loss_after": round(after, 4),
               "seconds": round(time.time() - started), "curve": curve}
    (out_dir / "adapt_log.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("held-out masked-LM loss %.3f -> %.3f; encoder written to %s", before, after, out_dir)
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stancebeam adapt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--news", required=True, help="JSONL with a `text` field per article")
    parser.add_argument("--out", required=True)
    parser.add_argument("--base-path", default=None, help="a local encoder folder instead of the package")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="the first N articles only")
    args = parser.parse_args(argv)
    base = {"path": str(Path(args.base_path).resolve())} if args.base_path else None
    summary = adapt(args.news, args.out, base, args.epochs, args.batch_size, args.length, args.lr,
                    seed=args.seed, threads=args.threads, limit=args.limit)
    print(json.dumps({k: v for k, v in summary.items() if k != "curve"}))
    return 0
