# nixlayer's Nix library: layer a CI job's modules over a runner's base system
# without touching what keeps the job's connection alive.
#
#   base (platform team):  imports = [ nixlayer.nixosModules.protect ];
#   job (repository):      nix flake init -t <nixlayer>?dir=nixlib#job
#
# It has no inputs: everything it needs comes from the base it extends.
{
  description = "nixlayer: layered CI job configurations over a runner's base system";

  outputs =
    { self }:
    let
      lib = import ./lib.nix;
    in
    {
      inherit lib;

      nixosModules.protect = ./modules/protect.nix;
      nixosModules.default = self.nixosModules.protect;
      # system-manager reads the same options (it honours X-RestartIfChanged=false).
      systemModules.protect = ./modules/protect.nix;
      darwinModules.protect = ./modules/protect-darwin.nix;

      templates.job = {
        path = ./templates/job;
        description = "A CI job's system layer over the runner's base configuration";
      };
      templates.default = self.templates.job;
    };
}
