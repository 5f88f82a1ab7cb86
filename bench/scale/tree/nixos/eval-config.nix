# lib.nixosSystem: the fixture's base module, every generated module, the caller's.
{ modules ? [ ], specialArgs ? { }, system ? null, nixpkgs, revision, ... }:
let
  lib = import ../lib;
  pkgsModule =
    { config, ... }:
    {
      config._module.args.pkgs =
        if config.nixpkgs.pkgs != null then config.nixpkgs.pkgs
        else import ../pkgs { system = config.nixpkgs.system; overlays = config.nixpkgs.overlays; };
    };
  eval = lib.evalModules {
    specialArgs = { modulesPath = toString ./modules; } // specialArgs;
    modules =
      [ ./modules/base.nix pkgsModule { system.nixos.revision = revision; } ]
      ++ import ./modules/module-list.nix
      ++ lib.optional (system != null) { nixpkgs.system = lib.mkDefault system; }
      ++ modules;
  };
in
eval // { pkgs = eval.config._module.args.pkgs; }
