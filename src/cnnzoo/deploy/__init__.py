"""Deployment: exporting a model (ONNX, TorchScript, exported program), int8 quantization,
classifying image files with a model file or an ONNX export, and the checked fast paths."""
