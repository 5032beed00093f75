"""The trained network outside training: export (TorchScript, ONNX) and predict."""
