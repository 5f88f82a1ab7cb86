"""Orchestration: render -> lock -> build, as plain functions with typed parameters."""
