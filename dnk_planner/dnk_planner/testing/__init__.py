"""Model builders for tests, benchmarks and the demo (onnx.helper graphs honouring the model
contract); not part of the robot's runtime."""
