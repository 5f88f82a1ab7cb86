"""The only package that runs `nix`: argv builders (pure), one runner, log parsing."""
