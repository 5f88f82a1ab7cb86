# Helpers. `mkJob` turns a base flake and the job's modules into the outputs the
# rebuild tools look for, one per configuration the base has.
#
# This file uses builtins: nixlib has no inputs (everything comes from the base it
# extends), so there is no nixpkgs `lib` in scope here. The modules use `lib`.
let
  inherit (builtins) mapAttrs;
  jobArgs = jobPkgs: system: {
    jobPkgs = if builtins.isFunction jobPkgs then jobPkgs system else jobPkgs;
  };
in
rec {
  # Units that must never be stopped or restarted under a running job: the one list
  # (protected-units.json) that the modules and the guard in `nixlayer switch` read.
  defaultProtectedUnits = (builtins.fromJSON (builtins.readFile ./protected-units.json)).systemd;

  # NixOS and nix-darwin: extendModules keeps the base's pkgs (so every unit the job
  # does not touch keeps its store path); the job's own nixpkgs comes in as jobPkgs.
  extendConfigurations =
    {
      configurations,
      modules,
      jobPkgs ? null,
    }:
    mapAttrs (
      _: cfg:
      cfg.extendModules {
        inherit modules;
        specialArgs = jobArgs jobPkgs cfg.pkgs.stdenv.hostPlatform.system;
      }
    ) configurations;

  # system-manager configurations are plain derivations with no extendModules: call
  # the base's own system-manager on the base's module list plus the job's modules.
  extendSystemConfigs =
    {
      base,
      modules,
      jobPkgs ? null,
    }:
    mapAttrs (
      name: spec:
      base.inputs.system-manager.lib.makeSystemConfig {
        modules = spec.modules ++ modules;
        extraSpecialArgs = (spec.extraSpecialArgs or { }) // jobArgs jobPkgs spec.system;
      }
    ) (base.nixlayer.systemConfigs or { });

  mkJob =
    {
      base,
      modules,
      # The job's nixpkgs: a package set, or a function from system to one.
      jobPkgs ? null,
    }:
    {
      nixosConfigurations = extendConfigurations {
        configurations = base.nixosConfigurations or { };
        inherit modules jobPkgs;
      };
      darwinConfigurations = extendConfigurations {
        configurations = base.darwinConfigurations or { };
        inherit modules jobPkgs;
      };
      systemConfigs = extendSystemConfigs { inherit base modules jobPkgs; };
    };
}
