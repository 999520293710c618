"""A LeNet-5 (modern) trained for a few seconds on the embedded MNIST subset, for the tests
that need a model which really recognises digits (int8 export, occlusion maps)."""

import torch

import cnnzoo
from cnnzoo.data.preprocess import Preprocess
from cnnzoo.transfer.core import load_image_set

PP = {"input_size": [1, 32, 32], "resize": None, "mean": [0.1307], "std": [0.3081],
      "grayscale": True}


def train_lenet(path, images=4000, seed=0):
    """Train on `images` embedded training images (one pass, AdamW 3e-3, batch 64; ~95% on the
    embedded test split) and save the model file to `path`; returns the model."""
    torch.manual_seed(seed)
    data = load_image_set("embedded", "train", Preprocess.from_record(PP))
    model = cnnzoo.create_model("lenet5_modern")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    perm = torch.randperm(len(data.x))[:images]
    for i in range(0, len(perm), 64):
        idx = perm[i:i + 64]
        loss = torch.nn.functional.cross_entropy(model(data.x[idx]), data.y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    cnnzoo.save_model(path, model.eval(), classes=data.classes, preprocess=PP)
    return model
