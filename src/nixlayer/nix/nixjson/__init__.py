"""Typed boundary for Nix's JSON output: one module per command, each knowing every version's shape."""
