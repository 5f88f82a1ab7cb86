"""Windmill integration: step functions and the workspace fragment exporter."""
