"""Small zoo models for the transfer/deploy tests, registered once per process.

`_tv_resnet18_test` is torchvision's ResNet-18 under the zoo contract (torchvision's module
names), so weights tests do not depend on which families have landed; `_small_cnn_test` is a
tiny LeNet-like network for fast training, export and visualisation tests.
"""

import torch
import torchvision
from torch import nn

from cnnzoo.contract import ZooModel
from cnnzoo.registry import _REGISTRY, Paper, register

PAPER = Paper("test", "test", 2024, "https://example.invalid")


class TvResNet18(ZooModel):
    classifier_name = "fc"

    def __init__(self, num_classes=1000, in_chans=3):
        super().__init__(num_classes, in_chans)
        tv = torchvision.models.resnet18(num_classes=num_classes)
        if in_chans != 3:
            tv.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
        for name, child in tv.named_children():
            self.add_module(name, child)
        self.num_features = 512
        self.feature_info = [dict(num_chs=c, reduction=r, module=m) for c, r, m in
                             [(64, 4, "layer1"), (128, 8, "layer2"), (256, 16, "layer3"),
                              (512, 32, "layer4")]]

    def forward_features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x, pre_logits=False):
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


class SmallCNN(ZooModel):
    """conv5(8) - relu - pool - conv3(16) - relu - pool - fc(32) - relu - fc."""

    classifier_name = "head.fc2"

    def __init__(self, num_classes=10, in_chans=1, width=8):
        super().__init__(num_classes, in_chans)
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, w, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.head = nn.Sequential()
        self.head.add_module("fc1", nn.Linear(2 * w * 7 * 7, 32))
        self.head.add_module("relu", nn.ReLU(inplace=True))
        self.head.add_module("fc2", nn.Linear(32, num_classes))
        self.num_features = 2 * w
        self.feature_info = [dict(num_chs=w, reduction=2, module="features.2"),
                             dict(num_chs=2 * w, reduction=4, module="features.5")]

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x, pre_logits=False):
        x = self.head.relu(self.head.fc1(torch.flatten(x, 1)))
        return x if pre_logits else self.head.fc2(x)


def ensure_registered():
    if "_tv_resnet18_test" not in _REGISTRY:
        register("_tv_resnet18_test", TvResNet18, family="test", paper=PAPER,
                 input_size=(3, 224, 224))
    if "_small_cnn_test" not in _REGISTRY:
        register("_small_cnn_test", SmallCNN, family="test", paper=PAPER, input_size=(1, 28, 28))
