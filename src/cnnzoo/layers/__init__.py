"""Shared building blocks. Each topic lives in its own module (import from it directly):

    layers.basic   conv_bn_act, ConvBnAct, LocalResponseNorm (the papers' LRN), classifier heads
"""
