# nix-darwin reloads every changed launchd plist and has no restartIfChanged knob,
# so protection is the guard in `nixlayer switch` alone: publish the list.
{ config, lib, ... }:
{
  options.nixlayer.protect.units = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    default = [ "com.openssh.sshd" "org.nixos.nix-daemon" "gitlab-runner" ];
    description = "launchd labels a CI job's switch must never reload.";
  };
  config.environment.etc."nixlayer/protected-units.json".text =
    builtins.toJSON { units = config.nixlayer.protect.units; };
}
