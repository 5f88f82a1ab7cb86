# The package set: all-packages.nix, by-name and python3Packages through
# callPackage, over a stdenv booted in stages, then the caller's overlays.
{ system, overlays ? [ ] }:
let
  lib = import ../lib;
  byNameDir = ./by-name;
  byName =
    callPackage:
    builtins.listToAttrs (builtins.concatMap (
      shard:
      map (n: { name = n; value = callPackage (byNameDir + "/${shard}/${n}/package.nix") { }; })
        (builtins.attrNames (builtins.readDir (byNameDir + "/${shard}")))
    ) (builtins.attrNames (builtins.readDir byNameDir)));
  packageSet =
    stdenv: extraOverlays:
    let
      base =
        final:
        let
          callPackageWith =
            scope: fn: args:
            let f = import fn; in f (builtins.intersectAttrs (builtins.functionArgs f) scope // args);
          callPackage = callPackageWith final;
        in
        import ./top-level/all-packages.nix { inherit callPackage; }
        // byName callPackage
        // {
          inherit lib system stdenv callPackage;
          inherit (stdenv) mkDerivation;
          fetchurl = import ./build-support/fetchurl.nix { inherit system; };
          python3Packages = import ./top-level/python-packages.nix {
            callPackage = callPackageWith (final // final.python3Packages);
          };
          writeText = name: text: stdenv.mkDerivation { inherit name text; passAsFile = [ "text" ]; buildCommand = "cp \"$textPath\" \"$out\""; };
          writeShellScript = name: text: stdenv.mkDerivation { inherit name text; passAsFile = [ "text" ]; buildCommand = "{ echo '#!/bin/sh'; cat \"$textPath\"; } > \"$out\"; chmod +x \"$out\""; };
        };
      # nixpkgs' own overlays, each a `//` over the whole set, in every stage.
      internal = [
        (final: prev: import ./top-level/aliases.nix final)
        (final: prev: { pkgsStatic = prev; buildPackages = prev; __splicedPackages = prev // { recurseForDerivations = false; }; })
        (final: prev: { config = { allowUnfree = false; }; })
        (final: prev: builtins.mapAttrs (_: v: v) (builtins.intersectAttrs { python3 = null; perl = null; } prev))
      ];
    in
    lib.fix (lib.foldl' (f: overlay: lib.extends overlay f) base (internal ++ extraOverlays));
  stdenv = import ./stdenv { inherit lib system packageSet; };
in
packageSet stdenv overlays
