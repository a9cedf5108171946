"""The training CLI: outputs, exact resume (after an epoch and after Ctrl-C mid-epoch), errors.

Runs are small (a few hundred digits, two epochs) except the demo test, which runs `make demo`'s
exact recipe and checks its promised accuracy.
"""

from __future__ import annotations

import importlib
import json
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import skip_or_fail

import minigrad as mg
from minigrad import train
from minigrad.optim import Adam

QUICK = ["--dataset", "digits", "--limit", "192", "--batch-size", "32", "--epochs", "2",
         "--backend", "numpy"]


def require(module: str) -> None:
    """Skip without `module` (from the demo extra, which `make test` installs); under CI=true
    fail instead: there a missing extra is a broken install, not a reason to test less."""
    try:
        importlib.import_module(module)
    except ImportError as error:
        skip_or_fail(f"the CLI's digits and plots need the demo extra (pip install -e "
                     f".[demo]): {error}")


@pytest.fixture(autouse=True)
def demo_extra():
    """The CLI's default dataset, digits, comes with scikit-learn."""
    require("sklearn")


@pytest.fixture(autouse=True)
def keep_backend():
    """The CLI sets the backend for the whole process; put the test session's back."""
    before = mg.get_backend()
    yield
    mg.set_backend(before)


def run_cli(out, *extra: str) -> int:
    return train.main([*QUICK, "--out", str(out), *extra])


def final_state(out) -> dict:
    return mg.load(out / "checkpoint.npz")


def assert_identical(a, b, where: str) -> None:
    """The same keys in the same order, lengths, types, and arrays equal to the bit."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(b, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in b:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b), f"{where}: {len(a)} entries != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(b, mg.Tensor):
        assert_identical(a.numpy(), b.numpy(), where)
    elif isinstance(b, (np.ndarray, np.generic)):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert a.tobytes() == b.tobytes(), f"{where}: values differ"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def without_times(checkpoint: dict) -> dict:
    """The checkpoint but for wall-clock seconds (in the history and the running sums)."""
    untimed = dict(checkpoint)
    untimed["history"] = [{k: v for k, v in h.items() if k != "seconds"}
                          for h in checkpoint["history"]]
    untimed["running"] = {k: v for k, v in checkpoint["running"].items() if k != "seconds"}
    return untimed


def assert_same_training(a: dict, b: dict) -> None:
    """Everything in the two checkpoints bit-identical: weights, buffers, every optimizer
    state entry and param group, the scheduler's state, position, RNG and history, but for
    times. Neither side may hold an entry the other lacks."""
    assert_identical(without_times(a), without_times(b), "checkpoint")


def test_a_run_writes_metrics_checkpoint_and_plots(tmp_path, capsys):
    require("matplotlib")
    assert run_cli(tmp_path) == 0
    printed = capsys.readouterr().out
    assert re.search(r"epoch 2/2  train loss \d\.\d{4} acc [\d.]+%  test loss \d\.\d{4} "
                     r"acc [\d.]+%  [\d.]+ s", printed)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert metrics["test_accuracy"] == metrics["history"][-1]["test_accuracy"]
    assert 0.1 < metrics["test_accuracy"] <= 1
    assert metrics["args"]["model"] == "simplecnn" and metrics["args"]["limit"] == 192
    assert metrics["backend"] == "numpy" and "numpy" in metrics["versions"]
    assert metrics["train_seconds"] > 0
    checkpoint = final_state(tmp_path)
    assert (checkpoint["epoch"], checkpoint["batch"]) == (2, 0)
    assert checkpoint["model"]["features.0.weight"].shape == (32, 1, 3, 3)
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_after_an_epoch_ends_where_an_uninterrupted_run_ends(tmp_path, host_backend):
    on = ["--backend", host_backend]
    assert run_cli(tmp_path / "whole", *on) == 0
    assert run_cli(tmp_path / "half", "--epochs", "1", *on) == 0
    checkpoint = tmp_path / "half" / "checkpoint.npz"
    assert train.main([*QUICK, *on, "--resume", str(checkpoint)]) == 0  # --out: its dir
    assert json.loads((tmp_path / "half" / "metrics.json").read_text())["backend"] == host_backend
    assert_same_training(final_state(tmp_path / "whole"), final_state(tmp_path / "half"))


@pytest.mark.parametrize("recipe", [["--scheduler", "none"], ["--scheduler", "onecycle"],
                                    ["--scheduler", "warmup-cosine", "--augment",
                                     "--label-smoothing", "0.1", "--random-erase", "0.5"]],
                         ids=["none", "onecycle", "warmup-cosine-augment"])
def test_ctrl_c_mid_epoch_saves_and_resume_is_exact(tmp_path, monkeypatch, capsys, recipe,
                                                   host_backend):
    on = ["--backend", host_backend, *recipe]
    handler = signal.getsignal(signal.SIGINT)  # SIG_IGN where a shell started this in background
    assert run_cli(tmp_path / "whole", *on) == 0
    step, calls = Adam.step, []

    def step_then_ctrl_c(self, closure=None):
        calls.append(1)
        if len(calls) == 9:  # batch 3 of epoch 2 (6 batches per epoch)
            signal.raise_signal(signal.SIGINT)
        return step(self, closure)

    monkeypatch.setattr(Adam, "step", step_then_ctrl_c)
    out = tmp_path / "stopped"
    assert run_cli(out, *on) == train.INTERRUPTED
    assert "interrupted in epoch 2 after batch 3" in capsys.readouterr().err
    saved = final_state(out)
    assert (saved["epoch"], saved["batch"]) == (1, 3)
    assert signal.getsignal(signal.SIGINT) is handler  # put back
    monkeypatch.setattr(Adam, "step", step)
    assert run_cli(out, *on, "--resume", str(out / "checkpoint.npz")) == 0
    assert json.loads((out / "metrics.json").read_text())["backend"] == host_backend
    assert_same_training(final_state(tmp_path / "whole"), final_state(out))


def test_resume_refuses_a_different_recipe(tmp_path, capsys):
    assert run_cli(tmp_path, "--epochs", "1") == 0
    status = run_cli(tmp_path, "--lr", "0.01", "--resume", str(tmp_path / "checkpoint.npz"))
    err = capsys.readouterr().err.strip()
    assert status == 1 and "\n" not in err
    assert "--lr 0.001 (now 0.01)" in err and "repeat the original arguments" in err


@pytest.mark.parametrize(("content", "message"), [
    (b"not a zip", "not a readable .npz checkpoint"),
    (None, "no such file"),
])
def test_resume_refuses_a_bad_checkpoint_in_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "checkpoint.npz"
    if content is not None:
        path.write_bytes(content)
    assert run_cli(tmp_path, "--resume", str(path)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("minigrad-train: error: cannot resume") and message in err
    assert "\n" not in err


def test_resume_refuses_a_checkpoint_of_something_else(tmp_path, capsys):
    mg.save(mg.models.SimpleCNN().state_dict(), tmp_path / "weights.npz")
    assert run_cli(tmp_path, "--resume", str(tmp_path / "weights.npz")) == 1
    assert "is not a minigrad-train checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
    (["--lr", "0"], "--lr must be > 0, got 0.0"),
    (["--lr=-1e-3"], "--lr must be > 0, got -0.001"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--limit", "0"], "--limit must be >= 1"),
    (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["--model", "vgg11", "--image-size", "28"], "--image-size must be >= 32 for vgg11, got 28"),
    (["--model", "lenet5", "--image-size", "32"], "lenet5 takes 28x28 images only"),
    (["--label-smoothing", "1"], "--label-smoothing must be in [0, 1), got 1.0"),
    (["--warmup-epochs", "-1"], "--warmup-epochs must be >= 0"),
    (["--random-erase", "1.5"], "--random-erase must be in [0, 1], got 1.5"),
])
def test_bad_arguments_exit_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        train.main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and message in err
    assert err.startswith("minigrad-train: error:") and "\n" not in err


@pytest.mark.parametrize(("argv", "steps"), [
    ([], None),
    (["--augment"], ["RandomCrop"]),  # digits: a mirrored 3 is no digit
    (["--dataset", "fashion-mnist", "--augment"], ["RandomCrop", "RandomHorizontalFlip"]),
    (["--dataset", "fashion-mnist", "--augment", "--random-erase", "0.25"],
     ["RandomCrop", "RandomHorizontalFlip", "RandomErasing"]),
    (["--random-erase", "0.5"], ["RandomErasing"]),
])
def test_augmentation_pipeline_follows_the_flags(argv, steps):
    """--augment's crops and flips, then --random-erase's erasing (after the crop, as in
    torchvision's recipes), with black as the crop's fill and the mean (0) as the erasing's."""
    args = train.parse_args(argv)
    data = mg.data.datasets.ImageDataset(np.zeros((1, 1, 28, 28), np.float32), np.zeros(1),
                                         ("a",), "test", mean=0.25, std=0.5)
    pipeline = train.build_augmentation(args, data)
    if steps is None:
        assert pipeline is None
        return
    assert [type(step).__name__ for step in pipeline.transforms] == steps
    for step in pipeline.transforms:
        if isinstance(step, mg.data.transforms.RandomCrop):
            assert step.fill == -0.5 and step.padding == (4, 4, 4, 4)
        if isinstance(step, mg.data.transforms.RandomErasing):
            assert step.p == args.random_erase and step.value == 0.0


# ---------------------------------------------------------------- the article's other models
@pytest.fixture
def few_digits(monkeypatch):
    """digits with a 16-image test split: the per-model runs below train on --limit 8."""
    digits = train.DATASETS["digits"]

    def fewer(root, is_train):
        data = digits(root, is_train)
        return data if is_train else type(data)(data.images[:16], data.targets[:16],
                                                 data.classes, data.name, data.mean, data.std)

    monkeypatch.setitem(train.DATASETS, "digits", fewer)


# vgg16 is vgg11's builder with a longer configuration (test_small_images checks its twin)
@pytest.mark.parametrize("model", ["lenet5", "alexnet", "vgg11", "googlenet", "resnet18",
                                   "efficientnet_b0", "vit"])
def test_every_model_trains_checkpoints_resumes_and_plots(tmp_path, capsys, few_digits, model):
    """Two epochs of one batch in the model's small-image form (VGG at 32x32), and the same run
    stopped after one epoch and resumed: the same final checkpoint, to the bit."""
    require("matplotlib")
    recipe = ["--model", model, "--dataset", "digits", "--limit", "8", "--batch-size", "8",
              "--backend", "numba", "--augment"]
    assert train.main([*recipe, "--epochs", "2", "--out", str(tmp_path / "whole")]) == 0
    printed = capsys.readouterr().out
    assert re.search(rf"{model} on digits \(8 train / 16 test images\)", printed)
    assert re.search(r"epoch 2/2  train loss \d\.\d{4} acc [\d.]+%", printed)
    assert train.main([*recipe, "--epochs", "1", "--out", str(tmp_path / "half")]) == 0
    checkpoint = tmp_path / "half" / "checkpoint.npz"
    assert train.main([*recipe, "--epochs", "2", "--resume", str(checkpoint)]) == 0
    whole = final_state(tmp_path / "whole")
    assert_same_training(whole, final_state(tmp_path / "half"))
    metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert metrics["args"]["image_size"] == (32 if model.startswith("vgg") else 28)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / "whole" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_googlenet_trains_on_its_auxiliary_losses_too():
    """loss = CE(logits) + 0.3 (CE(aux1) + CE(aux2)), the paper's and torchvision's recipe;
    label smoothing applies to all three."""
    rng = np.random.default_rng(0)
    logits, aux1, aux2 = (mg.tensor(rng.standard_normal((4, 10))) for _ in range(3))
    labels = mg.tensor(np.array([1, 2, 3, 4]))
    outputs = mg.models.GoogLeNetOutputs(logits, aux2, aux1)
    loss, picked = train.classification_loss(outputs, labels, 0.1)
    expected = sum(weight * mg.nn.functional.cross_entropy(x, labels, label_smoothing=0.1).item()
                   for weight, x in ((1.0, logits), (0.3, aux1), (0.3, aux2)))
    assert picked is logits and loss.item() == pytest.approx(expected, rel=1e-12)


def test_image_size_resizes_train_and_test_images(tmp_path, few_digits):
    args = train.parse_args(["--model", "resnet18", "--image-size", "36", "--limit", "8"])
    train_set, test_set = train.load_data(args)
    assert train_set[0][0].shape == (1, 36, 36) and test_set.images.shape == (16, 1, 36, 36)
    assert train.parse_args(["--model", "vgg16"]).image_size == 32


def test_missing_data_exits_with_one_line_naming_the_fix(tmp_path, capsys):
    status = train.main(["--dataset", "mnist", "--data-dir", str(tmp_path), "--out",
                         str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 1 and "\n" not in err
    assert "train-images-idx3-ubyte[.gz]" in err and str(tmp_path) in err


def test_module_entry_point_runs_in_a_fresh_process(tmp_path):
    """`python -m minigrad.train` as a user types it: exit status and the one-line error."""
    result = subprocess.run([sys.executable, "-m", "minigrad.train", "--lr", "-1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "minigrad-train: error: --lr must be > 0, got -1.0 " \
                                    "(see --help)"


def test_make_demo_recipe_reaches_97_percent(tmp_path):
    """The Makefile's `make demo` arguments, on the full digits split."""
    status = train.main(["--model", "simplecnn", "--dataset", "digits", "--epochs", "12",
                         "--backend", "numba", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert status == 0 and metrics["test_accuracy"] >= 0.97, metrics["history"][-1]
