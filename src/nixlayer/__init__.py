"""nixlayer: per-VM NixOS closures and layered CI configurations.

The step functions are importable from their flow modules without the CLI:

    from nixlayer.flows.render import render_config
    from nixlayer.flows.lock import lock_config
    from nixlayer.flows.build import build_closure
"""

__version__ = "0.1.0"
