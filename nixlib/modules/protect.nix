# The base declares what a job must never bounce. Protected services get
# restartIfChanged = false (rendered X-RestartIfChanged=false, which
# switch-to-configuration and system-manager honour), and the list is published
# at <toplevel>/etc/nixlayer/protected-units.json for `nixlayer switch`.
{ config, lib, ... }:
let
  cfg = config.nixlayer.protect;
  # Which option defines each default service. Asking `config.systemd.services ? x`
  # while defining systemd.services would recurse, so existence comes from these.
  definedBy = {
    "sshd.service" = config.services.openssh.enable or false;
    "gitlab-runner.service" = config.services.gitlab-runner.enable or false;
    "nix-daemon.service" = config.nix.enable or true;
    "systemd-logind.service" = true;
    "dbus.service" = (config.services.dbus.enable or true) && (config.services.dbus.implementation or "dbus") == "dbus";
    "dbus-broker.service" = (config.services.dbus.implementation or "dbus") == "broker";
    "systemd-networkd.service" = config.systemd.network.enable or false;
    "systemd-resolved.service" = config.services.resolved.enable or false;
    "NetworkManager.service" = config.networking.networkmanager.enable or false;
    "network-setup.service" = !(config.systemd.network.enable or false) && !(config.networking.networkmanager.enable or false);
    "firewall.service" = (config.networking.firewall.enable or false) && !(config.networking.nftables.enable or false);
    "nftables.service" = config.networking.nftables.enable or false;
    "wpa_supplicant.service" = config.networking.wireless.enable or false;
  };
  isService = u: builtins.match ".*\\.service" u != null;
  serviceName = u: builtins.substring 0 (builtins.stringLength u - 8) u;
  # Units the base lists beyond the defaults must be services it defines.
  protectedServices = builtins.filter (u: isService u && (definedBy.${u} or true)) cfg.units;
in
{
  options.nixlayer.protect = {
    units = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = (import ../lib.nix).defaultProtectedUnits;
      description = "Units a CI job's switch must never stop or restart. Add with `++`.";
    };
    restartIfChanged = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Set restartIfChanged = false on the protected services the base defines.";
    };
  };

  config = {
    environment.etc."nixlayer/protected-units.json".text = builtins.toJSON { units = cfg.units; };
    systemd.services = lib.mkIf cfg.restartIfChanged (
      lib.genAttrs (map serviceName protectedServices) (_: {
        restartIfChanged = lib.mkDefault false;
      })
    );
  };
}
