"""Interchange with the neuromorphic and quantization ecosystems: NIR graphs and QONNX models."""
