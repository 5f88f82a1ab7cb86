# nix-darwin reloads every changed launchd plist and has no restartIfChanged knob, so
# protection is the guard in `nixlayer switch` alone: once enabled, publish the list.
{
  config,
  lib,
  ...
}:
let
  cfg = config.nixlayer.protect;
in
{
  options.nixlayer.protect = {
    enable = lib.mkEnableOption "publishing the launchd labels a CI job's switch must never reload";
    units = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = (lib.importJSON ../protected-units.json).launchd;
      defaultText = lib.literalExpression "(lib.importJSON <nixlayer>/protected-units.json).launchd";
      description = "launchd labels a CI job's switch must never reload.";
    };
  };

  config.environment.etc = lib.optionalAttrs cfg.enable {
    "nixlayer/protected-units.json".text = builtins.toJSON { inherit (cfg) units; };
  };
}
