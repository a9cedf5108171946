"""Optimizers and learning-rate schedulers with PyTorch's update rules and state-dict layout.

    from minigrad import optim
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=1000)
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()

Same weights and gradients give the same parameters as `torch.optim`, step for step.
Optimizers: SGD, Adam, AdamW, RMSprop, Adagrad. Schedulers (`optim.lr_scheduler`): StepLR,
MultiStepLR, ExponentialLR, LambdaLR, LinearLR, CosineAnnealingLR, OneCycleLR, SequentialLR and
ReduceLROnPlateau (stepped with the metric: `sched.step(val_loss)`).
"""

from minigrad.optim import lr_scheduler
from minigrad.optim.adagrad import Adagrad
from minigrad.optim.adam import Adam, AdamW
from minigrad.optim.optimizer import Optimizer
from minigrad.optim.rmsprop import RMSprop
from minigrad.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
