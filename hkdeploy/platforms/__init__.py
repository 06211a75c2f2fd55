"""Platforms: the kinds of target hkdeploy can build for and talk to.

Modules here know one platform each: ``qemu_build`` / ``qemu_process`` (an emulated Cortex-M board
under QEMU); ``tflm_lib`` builds upstream TFLM (+ CMSIS-NN) from source for the Cortex-M engine. The
registry that maps board files to platforms is added on top of them. Nothing here imports TensorFlow.
"""
