"""One Nix store shared by a host's GitLab docker runners (seed 002, made safe)."""
