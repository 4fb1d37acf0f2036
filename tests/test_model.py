"""The classifier: encoding, offline loading with clear errors, inference backends, train + evaluate."""
import json
import shutil

import numpy as np
import pytest

from stancebeam.classifier.artifacts import MANIFEST, WEIGHTS, ModelLoadError, load_model
from stancebeam.classifier.encoding import TargetEncoder, TargetExample
from stancebeam.classifier.inference import TargetClassifier
from stancebeam.pipeline.cli import main as cli_main
from tests.conftest import corpus_texts

SENTENCE = "Kim Jong Un praised China but warned the United States."
EXAMPLES = [TargetExample(SENTENCE, 0, 11), TargetExample(SENTENCE, 20, 25),
            TargetExample(SENTENCE, 41, 54)]


def test_marker_encoding_wraps_the_target(tiny_model_dir):
    loaded = load_model(tiny_model_dir)
    enc = loaded.encoder.encode([EXAMPLES[1]])[0]
    m0, m1 = loaded.encoder.marker_ids
    ids = enc.input_ids
    inner = ids[ids.index(m0) + 1:ids.index(m1)]
    assert loaded.tokenizer.decode(inner) == "china"
    assert sum(enc.target_mask) == len(inner) + 2


def test_pair_encoding_and_window_around_a_far_target(tiny_model_dir):
    tokenizer = load_model(tiny_model_dir).tokenizer
    long_sentence = "word " * 200 + "China"
    ex = TargetExample(long_sentence, len(long_sentence) - 5, len(long_sentence))
    for scheme in ("markers", "pair"):
        enc = TargetEncoder(tokenizer, scheme, 32).encode([ex])[0]
        assert len(enc) <= 32 and sum(enc.target_mask) >= 1
        if scheme == "pair":
            assert enc.token_type_ids[-1] == 1


def test_other_targets_get_their_own_markers(tiny_model_dir):
    tokenizer = load_model(tiny_model_dir).tokenizer
    encoder = TargetEncoder(tokenizer, "markers+others", 64)
    m0, m1, o0, o1 = encoder.marker_ids
    # China is the target; Kim Jong Un and the United States are marked as other targets, and an
    # "other" that overlaps the target (another mention of it) is not marked.
    ex = TargetExample(SENTENCE, 20, 25, others=((0, 11), (41, 54), (20, 25)))
    ids = encoder.encode([ex])[0].input_ids
    assert ids.count(o0) == ids.count(o1) == 2 and ids.count(m0) == ids.count(m1) == 1
    first = ids[ids.index(o0) + 1:ids.index(o1)]
    assert tokenizer.decode(first) == "kim jong un"
    assert tokenizer.decode(ids[ids.index(m0) + 1:ids.index(m1)]) == "china"
    # Without others the scheme encodes exactly like `markers`.
    plain = TargetExample(SENTENCE, 20, 25)
    assert encoder.encode([plain])[0].input_ids == TargetEncoder(tokenizer, "markers", 64).encode([plain])[0].input_ids
    # A window too short for the whole sentence stays within the budget.
    assert len(TargetEncoder(tokenizer, "markers+others", 12).encode([ex])[0]) <= 12


def test_predict_proba_is_a_distribution(tiny_model_dir):
    probs = TargetClassifier.from_dir(str(tiny_model_dir)).predict_proba(EXAMPLES)
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_onnx_int8_backend_agrees_with_torch(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("STANCEBEAM_CACHE", str(tmp_path))
    fp32 = TargetClassifier.from_dir(str(tiny_model_dir)).predict_proba(EXAMPLES)
    int8 = TargetClassifier.from_dir(str(tiny_model_dir), backend="onnx-int8").predict_proba(EXAMPLES)
    assert np.abs(fp32 - int8).max() < 0.05
    assert list(tmp_path.rglob("model-int8.onnx"))


@pytest.mark.parametrize("damage,message", [
    ("missing_manifest", "stancebeam_model.json is missing"),
    ("missing_weights", "weights file .* is missing"),
    ("corrupt_weights", "does not match the sha256"),
    ("wrong_shape", "does not match the base encoder|has shape"),
    ("no_dir", "does not exist"),
])
def test_damaged_model_dirs_fail_clearly(tiny_model_dir, tmp_path, damage, message):
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    if damage == "missing_manifest":
        (target / MANIFEST).unlink()
    elif damage == "missing_weights":
        (target / WEIGHTS).unlink()
    elif damage == "corrupt_weights":
        data = bytearray((target / WEIGHTS).read_bytes())
        data[-10:] = b"0123456789"
        (target / WEIGHTS).write_bytes(bytes(data))
    elif damage == "wrong_shape":
        from safetensors.torch import load_file, save_file

        state = load_file(str(target / WEIGHTS))
        state["head.weight"] = state["head.weight"][:, :10].contiguous()
        save_file(state, str(target / WEIGHTS))
        manifest = json.loads((target / MANIFEST).read_text())
        manifest.pop("weights_sha256")
        (target / MANIFEST).write_text(json.dumps(manifest))
    elif damage == "no_dir":
        target = tmp_path / "nowhere"
    with pytest.raises(ModelLoadError, match=message):
        load_model(target)


def write_newsmtsc(path, n):
    rows = []
    for i in range(n):
        polarity, verb = [(2.0, "attacked"), (4.0, "met"), (6.0, "praised")][i % 3]
        sentence = f"Reporters said Smith {verb} Jones on day {i}."
        rows.append({"primary_gid": str(i), "sentence_normalized": sentence, "targets": [
            {"from": sentence.index("Jones"), "to": sentence.index("Jones") + 5, "mention": "Jones",
             "polarity": polarity}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_and_evaluate_end_to_end(tiny_model_dir, tmp_path, capsys):
    train = write_newsmtsc(tmp_path / "train.jsonl", 48)
    dev = write_newsmtsc(tmp_path / "dev.jsonl", 12)
    out = tmp_path / "trained"
    code = cli_main(["train", "--train", str(train), "--dev", str(dev), "--out", str(out),
                     "--base-path", str(tiny_model_dir / "encoder"), "--epochs", "2",
                     "--batch-size", "8", "--threads", "1", "--max-length", "32"])
    assert code == 0
    assert (out / MANIFEST).is_file() and (out / "training_log.json").is_file()
    log = json.loads((out / "training_log.json").read_text())
    assert len(log["history"]) >= 2
    capsys.readouterr()
    assert cli_main(["evaluate", "--data", str(dev), "--model", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n_targets"] == 12
    assert set(report) >= {"f1_macro", "accuracy", "per_class", "confusion_matrix"}
    assert sum(map(sum, report["confusion_matrix"])) == 12
    # Deterministic: the same seed gives the same weights.
    out2 = tmp_path / "trained2"
    cli_main(["train", "--train", str(train), "--dev", str(dev), "--out", str(out2),
              "--base-path", str(tiny_model_dir / "encoder"), "--epochs", "2", "--batch-size", "8",
              "--threads", "1", "--max-length", "32"])
    assert json.loads((out2 / MANIFEST).read_text())["weights_sha256"] == \
        json.loads((out / MANIFEST).read_text())["weights_sha256"]
    # A model's own manifest is enough to train it again (data paths and settings in `training`).
    out3 = tmp_path / "retrained"
    assert cli_main(["train", "--config", str(out / MANIFEST), "--out", str(out3),
                     "--base-path", str(tiny_model_dir / "encoder")]) == 0
    assert json.loads((out3 / MANIFEST).read_text())["weights_sha256"] == \
        json.loads((out / MANIFEST).read_text())["weights_sha256"]


def test_evaluate_reports_a_missing_model_clearly(tmp_path, capsys):
    data = write_newsmtsc(tmp_path / "d.jsonl", 3)
    assert cli_main(["evaluate", "--data", str(data), "--model", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def write_directed(path, n):
    """Directed-stance JSONL (Park et al. format): Smith praises / attacks / meets Jones."""
    rows = []
    for i in range(n):
        label, verb = [(1, "praised"), (3, "attacked"), (0, "met")][i % 3]
        if i % 6 >= 3:  # the opinion holder named second
            sentence = f"Jones was {verb} by Smith on day {i}."
            label = {0: 0, 1: 2, 3: 4}[label]
            e1, e2 = "Jones", "Smith"
        else:
            sentence = f"Smith {verb} Jones on day {i}."
            e1, e2 = "Smith", "Jones"
        a, b = sentence.index(e1), sentence.index(e2)
        rows.append({"id": f"t-{i}", "sentence": sentence, "label": label,
                     "e1": {"text": e1, "from": a, "to": a + len(e1)},
                     "e2": {"text": e2, "from": b, "to": b + len(e2)}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_pair_encoding_marks_both_roles(tiny_stance_model_dir):
    from stancebeam.classifier.encoding import PairExample

    loaded = load_model(tiny_stance_model_dir)
    assert loaded.task == "stance" and loaded.model.n_spans == 2
    ex = PairExample(SENTENCE, 0, 11, 41, 54)
    for example, first_role in ((ex, 1), (ex.swapped(), 2)):
        enc = loaded.encoder.encode([example])[0]
        m = loaded.encoder.marker_ids
        ids = enc.input_ids
        opening = (m[0], m[2]) if first_role == 1 else (m[2], m[0])
        assert ids.index(opening[0]) < ids.index(opening[1])
        e1 = [i for i, k in zip(ids, enc.target_mask) if k == 1]
        e2 = [i for i, k in zip(ids, enc.target_mask) if k == 2]
        assert loaded.tokenizer.decode(e1[1:-1]) == ("kim jong un" if first_role == 1 else "united states")
        assert loaded.tokenizer.decode(e2[1:-1]) == ("united states" if first_role == 1 else "kim jong un")
    # A long sentence keeps both actors inside the window.
    far = "word " * 100 + SENTENCE + " word" * 100
    start = far.index("Kim")
    ex = PairExample(far, start, start + 11, start + 41, start + 54)
    from stancebeam.classifier.encoding import PairEncoder

    enc = PairEncoder(loaded.tokenizer, "markers", 24).encode([ex])[0]
    assert len(enc) <= 24 and 1 in enc.target_mask and 2 in enc.target_mask


def test_stance_train_and_evaluate_end_to_end(tiny_stance_model_dir, tmp_path, capsys):
    train = write_directed(tmp_path / "train.jsonl", 48)
    dev = write_directed(tmp_path / "dev.jsonl", 12)
    out = tmp_path / "stance"
    code = cli_main(["train", "--task", "stance", "--train", str(train), "--dev", str(dev),
                     "--out", str(out), "--base-path", str(tiny_stance_model_dir / "encoder"),
                     "--epochs", "1", "--batch-size", "8", "--threads", "1", "--max-length", "32",
                     "--swap-augment", "all", "--class-weights", "sqrt", "--select", "last"])
    assert code == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["task"] == "stance" and len(manifest["labels"]) == 5
    capsys.readouterr()
    assert cli_main(["evaluate", "--task", "stance", "--data", str(dev), "--model", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n"] == 12 and report["task"] == "stance"
    assert report["labels"] == ["none", "e1_favors_e2", "e2_favors_e1", "e1_against_e2", "e2_against_e1"]
    assert set(report) >= {"f1_macro", "accuracy", "per_class", "confusion_matrix"}
    # A sentiment model cannot be scored as a stance model.
    assert cli_main(["evaluate", "--task", "sentiment", "--data", str(dev), "--model", str(out)]) == 2


def test_swap_augmentation_maps_the_directions():
    from stancebeam.classifier.tasks import get_task
    from stancebeam.classifier.train import swap_augmented
    from stancebeam.classifier.encoding import PairExample

    task = get_task("stance")
    x = [PairExample("a b", 0, 1, 2, 3)] * 5
    xs, ys = swap_augmented(task, x, [0, 1, 2, 3, 4], "all")
    assert ys == [0, 1, 2, 3, 4, 0, 2, 1, 4, 3]
    assert xs[5] == PairExample("a b", 2, 3, 0, 1)
    assert swap_augmented(task, x, [0, 1, 2, 3, 4], "directed")[1] == [0, 1, 2, 3, 4, 2, 1, 4, 3]


def test_training_reads_several_files_joined_by_commas_in_order(tmp_path):
    from stancebeam.classifier.tasks import get_task
    from stancebeam.classifier.train import read_training_files

    def record(sentence, label):
        return json.dumps({"sentence": sentence, "e1": {"from": 0, "to": 1},
                           "e2": {"from": 2, "to": 3}, "label": label})

    first, second = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    first.write_text(record("a b c", 1) + "\n" + record("d e f", 0) + "\n")
    second.write_text(record("g h i", 4) + "\n")
    x, y = read_training_files(get_task("stance"), f"{first}, {second}")
    assert [e.sentence for e in x] == ["a b c", "d e f", "g h i"]
    assert y == [1, 0, 4]
    with pytest.raises(FileNotFoundError):
        read_training_files(get_task("stance"), f"{first},{tmp_path / 'missing.jsonl'}")


def test_multitask_and_weight_average_train_a_model_of_the_main_task_only(
        tiny_stance_model_dir, tmp_path):
    from safetensors.torch import load_file

    train = write_directed(tmp_path / "train.jsonl", 24)
    dev = write_directed(tmp_path / "dev.jsonl", 6)
    aux = write_newsmtsc(tmp_path / "aux.jsonl", 24)
    common = ["--task", "stance", "--train", str(train), "--dev", str(dev),
              "--base-path", str(tiny_stance_model_dir / "encoder"), "--epochs", "1",
              "--batch-size", "8", "--threads", "1", "--max-length", "32", "--select", "last"]
    plain, joint = tmp_path / "plain", tmp_path / "joint"
    assert cli_main(["train", *common, "--out", str(plain)]) == 0
    assert cli_main(["train", *common, "--out", str(joint), "--ema", "0.9",
                     "--aux-task", "sentiment", "--aux-train", str(aux), "--aux-every", "1"]) == 0
    manifest = json.loads((joint / MANIFEST).read_text())
    assert manifest["training"]["aux_task"] == "sentiment" and manifest["training"]["ema"] == 0.9
    # The auxiliary head does not ship: the artifact holds the same tensors as a plain model's.
    plain_state, joint_state = load_file(str(plain / WEIGHTS)), load_file(str(joint / WEIGHTS))
    assert set(joint_state) == set(plain_state)
    changed = [k for k in plain_state if not np.array_equal(plain_state[k].numpy(), joint_state[k].numpy())]
    assert any(k.startswith("encoder.") for k in changed)  # the auxiliary task moved the encoder
    assert load_model(joint).task == "stance"


def test_weight_average_swaps_in_and_restores_the_live_weights():
    import torch

    from stancebeam.classifier.train import WeightAverage

    model = torch.nn.Linear(2, 2)
    average = WeightAverage(model, decay=0.5)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update(model)  # the ramp-up keeps the first update's decay at 2/11
    live = model.weight.detach().clone()
    with average.applied(model):
        assert torch.allclose(model.weight, start + 9 / 11)
    assert torch.equal(model.weight, live)


def test_logit_bias_is_fitted_for_macro_f1_and_used_by_inference(tiny_model_dir, tmp_path):
    from stancebeam.classifier.calibration import fit_logit_bias, write_bias

    # Class 2 is rare and its logit runs 1.0 too low: no bias never predicts it.
    rng = np.random.default_rng(0)
    gold = np.array([0] * 80 + [1] * 80 + [2] * 10)
    log_probs = rng.normal(0, 0.3, (170, 3))
    log_probs[np.arange(170), gold] += 1.0
    log_probs[:, 2] -= 1.0
    bias = fit_logit_bias(log_probs, gold)
    assert bias[0] == 0 and bias[2] > 0.5
    assert (log_probs + bias).argmax(-1).tolist().count(2) > 0
    # Untouched classes keep offset 0 unless moving them helps.
    balanced = np.eye(3)[np.array([0, 1, 2] * 10)]
    assert fit_logit_bias(balanced, [0, 1, 2] * 10).tolist() == [0.0, 0.0, 0.0]

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = TargetClassifier.from_dir(str(model)).predict_proba(EXAMPLES)
    write_bias(model, [0.0, 0.0, 5.0], {"data": "test"})
    after = TargetClassifier.from_dir(str(model)).predict_proba(EXAMPLES)
    assert after[:, 2].min() > before[:, 2].max() - 1e-6 and np.allclose(after.sum(1), 1.0, atol=1e-5)
    load_model(model)  # the sha256 of the weights still matches


def test_calibrate_fits_on_one_model_and_writes_to_another(tiny_model_dir, tmp_path, capsys):
    data = write_newsmtsc(tmp_path / "heldout.jsonl", 30)
    target = tmp_path / "full"
    shutil.copytree(tiny_model_dir, target)
    capsys.readouterr()
    assert cli_main(["calibrate", "--model", str(tiny_model_dir), "--data", str(data),
                     "--apply-to", str(target)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 30 and result["f1_macro_after"] >= result["f1_macro_before"]
    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["logit_bias"] == result["logit_bias"]
    assert manifest["logit_bias_fitted"]["data"] == str(data)
    assert "logit_bias" not in json.loads((tiny_model_dir / MANIFEST).read_text())


def test_distillation_labels_with_the_teachers_mean_and_trains_on_it(tiny_stance_model_dir, tmp_path, capsys):
    from safetensors.torch import load_file

    from stancebeam.classifier.distill import read_pairs
    from stancebeam.classifier.inference import TargetClassifier

    train = write_directed(tmp_path / "train.jsonl", 24)
    dev = write_directed(tmp_path / "dev.jsonl", 6)
    unlabelled = tmp_path / "pairs.jsonl"
    rows = [json.loads(line) for line in write_directed(tmp_path / "u.jsonl", 18).read_text().splitlines()]
    unlabelled.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "label"}) + "\n"
                                  for r in rows))
    common = ["--task", "stance", "--train", str(train), "--dev", str(dev),
              "--base-path", str(tiny_stance_model_dir / "encoder"), "--epochs", "1",
              "--batch-size", "8", "--threads", "1", "--max-length", "32", "--select", "last"]
    teacher = tmp_path / "teacher"
    assert cli_main(["train", *common, "--out", str(teacher), "--seed", "5"]) == 0
    soft = tmp_path / "soft.jsonl"
    capsys.readouterr()
    assert cli_main(["distill-label", "--teachers", str(tiny_stance_model_dir), str(teacher),
                     "--data", str(unlabelled), "--out", str(soft)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 18
    examples, _ = read_pairs(unlabelled)
    expected = np.mean([TargetClassifier.from_dir(str(m)).predict_proba(examples)
                        for m in (tiny_stance_model_dir, teacher)], axis=0)
    labelled = [json.loads(line) for line in soft.read_text().splitlines()]
    got = np.array([r["teacher_probs"] for r in labelled])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert [r["label"] for r in labelled] == expected.argmax(-1).tolist()
    assert labelled[0]["sentence"] == rows[0]["sentence"]

    plain, student = tmp_path / "plain", tmp_path / "student"
    assert cli_main(["train", *common, "--out", str(plain)]) == 0
    assert cli_main(["train", *common, "--out", str(student), "--distill", str(soft),
                     "--distill-every", "1", "--distill-weight", "2.0"]) == 0
    manifest = json.loads((student / MANIFEST).read_text())
    assert manifest["training"]["distill"] == str(soft) and manifest["training"]["distill_weight"] == 2.0
    plain_state, student_state = load_file(str(plain / WEIGHTS)), load_file(str(student / WEIGHTS))
    assert set(plain_state) == set(student_state)  # the same artifact: one model, one head
    assert any(not np.array_equal(plain_state[k].numpy(), student_state[k].numpy()) for k in plain_state)


def test_distill_label_writes_gzip_that_training_reads_back(tiny_stance_model_dir, tmp_path, capsys):
    import gzip

    from stancebeam.classifier.distill import read_pairs, read_soft

    unlabelled = write_directed(tmp_path / "pairs.jsonl", 6)
    soft = tmp_path / "soft.jsonl.gz"
    assert cli_main(["distill-label", "--teachers", str(tiny_stance_model_dir),
                     "--data", str(unlabelled), "--out", str(soft)]) == 0
    with gzip.open(soft, "rt", encoding="utf-8") as f:  # really compressed, one record per line
        assert len(f.read().splitlines()) == 6
    examples, probs = read_soft(soft, 5)
    assert examples == read_pairs(unlabelled)[0] and probs.shape == (6, 5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-3)


def test_soft_target_loss_is_least_at_the_teachers_distribution(tiny_stance_model_dir, tmp_path):
    import torch

    from stancebeam.classifier.distill import SoftTargets

    rows = [json.loads(line) for line in write_directed(tmp_path / "u.jsonl", 4).read_text().splitlines()]
    target = [0.1, 0.6, 0.1, 0.1, 0.1]
    soft = tmp_path / "soft.jsonl"
    soft.write_text("".join(json.dumps({**r, "teacher_probs": target}) + "\n" for r in rows))
    loaded = load_model(tiny_stance_model_dir)
    targets = SoftTargets(str(soft), loaded.encoder, 5, batch_size=4, weight=1.0, every=2,
                          rng=__import__("random").Random(0))
    assert len(targets) == 4 and targets.loss(None, step=1) is None  # not its step

    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = torch.tensor(logits)

        def forward(self, input_ids, **_):
            return self.logits.expand(input_ids.shape[0], -1)

    at_target = targets.loss(Fixed(np.log(target).tolist()), step=0).item()
    entropy = -sum(p * np.log(p) for p in target)
    assert at_target == pytest.approx(entropy, abs=1e-5)
    assert targets.loss(Fixed([0.0] * 5), step=2).item() > at_target
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(ValueError, match="teacher_probs"):
        SoftTargets(str(bad), loaded.encoder, 5, 4, 1.0, 1, __import__("random").Random(0))


def test_layer_decay_gives_lower_layers_smaller_rates(tiny_model_dir):
    from stancebeam.classifier.train import layer_depth, parameter_groups

    model = load_model(tiny_model_dir).model
    assert layer_depth("encoder.embeddings.LayerNorm.weight", 2) == 0
    assert layer_depth("0.encoder.encoder.layer.1.output.dense.weight", 2) == 2
    assert layer_depth("head.weight", 2) == 3
    rate_of = {}
    for group in parameter_groups(model, 0.01, 1e-4, layer_decay=0.5, n_layers=2):
        for p in group["params"]:
            rate_of[id(p)] = group["lr"]
    named = dict(model.named_parameters())
    assert len(rate_of) == sum(p.requires_grad for p in named.values())  # every parameter, once
    assert rate_of[id(named["head.weight"])] == pytest.approx(1e-4)
    assert rate_of[id(named["encoder.encoder.layer.1.attention.self.query.weight"])] == pytest.approx(5e-5)
    assert rate_of[id(named["encoder.encoder.layer.0.attention.self.query.weight"])] == pytest.approx(2.5e-5)
    assert rate_of[id(named["encoder.embeddings.position_embeddings.weight"])] == pytest.approx(1.25e-5)
    # Off (the default): one rate, and weight decay only where it belongs.
    groups = parameter_groups(model, 0.01, 1e-4)
    assert {g["lr"] for g in groups} == {1e-4} and sorted(g["weight_decay"] for g in groups) == [0.0, 0.01]


def test_rdrop_adds_the_disagreement_of_two_dropout_passes(tiny_model_dir, tmp_path):
    import torch

    from stancebeam.classifier.train import rdrop_loss

    ce = torch.nn.CrossEntropyLoss()
    labels = torch.tensor([0, 2])
    a = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.1, 1.5]])
    # Two passes that agree: only the task loss is left.
    assert rdrop_loss(ce, a, a.clone(), labels, 4.0).item() == pytest.approx(ce(a, labels).item())
    b = torch.tensor([[0.0, 2.0, -1.0], [1.5, 0.1, 0.5]])
    plain = (ce(a, labels) + ce(b, labels)).item() / 2
    assert rdrop_loss(ce, a, b, labels, 0.0).item() == pytest.approx(plain)
    assert rdrop_loss(ce, a, b, labels, 1.0).item() > plain  # disagreement costs
    # It trains a model, and the manifest records it.
    train = write_newsmtsc(tmp_path / "train.jsonl", 24)
    dev = write_newsmtsc(tmp_path / "dev.jsonl", 6)
    out = tmp_path / "rdrop"
    assert cli_main(["train", "--train", str(train), "--dev", str(dev), "--out", str(out),
                     "--base-path", str(tiny_model_dir / "encoder"), "--epochs", "1",
                     "--batch-size", "8", "--threads", "1", "--max-length", "32",
                     "--rdrop", "1.0"]) == 0
    assert json.loads((out / MANIFEST).read_text())["training"]["rdrop"] == 1.0


def test_masking_predicts_only_ordinary_tokens(tiny_model_dir):
    import torch

    from stancebeam.classifier.domain_adapt import chunked, mask_tokens

    tokenizer = load_model(tiny_model_dir).tokenizer
    seqs = chunked(tokenizer, ["Kim Jong Un praised China. " * 20, "The talks went on. " * 20], 16)
    assert seqs and all(len(s) == 16 and s[0] == tokenizer.cls_token_id
                        and s[-1] == tokenizer.sep_token_id for s in seqs)
    ids = torch.tensor(seqs)
    inputs, labels = mask_tokens(ids, tokenizer, torch.Generator().manual_seed(0), rate=0.5)
    chosen = labels != -100
    assert chosen.any() and not chosen[:, 0].any() and not chosen[:, -1].any()
    assert torch.equal(labels[chosen], ids[chosen])  # the originals are what is predicted
    assert torch.equal(inputs[~chosen], ids[~chosen])  # nothing else changes
    assert (inputs[chosen] == tokenizer.mask_token_id).float().mean() > 0.5


def test_adapted_encoder_starts_a_fine_tune(tiny_model_dir, tmp_path, capsys):
    from safetensors.torch import load_file

    from stancebeam.classifier.artifacts import WORD_EMBEDDINGS

    news = tmp_path / "news.jsonl"
    news.write_text("".join(json.dumps({"id": str(i), "text": text}) + "\n"
                            for i, text in enumerate(corpus_texts() * 2)) + '{"id": "x", "text": ""}\n')
    adapted = tmp_path / "adapted"
    encoder = str(tiny_model_dir / "encoder")
    assert cli_main(["adapt", "--news", str(news), "--out", str(adapted), "--base-path", encoder,
                     "--epochs", "2", "--batch-size", "8", "--length", "32", "--threads", "1",
                     "--lr", "1e-3"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["documents"] == 2 * len(corpus_texts())  # the empty article is skipped
    assert summary["heldout_mlm_loss_after"] < summary["heldout_mlm_loss_before"]
    state = load_file(str(adapted / WEIGHTS))
    assert WORD_EMBEDDINGS not in state and all(k.startswith("encoder.") for k in state)
    train = write_newsmtsc(tmp_path / "train.jsonl", 16)
    out = tmp_path / "tuned"
    assert cli_main(["train", "--train", str(train), "--dev", str(train), "--out", str(out),
                     "--base-path", encoder, "--init-from", str(adapted), "--epochs", "1",
                     "--batch-size", "8", "--threads", "1", "--max-length", "32",
                     "--layer-decay", "0.8"]) == 0
    assert json.loads((out / MANIFEST).read_text())["training"]["init_from"] == str(adapted)


def test_init_from_a_model_of_the_same_task_continues_it_and_from_another_takes_the_encoder(
        tiny_model_dir, tiny_stance_model_dir):
    import torch

    from stancebeam.classifier.artifacts import WORD_EMBEDDINGS
    from stancebeam.classifier.train import init_from_model

    def fresh(model_dir):  # the same architecture with every trained tensor scrambled
        loaded = load_model(model_dir)
        with torch.no_grad():
            for name, tensor in loaded.model.state_dict().items():
                if name != WORD_EMBEDDINGS:
                    tensor.normal_()
            loaded.model.state_dict()[WORD_EMBEDDINGS][loaded.encoder.marker_ids] = 0.0
        return loaded

    source = load_model(tiny_stance_model_dir).model.state_dict()
    target = fresh(tiny_stance_model_dir)
    init_from_model(target.model, str(tiny_stance_model_dir), "stance", target.encoder.marker_ids)
    after = target.model.state_dict()
    for name, tensor in source.items():  # the marker rows included; float16 on disk
        assert torch.allclose(after[name], tensor, atol=1e-2), name

    # From the sentiment model: the encoder layers only; the stance head stays its own.
    target = fresh(tiny_stance_model_dir)
    head_before = target.model.head.weight.detach().clone()
    init_from_model(target.model, str(tiny_model_dir), "stance", target.encoder.marker_ids)
    sentiment = load_model(tiny_model_dir).model.state_dict()
    assert torch.equal(target.model.head.weight, head_before)
    layer = "encoder.encoder.layer.0.attention.self.query.weight"
    assert torch.allclose(target.model.state_dict()[layer], sentiment[layer], atol=1e-2)
