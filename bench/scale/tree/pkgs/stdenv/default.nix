# stdenv booted in stages, as nixpkgs does: each stage builds its toolchain with
# the previous stage, instantiating the whole package set again.
{ lib, system, packageSet }:
let
  mkDerivationWith = import ./mk-derivation.nix { inherit lib system; };
  toolchain = TOOLCHAIN;
  mkStdenv = drv: { inherit drv; mkDerivation = mkDerivationWith drv; hostPlatform.system = system; };
  bootstrap = mkStdenv (derivation {
    name = "bootstrap-tools";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "PATH=/usr/bin:/bin; mkdir -p $out/bin" ];
    nixpkgsRevision = builtins.readFile ../revision;
  });
  stage =
    prev: i:
    let pkgs = packageSet prev [ ]; in
    mkStdenv (prev.mkDerivation {
      name = "stdenv-stage${toString i}";
      buildInputs = map (n: pkgs.${n}) toolchain;
    });
in
builtins.foldl' stage bootstrap [ 1 2 3 4 ]
