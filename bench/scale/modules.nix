# The scale stand-in's module system: the test fixture's small NixOS-style
# module system plus what makes nixpkgs' one cost what it costs: every
# definition is type-checked, and attributes whose definitions all vanish under
# `mkIf false` are dropped (so 1,500 modules can each define
# `config = mkIf cfg.enable { systemd.services.<name> = ...; }`).
lib:
let
  inherit (builtins)
    all attrNames concatMap filter foldl' functionArgs genericClosure head isAttrs
    isFunction isList isPath isString length listToAttrs mapAttrs sort;

  isDrv = x: isAttrs x && (x.type or null) == "derivation";
  isOption = x: isAttrs x && (x._type or null) == "option";
  uniqueNames = names: attrNames (listToAttrs (map (n: { name = n; value = null; }) names));

  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkOrder = priority: content: { _type = "order"; inherit priority content; };

  # A definition that (under its wrappers) is an attribute set to recurse into.
  isSubtreeDef =
    d:
    let t = d._type or null; in
    if t == "if" || t == "override" || t == "order" then isSubtreeDef d.content
    else if t == "merge" then all isSubtreeDef d.contents
    else isAttrs d && !(isDrv d) && !(d ? _type);

  # A definition that is nothing once its conditions are known.
  vanished =
    d:
    let t = d._type or null; in
    if t == "if" then !d.condition || vanished d.content
    else if t == "override" || t == "order" then vanished d.content
    else if t == "merge" then all vanished d.contents
    else false;

  # Turn one definition of an attribute set into attribute sets of definitions.
  pushDown =
    d:
    let
      t = d._type or null;
      wrap = f: map (s: mapAttrs (_: f) s) (pushDown d.content);
    in
    if t == "if" then wrap (mkIf d.condition)
    else if t == "override" then wrap (mkOverride d.priority)
    else if t == "order" then wrap (mkOrder d.priority)
    else if t == "merge" then concatMap pushDown d.contents
    else [ d ];

  # Evaluate conditions and priorities of the definitions of one leaf.
  discharge =
    d:
    let t = d._type or null; in
    if t == "if" then (if d.condition then discharge d.content else [ ])
    else if t == "merge" then concatMap discharge d.contents
    else if t == "override" then map (x: x // { priority = d.priority; }) (discharge d.content)
    else if t == "order" then map (x: x // { order = d.priority; }) (discharge d.content)
    else [ { value = d; priority = 100; order = 1000; } ];

  mergeLeaf =
    path: decl: defs:
    let
      name = lib.concatStringsSep "." path;
      ds = concatMap discharge defs;
      best = foldl' (m: d: if d.priority < m then d.priority else m) 100000 ds;
      top = sort (a: b: a.order < b.order) (filter (d: d.priority == best) ds);
      check = if decl != null && (decl.type or { }) ? check then decl.type.check else (_: true);
      values = map (
        d:
        if check d.value then d.value
        else throw "A definition for option `${name}' is not of type `${decl.type.name}'."
      ) top;
      merged =
        if decl != null && (decl.type or { }) ? merge && values != [ ] then decl.type.merge path values
        else if values == [ ] then
          (if decl != null && decl ? default then decl.default
           else throw "The option `${name}' is used but not defined.")
        else if length values == 1 then head values
        else if all isList values then builtins.concatLists values
        else if all (v: isAttrs v && !(isDrv v)) values then foldl' (a: b: a // b) { } values
        else if all (v: v == head values) values then head values
        else throw "The option `${name}' has conflicting definition values.";
      post = if decl != null && (decl.type or { }) ? postMerge then decl.type.postMerge merged else merged;
    in
    post;

  mergeTree =
    path: decl: defs:
    if isOption decl then mergeLeaf path decl defs
    else
      let
        pushed = concatMap pushDown defs;
        names = uniqueNames ((if decl == null then [ ] else attrNames decl) ++ concatMap attrNames pushed);
        sub = n: concatMap (s: if s ? ${n} then [ s.${n} ] else [ ]) pushed;
      in
      # Only undeclared subtrees drop vanished names: filtering a declared level
      # would force conditions while the names of `config` itself are computed.
      lib.genAttrs (if decl == null then filter (n: !(all vanished (sub n))) names else names) (
        n:
        let
          subDecl = if decl != null && decl ? ${n} then decl.${n} else null;
          defs' = sub n;
        in
        if subDecl != null then mergeTree (path ++ [ n ]) subDecl defs'
        else if defs' != [ ] && all isSubtreeDef defs' then mergeTree (path ++ [ n ]) null defs'
        else mergeLeaf (path ++ [ n ]) null defs'
      );

  # Option declarations from several modules, merged into one tree.
  mergeDecls =
    a: b:
    if isOption a || isOption b then a
    else a // mapAttrs (n: v: if a ? ${n} then mergeDecls a.${n} v else v) b;

  evalModules =
    args@{ modules, specialArgs ? { } }:
    let
      argsFor =
        f:
        mapAttrs (
          n: _:
          if n == "config" then config
          else if n == "options" then options
          else if n == "lib" then specialArgs.lib or lib
          else if specialArgs ? ${n} then specialArgs.${n}
          else config._module.args.${n}
        ) (functionArgs f);

      load =
        key: m:
        let
          raw = if isPath m || isString m then import m else m;
          v = if isFunction raw then raw (argsFor raw) else raw;
          full = v ? config || v ? options;
        in
        {
          inherit key;
          imports = v.imports or [ ];
          options = v.options or { };
          config = if full then v.config or { } else removeAttrs v [ "imports" "_file" "key" "meta" "disabledModules" ];
        };

      keyOf = parent: i: m: if isPath m || isString m then toString m else "${parent}:${toString i}";
      loadAll = parent: ms: builtins.genList (i: load (keyOf parent i (builtins.elemAt ms i)) (builtins.elemAt ms i)) (length ms);

      collected = genericClosure {
        startSet = loadAll "<root>" modules;
        operator = item: loadAll item.key item.imports;
      };

      internal = {
        options._module.args = lib.mkOption { type = lib.types.raw; default = { }; };
      };
      options = foldl' mergeDecls internal.options (map (m: m.options) collected);
      config = mergeTree [ ] options (map (m: m.config) collected);
    in
    {
      inherit config options;
      _type = "configuration";
      type = "configuration";
      # As nixpkgs: append modules, merge specialArgs, evaluate again.
      extendModules =
        ext:
        evalModules {
          modules = args.modules ++ (ext.modules or [ ]);
          specialArgs = (args.specialArgs or { }) // (ext.specialArgs or { });
        };
    };

  mkOption = attrs: attrs // { _type = "option"; };

  types =
    let
      simple = name: { inherit name; };
      submoduleDefaults =
        m:
        let
          v = if isFunction m then m (builtins.intersectAttrs (functionArgs m) { inherit lib; name = ""; config = { }; }) else m;
          opts = v.options or { };
        in
        mapAttrs (_: o: o.default) (lib.filterAttrs (_: o: isOption o && o ? default) opts);
    in
    {
      str = simple "str" // { check = builtins.isString; };
      bool = simple "bool" // { check = builtins.isBool; };
      int = simple "int" // { check = builtins.isInt; };
      path = simple "path" // { check = x: isPath x || isString x; };
      package = simple "package" // { check = x: isDrv x || isString x; };
      raw = simple "raw";
      anything = simple "anything";
      lines = simple "lines" // { check = builtins.isString; };
      port = simple "port" // { check = x: builtins.isInt x && x >= 0 && x < 65536; };
      ints = {
        positive = simple "positiveInt" // { check = x: builtins.isInt x && x > 0; };
        unsigned = simple "unsignedInt" // { check = x: builtins.isInt x && x >= 0; };
      };
      enum = values: { name = "enum"; inherit values; check = x: builtins.elem x values; };
      nullOr = t: { name = "nullOr"; inherit t; check = x: x == null || (t.check or (_: true)) x; };
      either = a: b: { name = "either"; check = x: (a.check or (_: true)) x || (b.check or (_: true)) x; };
      listOf = t: { name = "listOf"; inherit t; check = x: isList x && all (t.check or (_: true)) x; };
      attrsOf = t: {
        name = "attrsOf";
        check = isAttrs;
        postMerge = v: mapAttrs (_: x: if t ? postMerge then t.postMerge x else x) v;
      };
      lazyAttrsOf = t: { name = "lazyAttrsOf"; check = isAttrs; };
      submodule = m: { name = "submodule"; check = isAttrs; postMerge = v: submoduleDefaults m // v; };
      # As nixpkgs' attrsOf (submodule m): every attribute is its own module
      # evaluation over all of its definitions (systemd units are these).
      attrsOfSubmodule = m: {
        name = "attrsOf (submodule)";
        check = isAttrs;
        merge =
          path: values:
          let names = uniqueNames (concatMap attrNames values); in
          lib.genAttrs names (
            n:
            (evalModules {
              modules = [ m ] ++ concatMap (v: if v ? ${n} then [ { config = v.${n}; } ] else [ ]) values;
              specialArgs = { name = n; };
            }).config
          );
      };
      oneOf = ts: { name = "oneOf"; check = x: builtins.any (t: (t.check or (_: true)) x) ts; };
    };
in
{
  inherit mkIf mkMerge mkOverride mkOrder mkOption types evalModules isOption;
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  mkOptionDefault = mkOverride 1500;
  mkBefore = mkOrder 500;
  mkAfter = mkOrder 1500;
  mkEnableOption = name: mkOption { type = types.bool; default = false; description = "Whether to enable ${name}."; };
  mkPackageOption = pkgs: name: extra: mkOption { type = types.package; default = pkgs.${name}; };
}
