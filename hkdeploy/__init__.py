"""hkdeploy: deploy Keras models to Ambiq Apollo microcontrollers.

Keras model -> int8 TFLite -> TFLM firmware -> hardware-in-the-loop validation.
The package is importable without TensorFlow; only the export stage imports it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
