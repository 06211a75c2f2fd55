"""Build support for targets other than the neuralSPOT boards (emulated Cortex-M, upstream TFLM)."""
