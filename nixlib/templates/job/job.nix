# What this job adds to the runner: services, kernel modules, packages.
# `jobPkgs` is the job's own nixpkgs; `pkgs` is the base's.
{ jobPkgs, ... }:
{
  # virtualisation.docker.enable = true;
  # boot.kernelModules = [ "kvm-intel" ];
  environment.systemPackages = [ jobPkgs.hello ];
}
