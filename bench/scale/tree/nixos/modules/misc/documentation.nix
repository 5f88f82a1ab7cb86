# The options manual, on by default as in NixOS: as nixos/modules/misc/documentation.nix
# does, a second evaluation of every module with package derivations scrubbed to
# placeholders, then every option's (and every submodule's `<name>` option's) name,
# type, description, rendered default and example, and declaring files, sorted
# by name into options.json.
{ config, lib, options, pkgs, modulesPath, ... }:
let
  root = toString ./..;
  stripRoot = f: let s = toString f; n = builtins.stringLength root; in
    if builtins.substring 0 n s == root then "nixos" + builtins.substring n (builtins.stringLength s - n) s else s;
  scrub = prefix: set: builtins.mapAttrs (n: v:
    if lib.isDerivation v then { type = "derivation"; name = v.name or n; outPath = "\${${prefix}.${n}}"; outputs = [ "out" ]; }
    else v) set;
  docEval = lib.evalModules {
    modules = [ ../base.nix ] ++ import ../module-list.nix;
    specialArgs = { pkgs = scrub "pkgs" pkgs; inherit modulesPath; };
  };
  render =
    v:
    if builtins.isAttrs v && (v._type or null) == "literalExpression" then v.text
    else if lib.isDerivation v then "<derivation ${v.name or "?"}>"
    else if builtins.isFunction v then "<function>"
    else if builtins.isAttrs v || builtins.isList v then builtins.toJSON v
    else if builtins.isString v then builtins.toJSON v
    else toString v;
  entry = path: o: {
    name = lib.showOption path;
    loc = path;
    description = o.description or null;
    type = o.type.description or o.type.name or null;
    default = if o ? defaultText then o.defaultText else if o ? default then render o.default else null;
    example = if o ? example then render o.example else null;
    declarations = map stripRoot (o.declarations or [ ]);
    readOnly = o.readOnly or false;
    visible = o.visible or true;
    internal = o.internal or false;
  };
  collect =
    path: o:
    if lib.isOption o then
      [ (entry path o) ]
      ++ lib.optionals (o ? type && o.type ? getSubOptions) (collect (path ++ [ "<name>" ]) (removeAttrs (o.type.getSubOptions path) [ "_module" ]))
    else builtins.concatMap (n: collect (path ++ [ n ]) o.${n}) (builtins.attrNames o);
  entries = builtins.sort (a: b: a.name < b.name) (builtins.filter (e: e.visible && !e.internal) (collect [ ] (removeAttrs docEval.options [ "_module" ])));
  optionsJSON = builtins.listToAttrs (map (e: { inherit (e) name; value = removeAttrs e [ "name" "visible" "internal" ]; }) entries);
in
{
  options.documentation.nixos.enable = lib.mkOption { type = lib.types.bool; default = true; description = "Build the options manual."; };
  config.system.build.manual = lib.mkIf config.documentation.nixos.enable (
    pkgs.writeText "options.json" (builtins.toJSON optionsJSON)
  );
}
