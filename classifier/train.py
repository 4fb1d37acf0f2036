"""Fine-tunes a classifier for one task (target sentiment or directed stance): one loop for both.

Checkpoints are chosen by `select`: `best` keeps the best dev macro-F1 (with early stopping),
`last` ships the end of the schedule and uses dev only to log the curve, so the dev figure stays
an unbiased look rather than a selected maximum.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import math
import random
import re
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from stancebeam.classifier.artifacts import (DEFAULT_BASE, load_base, resolve_base,
                                  save_model)
from stancebeam.classifier.distill import SoftTargets
from stancebeam.classifier.encoding import length_batches, pad_batch
from stancebeam.classifier.inference import TargetClassifier
from stancebeam.classifier.metrics import classification_report
from stancebeam.classifier.model import SpanClassifier
from stancebeam.classifier.tasks import get_task

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainConfig:
    train: str  # a labelled JSONL, or several joined by commas (read in order)
    dev: str
    out: str
    task: str = "sentiment"
    scheme: str = "markers"
    base: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_BASE))
    max_length: int = 128
    epochs: int = 4
    batch_size: int = 32
    lr: float = 6e-5
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    warmup: float = 0.1
    patience: int = 2
    evals_per_epoch: int = 2
    seed: int = 13
    threads: int = 2
    limit: int | None = None  # train on the first N examples only (tests, quick trials)
    class_weights: str = "none"  # none | inverse | sqrt: loss weights from the label counts
    swap_augment: str = "none"  # stance: none | directed | all (swapped copies; see swap_augmented)
    select: str = "best"  # best (dev macro-F1, early stopping) | last (end of the schedule)
    init_from: str | None = None  # start from a trained model: its encoder (same task: all of it)
    layer_decay: float = 1.0  # layer-wise learning-rate decay (1: one rate for all layers)
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: off); eval/ship it
    rdrop: float = 0.0  # R-Drop: weight of the KL between two dropout passes of each batch (0: off)
    aux_task: str | None = None  # multi-task: a second task trained through the same encoder
    aux_train: str | None = None  # that task's labelled JSONL
    aux_weight: float = 0.5  # its loss weight
    aux_every: int = 2  # one of its batches every N main-task steps
    distill: str | None = None  # teacher-labelled JSONL (`stancebeam distill-label`): soft targets
    distill_weight: float = 1.0  # their loss weight
    distill_every: int = 1  # one of their batches every N steps
    model_id: str = "stancebeam-tsc-minilm"
    weights_dtype: str = "float16"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def shuffled_length_batches(lengths, batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (little padding) in random order; lengths get a little noise
    so that batch composition changes between epochs."""
    noisy = [n + rng.random() * 4 for n in lengths]
    batches = length_batches(noisy, batch_size)
    rng.shuffle(batches)
    return batches


def endless_length_batches(lengths, batch_size: int, rng: random.Random):
    """Batches of a side dataset without end: a fresh shuffled pass whenever one runs out."""
    return itertools.chain.from_iterable(
        shuffled_length_batches(lengths, batch_size, rng) for _ in itertools.count())


def freeze_word_embeddings(model: SpanClassifier, trainable_rows: list[int]) -> None:
    """Keeps the word-embedding matrix fixed except the marker rows, so the shipped delta is small.

    The other rows' gradients are zeroed; with no weight decay on embeddings, AdamW then leaves
    them bit-for-bit unchanged.
    """
    weight = model.encoder.embeddings.word_embeddings.weight
    mask = torch.zeros(weight.shape[0], 1)
    mask[trainable_rows] = 1.0
    weight.register_hook(lambda grad: grad * mask)


def linear_schedule(optimizer, total: int, warmup: float):
    """Linear warm-up over the first `warmup` share of `total` steps, then linear decay to 0."""
    warm = max(1, int(total * warmup))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))


_LAYER = re.compile(r"\.layer\.(\d+)\.")


def layer_depth(name: str, n_layers: int) -> int:
    """A parameter's depth in the network: 0 for the embeddings, i + 1 for transformer layer i,
    n_layers + 1 for what sits above the layers (pooler, heads)."""
    if ".embeddings." in f".{name}":
        return 0
    match = _LAYER.search(name)
    return int(match.group(1)) + 1 if match else n_layers + 1


def parameter_groups(model: torch.nn.Module, weight_decay: float, lr: float,
                     layer_decay: float = 1.0, n_layers: int = 0) -> list[dict]:
    """AdamW groups: no weight decay on biases, LayerNorms and embeddings; with `layer_decay` < 1,
    layer-wise learning-rate decay: the heads train at `lr`, each layer below at `layer_decay`
    times the rate of the one above, so the pretrained lower layers move least."""
    groups: dict[tuple[bool, int], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decayed = not (p.ndim < 2 or "LayerNorm" in name or "embeddings" in name)
        depth = layer_depth(name, n_layers) if layer_decay != 1.0 else n_layers + 1
        groups.setdefault((decayed, depth), []).append(p)
    return [{"params": params, "weight_decay": weight_decay if decayed else 0.0,
             "lr": lr * layer_decay ** (n_layers + 1 - depth)}
            for (decayed, depth), params in sorted(groups.items())]


def rdrop_loss(loss_fn, logits_a: torch.Tensor, logits_b: torch.Tensor, labels: torch.Tensor,
               alpha: float) -> torch.Tensor:
    """R-Drop (Liang et al. 2021): the same batch through the network twice, with different
    dropout masks; both passes' task loss plus `alpha` times the symmetric KL between their
    predicted distributions, which pulls the dropout sub-networks toward agreement."""
    log_a, log_b = logits_a.log_softmax(-1), logits_b.log_softmax(-1)
    kl = (torch.nn.functional.kl_div(log_a, log_b, log_target=True, reduction="batchmean")
          + torch.nn.functional.kl_div(log_b, log_a, log_target=True, reduction="batchmean")) / 2
    return (loss_fn(logits_a, labels) + loss_fn(logits_b, labels)) / 2 + alpha * kl


class WeightAverage:
    """An exponential moving average of a model's trainable weights (EMA).

    The average of a run's late weights often sits in a flatter region than the last step's and
    generalises a little better (here it did not: see the stance model card). The decay ramps up
    over the first steps, so the average does not start at the untrained weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, p in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(p.detach(), 1.0 - decay)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module):
        """The model carries the averaged weights inside the block and its own ones after it."""
        params = dict(model.named_parameters())
        live = {n: params[n].detach().clone() for n in self.shadow}
        with torch.no_grad():
            for name, value in self.shadow.items():
                params[name].copy_(value)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, value in live.items():
                    params[name].copy_(value)


class AuxiliaryTask:
    """A second task trained through the main model's encoder (multi-task learning).

    It has its own head, data and encoding; one of its batches joins every `every`-th main step
    and its loss is added with `weight`. Only the main task's head ships: the auxiliary task
    shapes the shared encoder and is then dropped.
    """

    def __init__(self, cfg: "TrainConfig", tokenizer, encoder_module: torch.nn.Module, rng):
        self.task = get_task(cfg.aux_task)
        if not cfg.aux_train:
            raise ValueError("aux_task needs aux_train (its labelled JSONL)")
        examples, labels = self.task.read(cfg.aux_train)
        self.encoder = self.task.encoder(tokenizer, "markers", cfg.max_length)
        self.encoded = self.encoder.encode(examples)
        self.labels = torch.tensor(labels)
        self.model = SpanClassifier(encoder_module, n_labels=len(self.task.labels),
                                    n_spans=self.task.n_spans)
        self.weight, self.every = cfg.aux_weight, max(1, cfg.aux_every)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self._batches = endless_length_batches([len(e) for e in self.encoded], cfg.batch_size, rng)

    def loss(self, step: int):
        if step % self.every:
            return None
        idx = next(self._batches)
        arrays = pad_batch([self.encoded[i] for i in idx], self.encoder.pad_id)
        logits = self.model(**{k: torch.from_numpy(v) for k, v in arrays.items()})
        return self.weight * self.loss_fn(logits, self.labels[idx])


def evaluate_model(model, encoder, examples, labels, label_names, batch_size=64) -> dict:
    encoded = encoder.encode(examples)
    model.eval()
    preds = np.zeros(len(encoded), dtype=int)
    with torch.inference_mode():
        for idx in length_batches([len(e) for e in encoded], batch_size):
            arrays = pad_batch([encoded[i] for i in idx], encoder.pad_id)
            logits = model(**{k: torch.from_numpy(v) for k, v in arrays.items()})
            preds[idx] = logits.argmax(-1).numpy()
    model.train()
    return classification_report(labels, preds, label_names)


def init_from_model(model: SpanClassifier, model_dir: str, task_name: str,
                    marker_ids: list[int]) -> None:
    """Starts from another trained model's weights.

    From a model of another task (sequential transfer) or from `stancebeam adapt`'s encoder, only
    the `encoder.*` tensors are taken: the head belongs to the other task, and the word embeddings
    (with the marker rows) stay those of the base encoder. From a model of the same task with the
    same head, everything it trained is taken (head and marker rows too): training continues it.
    """
    from safetensors.torch import load_file

    from stancebeam.classifier.artifacts import MANIFEST, MARKER_ROWS, WEIGHTS, read_manifest

    trained = {k: v.float() for k, v in load_file(str(Path(model_dir) / WEIGHTS)).items()}
    # `adapt` writes encoder weights without a manifest: those have no task and no head.
    has_manifest = (Path(model_dir) / MANIFEST).is_file()
    source_task = read_manifest(model_dir).get("task") if has_manifest else None
    head = {k: v for k, v in trained.items() if k.startswith("head.")}
    current = model.state_dict()
    continues = (source_task == task_name and MARKER_ROWS in trained
                 and all(k in current and current[k].shape == v.shape for k, v in head.items()))
    state = {k: v for k, v in trained.items()
             if k.startswith("encoder.") or (continues and k.startswith("head."))}
    missing = set(state) - set(current)
    if missing:
        raise ValueError(f"{model_dir} does not fit this encoder: {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)
    if continues:
        with torch.no_grad():
            model.encoder.embeddings.word_embeddings.weight[marker_ids] = trained[MARKER_ROWS]
    log.info("%s from %s (%d tensors)", "training continues" if continues else "encoder initialised",
             model_dir, len(state))


def swap_augmented(task, examples, labels, mode: str = "all"):
    """Adds copies of examples with the roles of e1 and e2 swapped (and their labels mapped).

    The data names the opinion holder first far more often than second (classes 2 and 4 are
    rare), so swapping the two actors' roles turns the frequent directions into examples of the
    rare ones without inventing any text.
    - `directed`: only the examples with a directed label. The marker order then says
      "directed" by itself, a shortcut: this model's answers on swapped pairs agree with its
      plain ones 42% of the time. It still scored best on valid (0.623 against 0.598 for `all`
      with two epochs and the sentiment encoder as start; see the model card).
    - `all`: every example, `none` ones included, so the marker order only carries the data's
      prior (in the original order e1 favors e2 five times as often as the reverse).
    """
    if mode not in ("directed", "all"):
        raise ValueError(f"swap_augment must be none, directed or all, got {mode!r}")
    extra = [(x.swapped(), task.swap_label[y]) for x, y in zip(examples, labels)
             if mode == "all" or task.swap_label[y] != y]
    return examples + [x for x, _ in extra], labels + [y for _, y in extra]


def loss_weights(labels: list[int], n_labels: int, kind: str) -> torch.Tensor | None:
    if kind == "none":
        return None
    if kind not in ("inverse", "sqrt"):
        raise ValueError(f"class_weights must be none, inverse or sqrt, got {kind!r}")
    counts = np.bincount(labels, minlength=n_labels).astype(float).clip(min=1.0)
    weights = counts.sum() / counts if kind == "inverse" else np.sqrt(counts.sum() / counts)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def read_training_files(task, paths: str):
    """Examples and labels of one file, or of several joined by commas, read in order and
    concatenated: a final model can train on train and dev together with the recipe fixed."""
    examples, labels = [], []
    for path in paths.split(","):
        x, y = task.read(path.strip())
        examples += x
        labels += y
    return examples, labels


def train(cfg: TrainConfig) -> dict:
    """Trains, keeps the best dev checkpoint in `cfg.out`, and returns a summary dict."""
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.select not in ("best", "last"):
        raise ValueError(f"select must be best or last, got {cfg.select!r}")
    task = get_task(cfg.task)
    train_x, train_y = read_training_files(task, cfg.train)
    dev_x, dev_y = task.read(cfg.dev)
    if cfg.limit:
        train_x, train_y = train_x[:cfg.limit], train_y[:cfg.limit]
    if cfg.swap_augment != "none":
        if task.swap_label is None:
            raise ValueError(f"task {task.name!r} has no roles to swap")
        train_x, train_y = swap_augmented(task, train_x, train_y, cfg.swap_augment)
    base_path = resolve_base(cfg.base, out)
    tokenizer, bare = load_base(base_path)
    encoder = task.encoder(tokenizer, cfg.scheme, cfg.max_length)
    model = SpanClassifier(bare, n_labels=len(task.labels), n_spans=task.n_spans)
    rng = random.Random(cfg.seed)
    aux = AuxiliaryTask(cfg, tokenizer, model.encoder, rng) if cfg.aux_task else None
    soft = None
    if cfg.distill:
        if task.name != "stance":
            raise ValueError("distill: soft targets are read for the stance task only")
        soft = SoftTargets(cfg.distill, encoder, len(task.labels), cfg.batch_size,
                           cfg.distill_weight, cfg.distill_every, rng)
    # The marker slots either task uses ([unused0..3] at most), in vocabulary order.
    marker_ids = sorted(set(encoder.marker_ids) | set(aux.encoder.marker_ids if aux else ()))
    embeddings = model.encoder.embeddings.word_embeddings.weight
    with torch.no_grad():  # start the markers from brackets rather than untrained slots
        brackets = ("[", "]", "(", ")")
        for marker, token in zip(marker_ids, brackets):
            embeddings[marker] = embeddings[tokenizer.convert_tokens_to_ids(token)]
    if cfg.init_from:
        init_from_model(model, cfg.init_from, task.name, encoder.marker_ids)
    freeze_word_embeddings(model, marker_ids)
    encoded = encoder.encode(train_x)
    labels = torch.tensor(train_y)
    steps_per_epoch = math.ceil(len(encoded) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    # The main model and the auxiliary head share the encoder: one set of parameters to update.
    trained = torch.nn.ModuleList([model] + ([aux.model] if aux else []))
    optimizer = torch.optim.AdamW(parameter_groups(
        trained, cfg.weight_decay, cfg.lr, cfg.layer_decay, model.encoder.config.num_hidden_layers))
    average = WeightAverage(model, cfg.ema) if cfg.ema > 0 else None
    scheduler = linear_schedule(optimizer, total, cfg.warmup)
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=loss_weights(train_y, len(task.labels), cfg.class_weights),
        label_smoothing=cfg.label_smoothing)
    eval_every = max(1, steps_per_epoch // max(1, cfg.evals_per_epoch))
    history, best, bad_evals, step = [], -1.0, 0, 0
    log.info("training %s (%s) on %d examples (%d steps/epoch)%s, dev %d examples, scheme=%s",
             cfg.model_id, task.name, len(encoded), steps_per_epoch,
             f" and {len(soft)} teacher-labelled ones" if soft else "", len(dev_x), cfg.scheme)
    started = time.time()

    def evaluate_and_save(live: dict | None = None) -> bool:
        """Scores the model on dev, saves it by `select`; True when early stopping says stop.
        `live`: with EMA on, the live weights' report, logged beside the average's."""
        nonlocal best, bad_evals
        report = evaluate_model(model, encoder, dev_x, dev_y, task.labels)
        entry = {"step": step, "epoch": round(step / steps_per_epoch, 2),
                 "dev_f1_macro": report["f1_macro"], "dev_accuracy": report["accuracy"],
                 "dev_f1": {k: v["f1"] for k, v in report["per_class"].items()},
                 "elapsed_s": round(time.time() - started)}
        if live:
            entry["dev_f1_macro_live"] = live["f1_macro"]
        history.append(entry)
        log.info("eval %s", json.dumps(entry))
        save_model(model, encoder, out / "checkpoint-last", cfg.base, cfg.model_id,
                   cfg.weights_dtype, task=task.name)
        if report["f1_macro"] > best or cfg.select == "last":
            best, bad_evals = max(best, report["f1_macro"]), 0
            save_model(model, encoder, out, cfg.base, cfg.model_id, cfg.weights_dtype,
                       extra={"training": {**dataclasses.asdict(cfg), **entry}},
                       task=task.name)
            return False
        bad_evals += 1
        if bad_evals > cfg.patience:
            log.info("early stop: no dev gain in %d evaluations", bad_evals)
            return True
        return False

    model.train()
    stop = False
    for epoch in range(cfg.epochs):
        bar = tqdm(shuffled_length_batches([len(e) for e in encoded], cfg.batch_size, rng),
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", mininterval=10)
        for idx in bar:
            arrays = pad_batch([encoded[i] for i in idx], encoder.pad_id)
            inputs = {k: torch.from_numpy(v) for k, v in arrays.items()}
            if cfg.rdrop > 0:  # both dropout passes in one forward over the batch stacked twice
                logits = model(**{k: torch.cat([v, v]) for k, v in inputs.items()})
                loss = rdrop_loss(loss_fn, *logits.chunk(2), labels[idx], cfg.rdrop)
            else:
                loss = loss_fn(model(**inputs), labels[idx])
            for extra in (aux.loss(step) if aux else None,
                          soft.loss(model, step) if soft else None):
                if extra is not None:
                    loss = loss + extra
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if average:
                average.update(model)
            step += 1
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step % eval_every == 0 or step == total:
                # With EMA on, the averaged weights are what is scored and saved; the live
                # ones are scored too, so one run measures what the average adds.
                if average:
                    live = evaluate_model(model, encoder, dev_x, dev_y, task.labels)
                    with average.applied(model):
                        stop = evaluate_and_save(live)
                else:
                    stop = evaluate_and_save()
                if stop:
                    break
        if stop:
            break
    shutil.rmtree(out / "checkpoint-last", ignore_errors=True)
    # Score the shipped artifact itself (reloaded from disk, stored dtype), not the live weights.
    final = TargetClassifier.from_dir(str(out)).predict_proba(dev_x).argmax(-1)
    summary = {"task": task.name, "best_dev_f1_macro": best,
               "reloaded_dev": classification_report(dev_y, final, task.labels),
               "history": history, "seconds": round(time.time() - started)}
    (out / "training_log.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
