"""VM closures: a typed spec rendered into a per-VM flake over a library, locked and built;
fleets of them, and the Windmill export."""
