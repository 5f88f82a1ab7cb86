# users.users, users.groups and environment.etc as NixOS declares them: each an
# attribute set of submodules, so every user, group and /etc file an enabled
# service adds is a module evaluation of its own (definitions the stand-in does
# not declare still pass through, as the fixtures rely on).
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  str = default: mkOption { type = types.str; inherit default; description = "A user setting."; };
  nullStr = mkOption { type = types.nullOr types.str; default = null; description = "A password setting."; };
  flag = default: mkOption { type = types.bool; inherit default; description = "A user flag."; };
  strs = mkOption { type = types.listOf types.str; default = [ ]; description = "A list of user settings."; };
  userOptions =
    { name, ... }:
    {
      options = {
        enable = flag true; name = str name; description = str ""; group = str ""; home = str "/var/empty";
        homeMode = str "700"; shell = nullStr; hashedPassword = nullStr; hashedPasswordFile = nullStr;
        initialPassword = nullStr; initialHashedPassword = nullStr; password = nullStr; expires = nullStr;
        uid = mkOption { type = types.nullOr types.int; default = null; description = "The user's UID."; };
        isSystemUser = flag false; isNormalUser = flag false; createHome = flag false; useDefaultShell = flag false;
        linger = flag false; ignoreShellProgramCheck = flag false; autoSubUidGidRange = flag false;
        extraGroups = strs; subUidRanges = strs; subGidRanges = strs;
        packages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages in the user's profile."; };
        openssh.authorizedKeys.keys = strs;
        openssh.authorizedKeys.keyFiles = strs;
        openssh.authorizedPrincipals = strs;
      };
    };
  groupOptions =
    { name, ... }:
    {
      options = {
        name = str name;
        gid = mkOption { type = types.nullOr types.int; default = null; description = "The group's GID."; };
        members = strs;
      };
    };
  etcOptions =
    { name, ... }:
    {
      options = {
        enable = flag true; target = str name; mode = str "symlink"; user = str "+0"; group = str "+0";
        text = mkOption { type = types.nullOr types.lines; default = null; description = "The file's text."; };
        source = mkOption { type = types.nullOr types.path; default = null; description = "The file's source."; };
        uid = mkOption { type = types.int; default = 0; description = "The file's owner."; };
        gid = mkOption { type = types.int; default = 0; description = "The file's group."; };
      };
    };
in
{
  options = {
    users.users = mkOption { type = types.attrsOfSubmodule userOptions; default = { }; description = "The users."; };
    users.groups = mkOption { type = types.attrsOfSubmodule groupOptions; default = { }; description = "The groups."; };
    environment.etc = mkOption { type = types.attrsOfSubmodule etcOptions; default = { }; description = "Files in /etc."; };
    environment.variables = mkOption { type = types.attrsOf types.str; default = { }; description = "Environment variables."; };
    systemd.tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; description = "tmpfiles.d rules."; };
    networking.firewall.allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; description = "Open TCP ports."; };
  };
}
