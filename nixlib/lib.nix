# Helpers. `mkJob` turns a base flake and the job's modules into the outputs the
# rebuild tools look for, one per configuration the base has.
let
  mapAttrs = builtins.mapAttrs;
  jobArgs = jobPkgs: system: { jobPkgs = if builtins.isFunction jobPkgs then jobPkgs system else jobPkgs; };
in
rec {
  # Units that must never be stopped or restarted under a running job. The guard in
  # `nixlayer switch` uses the same list; bases add to it with nixlayer.protect.units.
  defaultProtectedUnits = [
    "sshd.service"
    "sshd.socket"
    "gitlab-runner.service"
    "nix-daemon.service"
    "nix-daemon.socket"
    "systemd-logind.service"
    "dbus.service"
    "dbus.socket"
    "dbus-broker.service"
    "systemd-networkd.service"
    "systemd-networkd.socket"
    "systemd-resolved.service"
    "NetworkManager.service"
    "network-setup.service"
    "firewall.service"
    "nftables.service"
    "wpa_supplicant.service"
  ];

  # NixOS and nix-darwin: extendModules keeps the base's pkgs (so every unit the job
  # does not touch keeps its store path); the job's own nixpkgs comes in as jobPkgs.
  extendConfigurations =
    { configurations, modules, jobPkgs ? null }:
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
    { base, modules, jobPkgs ? null }:
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
