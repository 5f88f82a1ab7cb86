"""Typed inputs (pydantic) and results (frozen dataclasses)."""
