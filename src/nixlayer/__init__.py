"""nixlayer: per-VM NixOS closures and layered CI configurations.

The step functions are importable from their flow modules without the CLI:

    from nixlayer.closure.render import render_config
    from nixlayer.closure.lock import lock_config
    from nixlayer.closure.build import build_closure
"""

__version__ = "0.1.0"
