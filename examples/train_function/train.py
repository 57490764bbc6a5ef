"""A training loop of your own, searched by raynas (evaluator kind: function).

raynas calls ``train_one(arch, context)`` once per architecture: ``arch`` holds the
choices of space.yaml (``{"hidden": 64, "lr": 0.01, ...}``); ``context`` gives the
trial's ``device`` and ``seed``, ``max_epochs`` (the config's ``evaluator.epochs``), the
``checkpoint`` to resume from, and ``report(metrics, checkpoint=...)``: Tune's report in
a trial, so ASHA can stop weak architectures and a crashed trial resumes from the
checkpoint. Here the loop is a plain torch MLP on scikit-learn's digits.
"""

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn


def _data(seed):
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    rest_x, test_x, rest_y, test_y = train_test_split(x, y, test_size=0.2, stratify=y,
                                                      random_state=0)
    train_x, valid_x, train_y, valid_y = train_test_split(rest_x, rest_y, test_size=0.25,
                                                          stratify=rest_y, random_state=0)
    return (train_x, train_y), (valid_x, valid_y), (test_x, test_y)


def _accuracy(model, x, y, device):
    with torch.no_grad():
        return 100.0 * float((model(x.to(device)).argmax(1).cpu() == y).float().mean())


def train_one(arch, context):
    torch.manual_seed(context.seed)
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = _data(context.seed)
    model = nn.Sequential(nn.Linear(64, arch["hidden"]), nn.ReLU(),
                          nn.Dropout(arch["dropout"]), nn.Linear(arch["hidden"], 10))
    model.to(context.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=arch["lr"])
    start = 0
    if context.checkpoint is not None:  # a retried or resumed trial
        model.load_state_dict(context.checkpoint["model"])
        optimizer.load_state_dict(context.checkpoint["optimizer"])
        start = context.checkpoint["epoch"]
    generator = torch.Generator().manual_seed(context.seed)
    for epoch in range(start, context.max_epochs):
        model.train()
        order = torch.randperm(len(train_y), generator=generator)
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(train_x[idx].to(context.device)),
                                               train_y[idx].to(context.device))
            loss.backward()
            optimizer.step()
        model.eval()
        context.report({"valid_acc": _accuracy(model, valid_x, valid_y, context.device),
                        "test_acc": _accuracy(model, test_x, test_y, context.device),
                        "train_loss": loss.item()},
                       checkpoint={"model": model.state_dict(),
                                   "optimizer": optimizer.state_dict(), "epoch": epoch + 1})
