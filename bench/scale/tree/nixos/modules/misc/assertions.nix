{ lib, ... }:
{
  options.assertions = lib.mkOption { type = lib.types.listOf lib.types.raw; default = [ ]; };
}
