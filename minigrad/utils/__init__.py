"""Names PyTorch keeps under `torch.utils`: `minigrad.utils.data` holds the data-loading classes,
so `torch.utils.data.DataLoader(...)` reads the same with `import minigrad as torch`."""

from minigrad.utils import data

__all__ = ["data"]
