"""Predict what switch-to-configuration will stop, start, restart and reload."""
