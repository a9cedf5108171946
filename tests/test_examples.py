"""The scripts in examples/ run, print what their docstrings promise, and agree with PyTorch."""

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import skip_or_fail
from zoo import randomised

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
# One BLAS thread per example: with the other core busy (xdist workers), OpenBLAS threads
# waiting on each other made a SimpleCNN training step 25x slower (0.9 s instead of 0.04 s).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# The CNN article's two NumPy examples, verbatim (its indentation restored): the tests run them
# and compare what they print with what examples/sobel_edges.py and max_pool.py print.
ARTICLE_CONVOLUTION = """
import numpy as np
def convolve2d(image, kernel, stride=1, padding=0):
    \"\"\"Manual 2D convolution (single channel).\"\"\"
    if padding > 0:
        image = np.pad(image, padding, mode='constant')
    H, W = image.shape
    kH, kW = kernel.shape
    out_H = (H - kH) // stride + 1
    out_W = (W - kW) // stride + 1
    output = np.zeros((out_H, out_W))
    for i in range(0, out_H):
        for j in range(0, out_W):
            region = image[i*stride:i*stride+kH, j*stride:j*stride+kW]
            output[i, j] = np.sum(region * kernel)
    return output
# Example: Edge detection with Sobel filter
image = np.array([
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [1, 1, 1, 1, 1], # Horizontal edge here
    [1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1],
], dtype=float)
# Sobel horizontal edge detector
sobel_x = np.array([
    [-1, -2, -1],
    [ 0, 0, 0],
    [ 1, 2, 1],
])
feature_map = convolve2d(image, sobel_x, padding=1)
print("Feature map (edge detection):")
print(feature_map.astype(int))
"""
ARTICLE_POOLING = """
import numpy as np
def max_pool2d(feature_map, pool_size=2, stride=2):
    \"\"\"2D Max Pooling.\"\"\"
    H, W = feature_map.shape
    out_H = (H - pool_size) // stride + 1
    out_W = (W - pool_size) // stride + 1
    output = np.zeros((out_H, out_W))
    for i in range(out_H):
        for j in range(out_W):
            region = feature_map[i*stride:i*stride+pool_size, j*stride:j*stride+pool_size]
            output[i, j] = np.max(region)
    return output
feature_map = np.array([
    [1, 3, 2, 4],
    [5, 6, 1, 2],
    [3, 2, 8, 1],
    [4, 1, 3, 7],
])
pooled = max_pool2d(feature_map, pool_size=2, stride=2)
print("Original shape:", feature_map.shape) # (4, 4)
print("After max pool:", pooled.shape) # (2, 2)
print(pooled)
# [[6, 4],
# [4, 8]]
"""
# What the article's Sobel code computes, worked out by hand: rows 1-2 straddle the edge (3 at
# the borders, where the padding drops a kernel column), row 4 sees the padding below.
SOBEL_MAP = np.array([[0, 0, 0, 0, 0],
                      [3, 4, 4, 4, 3],
                      [3, 4, 4, 4, 3],
                      [0, 0, 0, 0, 0],
                      [-3, -4, -4, -4, -3]])
POOLED = np.array([[6, 4],
                   [4, 8]])


def run_article(code: str) -> tuple[dict, str]:
    """The article's snippet run: (its variables, what it printed)."""
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, namespace)
    return namespace, printed.getvalue()


def require(module: str):
    """`module` from the demo extra (scikit-learn, matplotlib), which `make test` installs.
    Without it the test skips; under CI=true it fails: there it means a broken install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        skip_or_fail(f"the examples' digits and pictures need the demo extra (pip install -e "
                     f".[demo]): {error}")


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, *args: str, cwd: Path, status: int = 0) -> subprocess.CompletedProcess:
    """Run examples/<name>.py in `cwd` (a tmp_path: nothing is written into the repository)."""
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], cwd=cwd,
                          env={**os.environ, **ONE_THREAD}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == status, done.stderr
    return done


def assert_png(path: Path) -> np.ndarray:
    """`path` is a PNG that matplotlib reads back as a picture that is not blank."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = require("matplotlib.image").imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100, image.shape
    assert image[..., :3].std() > 0.05
    return image


def fashion_mnist_found() -> bool:
    dirs = [FASHION_MNIST]
    if os.environ.get("MINIGRAD_DATA"):
        dirs.append(Path(os.environ["MINIGRAD_DATA"]) / "fashion-mnist")
    return any((d / "t10k-images-idx3-ubyte.gz").is_file() or (d / "t10k-images-idx3-ubyte")
               .is_file() for d in dirs)


@pytest.fixture(scope="module")
def sobel():
    return load("sobel_edges")


@pytest.fixture(scope="module")
def pool():
    return load("max_pool")


def test_sobel_uses_the_articles_image_and_kernel(sobel):
    article, _ = run_article(ARTICLE_CONVOLUTION)
    np.testing.assert_array_equal(sobel.IMAGE, article["image"])
    assert sobel.IMAGE.dtype == article["image"].dtype
    np.testing.assert_array_equal(sobel.SOBEL_X, article["sobel_x"])


def test_sobel_feature_map(sobel):
    article, _ = run_article(ARTICLE_CONVOLUTION)
    np.testing.assert_array_equal(article["feature_map"], SOBEL_MAP)
    np.testing.assert_array_equal(sobel.sobel_feature_map(), SOBEL_MAP)
    for stride, padding in [(1, 0), (1, 1), (2, 1), (2, 2)]:  # the example's copy of the loops
        np.testing.assert_array_equal(
            sobel.convolve2d(sobel.IMAGE, sobel.SOBEL_X, stride=stride, padding=padding),
            article["convolve2d"](article["image"], article["sobel_x"], stride, padding))


def test_max_pool_uses_the_articles_input(pool):
    article, _ = run_article(ARTICLE_POOLING)
    np.testing.assert_array_equal(pool.FEATURE_MAP, article["feature_map"])


def test_max_pool(pool):
    article, _ = run_article(ARTICLE_POOLING)
    np.testing.assert_array_equal(article["pooled"], POOLED)
    np.testing.assert_array_equal(pool.pooled(), POOLED)
    x = np.arange(30).reshape(5, 6) % 7  # the example's copy of the loops, other sizes
    for size, stride in [(2, 2), (3, 1), (2, 3)]:
        np.testing.assert_array_equal(pool.max_pool2d(x, size, stride),
                                      article["max_pool2d"](x, size, stride))


def test_max_pool_prints_what_the_article_prints(tmp_path):
    _, printed = run_article(ARTICLE_POOLING)
    assert printed.splitlines()[:2] == ["Original shape: (4, 4)", "After max pool: (2, 2)"]
    assert run("max_pool", cwd=tmp_path).stdout == printed


def test_sobel_prints_what_the_article_prints_and_saves_png(tmp_path):
    require("matplotlib")
    _, printed = run_article(ARTICLE_CONVOLUTION)
    assert printed == f"Feature map (edge detection):\n{SOBEL_MAP}\n"
    out = run("sobel_edges", cwd=tmp_path).stdout
    assert out == printed + "Saved sobel_edges.png\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sobel_edges.png"]  # default: the cwd
    assert_png(tmp_path / "sobel_edges.png")


def test_feature_maps_saves_png(tmp_path):
    require("sklearn")
    require("matplotlib")
    path = tmp_path / "maps" / "fm.png"
    path.parent.mkdir()
    out = run("feature_maps", "--epochs", "1", "--limit", "64", "--out", str(path),
              cwd=tmp_path).stdout
    assert re.search(r"^epoch 1/1  train loss \d+\.\d{4} acc", out, re.MULTILINE), out
    assert out.strip().splitlines()[-1] == f"Saved {path}"
    image = assert_png(path)
    assert image.shape[1] > 2.5 * image.shape[0]  # filters, input and maps side by side


def test_train_fashion_mnist(tmp_path):
    """Skips where Fashion-MNIST is not installed; fails so under CI=true (.ci/run installs it)."""
    if not fashion_mnist_found():
        skip_or_fail(f"Fashion-MNIST is not installed in {FASHION_MNIST} "
                     "(apt-get install dataset-fashion-mnist)")
    out = run("train_fashion_mnist", "--epochs", "1", "--limit", "256", cwd=tmp_path).stdout
    found = re.fullmatch(r"epoch 1/1  train loss (\d+\.\d{4})  test accuracy (\d+\.\d\d)%",
                         out.strip())
    assert found, out
    assert 0 < float(found[1]) < 5 and 10 < float(found[2]) <= 100  # better than chance
    assert list(tmp_path.iterdir()) == []


def test_train_fashion_mnist_missing_data_is_one_line(tmp_path):
    done = run("train_fashion_mnist", "--data-dir", str(tmp_path), cwd=tmp_path, status=1)
    assert done.stdout == ""
    assert done.stderr.startswith("train_fashion_mnist: fashion-mnist: ")
    assert "not found" in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_autograd_demo_learns_xor(tmp_path):
    last = run("autograd_demo", cwd=tmp_path).stdout.strip().splitlines()[-1]
    found = re.fullmatch(r"predictions: (\[.*\])\s+targets: (\[.*\])", last)
    assert found, last
    assert found[1] == found[2]


def test_examples_match_torch(torch, sobel, pool):
    tF = torch.nn.functional
    image = torch.from_numpy(sobel.IMAGE)[None, None]
    kernel = torch.from_numpy(sobel.SOBEL_X).to(image.dtype)[None, None]
    np.testing.assert_array_equal(sobel.sobel_feature_map(),
                                  tF.conv2d(image, kernel, padding=1)[0, 0].numpy())
    x = torch.from_numpy(pool.FEATURE_MAP).double()[None, None]
    np.testing.assert_array_equal(pool.pooled(),
                                  tF.max_pool2d(x, kernel_size=2, stride=2)[0, 0].numpy())


def test_pytorchs_training_a_classifier_tutorial_runs_unchanged(tmp_path):
    """PyTorch's "Training a classifier" code, with minigrad imported under torch's names, on
    real digits shaped as CIFAR-10: it trains, saves, loads, evaluates and moves to a device."""
    require("sklearn")
    out = run("pytorch_tutorial", cwd=tmp_path).stdout
    losses = [float(x) for x in re.findall(r"\] loss: ([0-9.]+)", out)]
    assert len(losses) == 6 and losses[-1] < losses[0] / 2, out
    assert "Finished Training" in out
    accuracy = int(re.search(r"Accuracy of the network on the 297 test images: (\d+) %",
                             out).group(1))
    assert accuracy >= 80, out
    assert len(re.findall(r"Accuracy for class: \d +is \d+\.\d %", out)) == 10
    assert out.strip().splitlines()[-1] in ("cpu", "cuda:0")  # print(device)


# ------------------------------------------------------- examples/pretrained.py: published weights
# The models the article names whose torchvision weights the example must run (issue 15).
ARTICLE_MODELS = ["alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
                  "vgg19", "vgg19_bn", "googlenet", "resnet18", "resnet34", "resnet50",
                  "resnet101", "resnet152", *(f"efficientnet_b{i}" for i in range(8)),
                  "vit_b_16", "vit_b_32", "vit_l_16"]


@pytest.fixture(scope="module")
def pretrained():
    return load("pretrained")


def pattern_image(path: Path, width: int = 300, height: int = 250, mode: str = "RGB") -> Path:
    """A small picture with smooth gradients, hard edges and texture (a JPEG's artefacts, too,
    where `path` says .jpg), saved by Pillow."""
    from PIL import Image, ImageDraw

    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x * y // 7) % 256], axis=-1)
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 5, height // 6, width // 2, height * 3 // 4), fill=(200, 30, 40))
    draw.rectangle((width * 2 // 3, height // 3, width - 10, height - 20), fill=(20, 120, 220))
    image.convert(mode).save(path)
    return path


def torchvision_answer(torch, model, weights_enum, image_path: Path, checkpoint: Path,
                       k: int = 5) -> list[tuple[str, float]]:
    """torchvision's own top k for the image, [(class, probability)], most probable first:
    `weights.transforms()` (torchvision.transforms.functional on the PIL image) and the model
    in torch. The random model is first made to depend on its input (a fresh one's signal
    fades layer by layer, so any image gives the same logits): BatchNorm's affine parameters
    randomised (tests/zoo.py), its running statistics those of this image (momentum 1, one
    training-mode pass), the classifier's weights scaled so the probabilities spread out.
    Then all the weights are saved to `checkpoint` as torchvision's files are."""
    from PIL import Image

    with Image.open(image_path) as opened:
        x = weights_enum.transforms()(opened.convert("RGB"))[None]
    norms = [m for m in randomised(torch, model).modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.momentum = 1.0
    with torch.no_grad():
        model.train()(x)
    for norm in norms:
        norm.momentum = 0.1
    model.eval()
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(3 / model(x).std())
        probabilities = torch.softmax(model(x), dim=1)[0].double()
    torch.save(model.state_dict(), checkpoint)
    best = probabilities.topk(k + 1)
    # the ranking must not hinge on float32 rounding: a clear gap below the k-th class
    assert best.values[k - 1] - best.values[k] > 1e-4 * best.values[0], best
    names = weights_enum.meta["categories"]
    return [(names[i], float(p)) for p, i in zip(best.values[:k], best.indices[:k])]


def test_pretrained_resnet18_prints_torchvisions_top5(torch, tv, pretrained, tmp_path, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "resnet18-0123abcd.pth"
    image = pattern_image(tmp_path / "pattern.jpg")
    expected = torchvision_answer(torch, tv.resnet18(), tv.ResNet18_Weights.IMAGENET1K_V1,
                                  image, weights)

    pretrained.main([str(weights), str(image)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("resnet18 from resnet18-0123abcd.pth; pattern.jpg resized to 256 "
                        "(bilinear), centre crop 224")
    assert len(lines) == 6
    for rank, (line, (name, probability)) in enumerate(zip(lines[1:], expected), 1):
        found = re.fullmatch(r"( \d|\d\d)\. (.+?) +(\d+\.\d\d)%", line)
        assert found, line
        assert (int(found[1]), found[2]) == (rank, name)
        assert abs(float(found[3]) - 100 * probability) <= 0.0051, (line, probability)


def test_pretrained_googlenet_matches_torchvision(torch, tv, pretrained, tmp_path):
    """GoogLeNet's file holds the auxiliary heads and expects `transform_input`, as
    torchvision builds it for its weights; a portrait PNG this time."""
    torch.manual_seed(1)
    theirs = tv.googlenet(aux_logits=True, transform_input=True, init_weights=True)
    weights = tmp_path / "googlenet-1378be20.pth"
    image = pattern_image(tmp_path / "wide.png", width=333, height=517)
    expected = torchvision_answer(torch, theirs, tv.GoogLeNet_Weights.IMAGENET1K_V1, image,
                                  weights, k=3)
    model, _, best = pretrained.classify(weights, image, top=3)
    assert model == "googlenet"
    assert [name for name, _ in best] == [name for name, _ in expected]
    np.testing.assert_allclose([p for _, p in best], [p for _, p in expected], rtol=2e-4)


@pytest.mark.parametrize("model, file", [
    ("resnet50", "resnet50-11ad3fa6.pth"),  # V2: resize 232
    ("efficientnet_b3", "efficientnet_b3_rwightman-b3899882.pth"),  # bicubic 320 -> 300
    ("efficientnet_b1", "efficientnet_b1-c27df63c.pth"),  # bilinear 255 -> 240
    ("vit_l_16", "vit_l_16-852ce7e3.pth"),  # 242 -> 224
    ("vit_b_16", "vit_b_16_swag-9ac1b537.pth"),  # bicubic 384, no crop margin
])
@pytest.mark.parametrize("size, mode", [((300, 250), "RGB"), ((251, 517), "L"),
                                        ((517, 333), "RGBA"), ((224, 224), "RGB")])
def test_pretrained_preprocessing_is_torchvisions(tv, pretrained, tmp_path, model, file, size,
                                                  mode):
    """Bit for bit what torchvision's `weights.transforms()` makes of the image, for portrait,
    landscape, odd and too-small sizes, greyscale and RGBA files."""
    from PIL import Image

    image = pattern_image(tmp_path / "image.png", *size, mode=mode)
    enum = next(w for w in tv.get_model_weights(model) if w.url.endswith("/" + file))
    with Image.open(image) as opened:
        theirs = enum.transforms()(opened.convert("RGB"))[None].numpy()
    ours = pretrained.preprocess(image, pretrained.WEIGHTS[file])
    assert ours.dtype == np.float32 and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, theirs)


def test_pretrained_knows_torchvisions_weight_files(tv, pretrained):
    """WEIGHTS is exactly torchvision 0.28's ImageNet classification files for its models,
    each with torchvision's preparation and the model its name starts with."""
    published = {}
    for model in sorted({w.model for w in pretrained.WEIGHTS.values()}):
        for enum in tv.get_model_weights(model):
            file = enum.url.rsplit("/", 1)[1]
            assert enum.url == pretrained.URL + file
            transforms = enum.transforms()
            if enum.meta["categories"] is None:  # not a classifier: refused by name
                assert file in pretrained.NOT_CLASSIFIERS
                continue
            published[file] = pretrained.Weights(model, *transforms.resize_size,
                                                 *transforms.crop_size,
                                                 transforms.interpolation.value)
            assert (transforms.mean, transforms.std) == ([0.485, 0.456, 0.406],
                                                         [0.229, 0.224, 0.225])
    assert published == pretrained.WEIGHTS
    assert set(ARTICLE_MODELS) <= {w.model for w in published.values()}
    for file, weights in pretrained.WEIGHTS.items():
        assert pretrained.architecture(file) == weights.model, file
        enums = list(tv.get_model_weights(weights.model))  # V1 first where there is one
        enum = next((e for e in enums if e.name == "IMAGENET1K_V1"), enums[0])
        default = pretrained.WEIGHTS[enum.url.rsplit("/", 1)[1]]
        assert pretrained.default_weights(weights.model) == default


def test_imagenet_classes_are_torchvisions(tv):
    """The names the example prints: minigrad.models.imagenet_classes(), torchvision's order."""
    import minigrad.models

    names = minigrad.models.imagenet_classes()
    assert list(names) == tv.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    assert names[281] == "tabby" and len(set(names)) == 1000


def test_pretrained_names_and_overrides(pretrained):
    choose = pretrained.choose
    assert choose("alexnet-owt-7be5be79.pth") == ("alexnet", pretrained.Weights("alexnet", 256,
                                                                                 224))
    assert choose("vgg16_bn-6c64b313.pth")[0] == "vgg16_bn"
    assert choose("vit_b_16-c867db91.pth")[0] == "vit_b_16"
    # a renamed or fine-tuned file: the model's V1 preparation
    assert choose("my-finetuned-effnet.pth", "efficientnet_b4") == (
        "efficientnet_b4", pretrained.Weights("efficientnet_b4", 384, 380, "bicubic"))
    assert choose("resnet50-deadbeef.pth") == ("resnet50", pretrained.Weights("resnet50", 256,
                                                                              224))
    # --model wins over the file name, and then the file's own row no longer applies
    assert choose("resnet50-11ad3fa6.pth")[1].resize == 232
    assert choose("resnet50-11ad3fa6.pth", "resnet101") == (
        "resnet101", pretrained.Weights("resnet101", 256, 224))
    with pytest.raises(ValueError, match="cannot tell the model from the file name "
                                         "'weights.pth': pass --model"):
        choose("weights.pth")
    with pytest.raises(ValueError, match="no ImageNet weights are known for 'lenet5'"):
        choose("weights.pth", "lenet5")
    with pytest.raises(ValueError, match="cannot classify: VGG-16 features"):
        choose("vgg16_features-amdegroot-88682ab5.pth")


def test_pretrained_builds_every_article_model(pretrained):
    """Every model of the article has its builder in minigrad.models, which the example finds
    by the model's name (so the table's names are minigrad's too)."""
    import minigrad.models

    assert [m for m in ARTICLE_MODELS if not callable(getattr(minigrad.models, m, None))] == []


def test_pretrained_errors_are_one_line(torch, pretrained, tmp_path, capsys):
    image = pattern_image(tmp_path / "pattern.png")
    legacy = tmp_path / "resnet18-5c106cde.pth"  # as torchvision's files were before 2021
    torch.save({"fc.bias": torch.zeros(1000)}, legacy, _use_new_zipfile_serialization=False)
    for argv, message in [
        ([str(tmp_path / "weights.pth"), str(image)], "cannot tell the model from the file "
                                                      "name 'weights.pth': pass --model"),
        ([str(tmp_path / "resnet18-0.pth"), str(image)], "minigrad.load: no such file: "),
        ([str(legacy), str(image)], "resnet18-5c106cde.pth is in PyTorch's pre-1.6 format"),
        ([str(image), str(image), "--model", "resnet18"], "minigrad.load: "),
    ]:
        with pytest.raises(SystemExit) as exit:
            pretrained.main(argv)
        assert str(exit.value).startswith(f"pretrained: {message}"), exit.value
        assert "\n" not in str(exit.value)
    assert capsys.readouterr().out == ""


def test_pretrained_lists_the_download_addresses(pretrained, capsys):
    pretrained.main(["--list"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(pretrained.WEIGHTS)
    assert lines[0].split() == ["alexnet",
                                "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"]
