"""Hook handles: what `Tensor.register_hook` and the Module hooks return, to take a hook out."""

from __future__ import annotations

import weakref
from typing import Any


class RemovableHandle:
    """What the `register_*_hook` methods return: `handle.remove()` takes the hook out again
    (twice is harmless), and `with module.register_forward_hook(hook):` removes it on exit,
    as `torch.utils.hooks.RemovableHandle`.

    Each handle has a unique `id`, the hook's key in its module's ordered hook dict (so hooks
    run in registration order); `extra_dict` are the dicts of flags kept under the same key
    (with_kwargs, always_call), cleared with it. Only weak references are kept: a handle does
    not keep a deleted module's hooks alive.
    """

    next_id: int = 0

    def __init__(self, hooks_dict: Any, *, extra_dict: Any = None) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        extras = [extra_dict] if isinstance(extra_dict, dict) else list(extra_dict or ())
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extras)

    def remove(self) -> None:
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            hooks = ref()
            if hooks is not None:
                hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
