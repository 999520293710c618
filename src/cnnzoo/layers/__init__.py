"""Shared building blocks. Each topic lives in its own module (import from it directly):

    layers.basic      ConvBnAct, basic_conv / basic_conv_same (the Inception line's BasicConv2d),
                      LocalResponseNorm (the papers' LRN), AdaptiveAvgPool2d (deterministic
                      CUDA backward where sizes divide), he_init, transform_input
    layers.branches   Branches, SplitConcat and the `seq` branch builder (Inception-v4, IRv2)
    layers.inception  InceptionModule and InceptionAux (GoogLeNet, BN-Inception)
    layers.residual   BasicBlock, Bottleneck (groups/width, v1/v1.5 stride), PreActBasicBlock,
                      PreActBottleneck, shortcuts A (zero-pad) / A_avg / B (projection)
    layers.se         SqueezeExcite (squeeze, FC-ReLU-FC-gate, scale; rd_channels and gate overridable)
    layers.separable  SeparableConv2d (Xception), DepthwiseSeparableConv (MobileNet v1)
    layers.shuffle    channel_shuffle (ShuffleNet v1 and v2)
"""
