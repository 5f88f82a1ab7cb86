# Imageless NixOS VM (nixlayer built-in template, for libraries that ship none).
#
# Per-VM configuration lives in ./default.nix. This flake composes
# the base modules, applies the overlay, and passes nixos-flake and
# the flake inputs through specialArgs so default.nix can import
# additional modules and reference local source inputs.
{
  inputs = {
    # Local checkout preferred. For upstream, use:
    #   nixos-flake.url = "github:linux-kdevops/nixos-flake";
    nixos-flake.url = "path:/path/to/nixos-flake";
    nixpkgs.follows = "nixos-flake/nixpkgs";

    # Local source checkouts (uncomment to use):
    #   fio-src = {
    #     type = "path";
    #     path = "/home/user/src/fio";
    #     flake = false;
    #   };
  };

  outputs =
    {
      self,
      nixpkgs,
      nixos-flake,
      ...
    }@inputs:
    let
      system = "x86_64-linux";
    in
    {
      nixosConfigurations.vm = nixpkgs.lib.nixosSystem {
        inherit system;
        specialArgs = { inherit inputs nixos-flake; };
        modules = [
          nixos-flake.nixosModules.backends.imageless
          nixos-flake.nixosModules.user
          { nixpkgs.overlays = [ nixos-flake.overlays.default ]; }
          ./default.nix
        ];
      };

      # Run: nix build .#toplevel  (or .#packages.<system>.toplevel)
      packages.${system}.toplevel = self.nixosConfigurations.vm.config.system.build.toplevel;
    };
}
