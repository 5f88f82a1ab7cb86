# systemd.services as NixOS declares it: one submodule evaluation per unit with
# its unit options (defaults matching what base.nix falls back to), and one
# unit-file derivation per unit rendering all of them, as NixOS' unit-*.service.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  list = mkOption { type = types.listOf types.str; default = [ ]; };
  str = mkOption { type = types.str; default = ""; };
  unitOptions =
    { name, ... }:
    {
      options = {
        enable = mkOption { type = types.bool; default = true; };
        description = mkOption { type = types.str; default = name; };
        wantedBy = list; requiredBy = list; after = list; before = list; requires = list;
        wants = list; bindsTo = list; partOf = list; conflicts = list; requisite = list;
        onFailure = list; onSuccess = list; upholds = list; documentation = list; aliases = list;
        path = mkOption { type = types.listOf types.raw; default = [ ]; };
        unitConfig = mkOption { type = types.attrsOf types.raw; default = { }; };
        serviceConfig = mkOption { type = types.attrsOf types.raw; default = { }; };
        environment = mkOption { type = types.attrsOf types.raw; default = { }; };
        restartTriggers = mkOption { type = types.listOf types.raw; default = [ ]; };
        reloadTriggers = mkOption { type = types.listOf types.raw; default = [ ]; };
        restartIfChanged = mkOption { type = types.bool; default = true; };
        reloadIfChanged = mkOption { type = types.bool; default = false; };
        stopIfChanged = mkOption { type = types.bool; default = true; };
        startLimitBurst = mkOption { type = types.int; default = 5; };
        startLimitIntervalSec = mkOption { type = types.int; default = 10; };
        preStart = str; postStart = str; preStop = str; postStop = str; reload = str;
        startAt = list;
        confinement.enable = mkOption { type = types.bool; default = false; };
      };
    };
  render =
    name: u:
    let
      v = x: if builtins.isList x then lib.concatStringsSep " " (map toString x) else toString x;
      plain = removeAttrs u [ "_module" "unitConfig" "serviceConfig" "environment" "confinement" "script" ];
    in
    "[Unit]
"
    + lib.concatStringsSep "" (lib.mapAttrsToList (k: x: "X-${k}=${v x}
") plain)
    + lib.concatStringsSep "" (lib.mapAttrsToList (k: x: "${k}=${v x}
") u.unitConfig)
    + "[Service]
"
    + lib.concatStringsSep "" (lib.mapAttrsToList (k: x: "Environment=${k}=${v x}
") u.environment)
    + lib.concatStringsSep "" (lib.mapAttrsToList (k: x: "${k}=${v x}
") u.serviceConfig);
in
{
  options.systemd.services = mkOption { type = types.attrsOfSubmodule unitOptions; default = { }; };
  config.system.build.unitFiles = map (n: pkgs.writeText "unit-${builtins.replaceStrings [ "@" ] [ "-" ] n}.service" (render n config.systemd.services.${n}))
    (builtins.attrNames (lib.filterAttrs (_: u: u.enable) config.systemd.services));
}
