"""Lab farm: boards shared by a team through labgrid places (optional extra ``hkdeploy[lab]``).

``places.lab_ports`` acquires places on a labgrid coordinator and yields their serial ports as
RFC 2217 URLs for validate/demo/run; ``flash`` writes a firmware through the exporter host with the
runner's own command lines. Nothing here imports TensorFlow; labgrid and grpc are imported only
when a lab command runs.
"""
