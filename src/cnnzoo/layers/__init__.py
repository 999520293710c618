"""Shared building blocks. Each topic lives in its own module (import from it directly):

    layers.basic   conv_bn_act, ConvBnAct, LocalResponseNorm (the papers' LRN), classifier heads
    layers.residual  BasicBlock, Bottleneck (groups/width, v1/v1.5 stride), PreActBasicBlock,
                     PreActBottleneck, shortcuts A (zero-pad) / A_avg / B (projection)
    layers.se      SqueezeExcite (squeeze, FC-ReLU-FC-gate, scale; rd_channels and gate overridable)
"""
