"""The names of ImageNet-1k's 1000 classes, in the order of an ImageNet classifier's logits.

The order is torchvision's (its weights' `meta["categories"]`), which is the order of the
output units of every published torchvision checkpoint, so `imagenet_classes()[i]` names
logit i of a model loaded from one. The names are stored one per line in
imagenet_classes.txt beside this file.
"""

from __future__ import annotations

import functools
from pathlib import Path

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")


@functools.cache
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 class names, e.g. [0] "tench", [281] "tabby", [999] "toilet tissue"."""
    names = tuple(CLASSES_FILE.read_text(encoding="utf-8").splitlines())
    if len(names) != 1000:  # a truncated or edited file would silently mislabel predictions
        raise RuntimeError(f"imagenet_classes: {CLASSES_FILE} holds {len(names)} names, "
                           "1000 expected")
    return names
