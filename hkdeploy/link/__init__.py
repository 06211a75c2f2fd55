"""The device link: wire protocol (generated from firmware/protocol/spec.yaml) and framing.

Nothing here imports TensorFlow.
"""
