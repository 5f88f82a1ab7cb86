# A CI job's system layer. The runner's base configuration is the `base` input;
# `nixlayer switch` points it at the runner's own base at run time, so the URL
# below only matters on a developer's machine.
{
  inputs = {
    base.url = "path:/etc/nixos";
    # The job's own nixpkgs, for the packages it adds (jobPkgs in ./job.nix).
    # Units the job does not touch keep the base's nixpkgs.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    nixlayer.url = "github:nixlayer/nixlayer?dir=nixlib";
  };

  outputs =
    {
      base,
      nixpkgs,
      nixlayer,
      ...
    }:
    nixlayer.lib.mkJob {
      inherit base;
      jobPkgs = system: nixpkgs.legacyPackages.${system};
      modules = [ ./job.nix ];
    };
}
