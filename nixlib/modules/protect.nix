# The base declares what a job must never bounce. Once enabled, the protected services
# this system defines get `restartIfChanged = false` (rendered X-RestartIfChanged=false,
# which switch-to-configuration and system-manager honour), and the list is published at
# <toplevel>/etc/nixlayer/protected-units.json for `nixlayer switch`.
{
  config,
  options,
  lib,
  ...
}:
let
  cfg = config.nixlayer.protect;
  defaults = lib.importJSON ../protected-units.json;

  # Which option defines each default service on NixOS. system-manager bases do not
  # declare these options: there, a service is only the base's own to define. Asking
  # `config.systemd.services ? x` while defining systemd.services would recurse.
  declared = path: lib.hasAttrByPath path options;
  on = path: declared path && lib.getAttrFromPath path config;
  dbusImplementation =
    if declared [ "services" "dbus" "implementation" ] then
      config.services.dbus.implementation
    else
      "dbus";
  networkd = on [ "systemd" "network" "enable" ];
  networkmanager = on [ "networking" "networkmanager" "enable" ];
  nftables = on [ "networking" "nftables" "enable" ];
  definedBy = {
    "sshd.service" = on [ "services" "openssh" "enable" ];
    "gitlab-runner.service" = on [ "services" "gitlab-runner" "enable" ];
    "nix-daemon.service" = on [ "nix" "enable" ];
    "systemd-logind.service" = declared [ "services" "logind" ];
    "dbus.service" = on [ "services" "dbus" "enable" ] && dbusImplementation == "dbus";
    "dbus-broker.service" = on [ "services" "dbus" "enable" ] && dbusImplementation == "broker";
    "systemd-networkd.service" = networkd;
    "systemd-resolved.service" = on [ "services" "resolved" "enable" ];
    "NetworkManager.service" = networkmanager;
    "network-setup.service" = declared [ "networking" "useNetworkd" ] && !networkd && !networkmanager;
    "firewall.service" = on [ "networking" "firewall" "enable" ] && !nftables;
    "nftables.service" = nftables;
    "wpa_supplicant.service" = on [ "networking" "wireless" "enable" ];
  };
  # Only services known to be defined here: setting restartIfChanged on any other name
  # would create a stub unit. The guard in `nixlayer switch` protects every listed unit.
  protectedServices = lib.filter (unit: lib.attrByPath [ unit ] false definedBy) cfg.units;
in
{
  options.nixlayer.protect = {
    enable = lib.mkEnableOption "protection of the units a CI job's switch must never bounce";
    units = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = defaults.systemd;
      defaultText = lib.literalExpression "(lib.importJSON <nixlayer>/protected-units.json).systemd";
      description = ''
        Units a CI job's switch must never stop or restart. Add to them with
        `options.nixlayer.protect.units.default ++ [ … ]`.
      '';
    };
    keepServicesRunning = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Whether the protected services this system defines get `restartIfChanged = false`,
        so a switch that changes them leaves them running. For services of your own, set
        `restartIfChanged = false` on them yourself.
      '';
    };
  };

  # optionalAttrs rather than mkIf around attribute sets of names: disabled, the module
  # adds no name at all (module systems that list mkIf-false names then fail on them).
  config = {
    environment.etc = lib.optionalAttrs cfg.enable {
      "nixlayer/protected-units.json".text = builtins.toJSON { inherit (cfg) units; };
    };
    systemd.services = lib.genAttrs (map (lib.removeSuffix ".service") (
      lib.optionals (cfg.enable && cfg.keepServicesRunning) protectedServices
    )) (_: { restartIfChanged = lib.mkDefault false; });
  };
}
