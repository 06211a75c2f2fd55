"""Firmware: render the project for a board (firmware/ sources + the export's headers) and build it
with the board's platform (``build.py``); the platforms themselves live in ``hkdeploy.platforms``."""
