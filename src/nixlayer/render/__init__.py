"""Rendering of Nix source: the escaping module and the per-VM files built with it."""
