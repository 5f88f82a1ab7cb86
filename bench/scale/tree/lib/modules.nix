# The scale stand-in's module system: the test fixture's small NixOS-style
# module system plus what makes nixpkgs' one cost what it costs. As nixpkgs'
# lib/modules.nix does (written afresh, not copied): every definition carries
# its file; an option's default is a definition at mkOptionDefault priority;
# definitions are discharged (mkIf, mkMerge), filtered by priority, sorted by
# order, type-checked and merged by their type (list elements and attributes
# each through the same merge); `options.<path>` carries value, files,
# definitions and highest priority; modules are checked for unknown attributes
# and `disabledModules` applies. Attributes whose definitions all vanish under
# `mkIf false` are dropped (so 2,000 modules can each define
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

  # An option's path as nixpkgs prints it: names that are not identifiers quoted.
  showOption =
    path:
    builtins.concatStringsSep "." (map (p:
      if builtins.match "[A-Za-z_][A-Za-z0-9_'-]*|<name>|\\*" p != null then p else builtins.toJSON p
    ) path);

  # One definition's subtrees, each value carrying the definition's file.
  pushDownDef = def: map (s: mapAttrs (_: v: { inherit (def) file; value = v; }) s) (pushDown def.value);

  # As nixpkgs' mergeEqualOption: every definition must agree.
  mergeEqual =
    loc: defs:
    let first = head defs; in
    if length defs == 1 then first.value
    else foldl' (acc: d:
      if d.value == first.value then acc
      else throw "The option `${showOption loc}' has conflicting definition values: in `${first.file}' and `${d.file}'."
    ) first.value (builtins.tail defs);

  # What the module system keeps for an option, as nixpkgs' mergeDefinitions and
  # evalOptionValue do: the default as a definition at mkOptionDefault priority,
  # definitions discharged (mkIf, mkMerge), filtered by priority, sorted by order,
  # type-checked, merged by the type; and the bookkeeping (files, definitions,
  # highest priority) that `options.<path>` exposes.
  mergeLeaf =
    path: decl: defs:
    let
      name = showOption path;
      type = if decl != null then decl.type or null else null;
      declarations = if decl != null then decl.declarations or [ ] else [ ];
      defaultDefs =
        if decl != null && decl ? default then
          [ { file = if declarations == [ ] then "<unknown-file>" else head declarations; value = mkOverride 1500 decl.default; } ]
        else [ ];
      discharged = concatMap (d: map (x: x // { inherit (d) file; }) (discharge d.value)) (defaultDefs ++ defs);
      highestPrio = foldl' (m: d: if d.priority < m then d.priority else m) 9999 discharged;
      kept = filter (d: d.priority == highestPrio) discharged;
      sorted = if builtins.any (d: d.order != 1000) kept then sort (a: b: a.order < b.order) kept else kept;
      finalDefs = map (d: { inherit (d) file value; }) sorted;
      isDefined = finalDefs != [ ];
      checked =
        if type == null || !(type ? check) then finalDefs
        else map (d:
          if type.check d.value then d
          else throw "A definition for option `${name}' is not of type `${type.description or type.name}'. Definition value in `${d.file}'."
        ) finalDefs;
      merged =
        if !isDefined then throw "The option `${name}' is used but not defined."
        else if type != null && type ? merge then type.merge path checked
        else fallbackMerge name checked;
    in
    {
      __leaf = true;
      value = if type != null && type ? postMerge then type.postMerge merged else merged;
      inherit isDefined highestPrio declarations;
      loc = path;
      files = map (d: d.file) finalDefs;
      definitions = map (d: d.value) finalDefs;
      definitionsWithLocations = finalDefs;
    };

  # Undeclared paths (the stand-in lets modules define them) and raw values.
  fallbackMerge =
    name: defs:
    let values = map (d: d.value) defs; in
    if length values == 1 then head values
    else if all isList values then builtins.concatLists values
    else if all (v: isAttrs v && !(isDrv v)) values then foldl' (a: b: a // b) { } values
    else if all (v: v == head values) values then head values
    else throw "The option `${name}' has conflicting definition values.";

  mergeTree =
    path: decl: defs:
    if isOption decl then mergeLeaf path decl defs
    else
      let
        pushed = concatMap pushDownDef defs;
        names = uniqueNames ((if decl == null then [ ] else attrNames decl) ++ concatMap attrNames pushed);
        sub = n: concatMap (s: if s ? ${n} then [ s.${n} ] else [ ]) pushed;
      in
      # Only undeclared subtrees drop vanished names: filtering a declared level
      # would force conditions while the names of `config` itself are computed.
      lib.genAttrs (if decl == null then filter (n: !(all (d: vanished d.value) (sub n))) names else names) (
        n:
        let
          subDecl = if decl != null && decl ? ${n} then decl.${n} else null;
          defs' = sub n;
        in
        if subDecl != null then mergeTree (path ++ [ n ]) subDecl defs'
        else if defs' != [ ] && all (d: isSubtreeDef d.value) defs' then mergeTree (path ++ [ n ]) null defs'
        else mergeLeaf (path ++ [ n ]) null defs'
      );

  # config: the merged tree with each leaf's value.
  valuesOf = tree: if tree ? __leaf then tree.value else mapAttrs (_: valuesOf) tree;
  # options: the declarations, each option with what was merged for it.
  optionsOf =
    decl: tree:
    mapAttrs (n: d: if isOption d then d // removeAttrs tree.${n} [ "__leaf" ] else optionsOf d tree.${n}) decl;

  # Option declarations from several modules, merged into one tree; each option
  # remembers the files that declare it.
  mergeDecls =
    a: b:
    if isOption a && isOption b then a // { declarations = a.declarations ++ b.declarations; }
    else if isOption a || isOption b then a
    else a // mapAttrs (n: v: if a ? ${n} then mergeDecls a.${n} v else v) b;

  declaredIn = file: o: if isOption o then o // { declarations = [ file ]; } else mapAttrs (_: declaredIn file) o;

  # The attributes a module may have, as nixpkgs' unifyModuleSyntax checks.
  moduleAttrs = [ "_file" "key" "imports" "options" "config" "meta" "disabledModules" "freeformType" "_class" ];

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
          file = v._file or key;
          extra = removeAttrs v moduleAttrs;
        in
        if full && extra != { } then
          throw "Module `${file}' has an unsupported attribute `${head (attrNames extra)}'."
        else
          {
            inherit key file;
            imports = v.imports or [ ];
            disabledModules = map toString (v.disabledModules or [ ]);
            meta = v.meta or { };
            options = declaredIn file (v.options or { });
            config = {
              inherit file;
              value = if full then v.config or { } else removeAttrs v [ "imports" "_file" "key" "meta" "disabledModules" ];
            };
          };

      keyOf = parent: i: m: if isPath m || isString m then toString m else "${parent}:${toString i}";
      loadAll = parent: ms: builtins.genList (i: load (keyOf parent i (builtins.elemAt ms i)) (builtins.elemAt ms i)) (length ms);

      collected = genericClosure {
        startSet = loadAll "<root>" modules;
        operator = item: loadAll item.key item.imports;
      };
      disabled = listToAttrs (map (k: { name = k; value = null; }) (concatMap (m: m.disabledModules) collected));
      active = filter (m: !(disabled ? ${m.key})) collected;

      internal = {
        options._module.args = lib.mkOption { type = types.lazyAttrsOf types.raw; default = { }; declarations = [ "lib/modules.nix" ]; };
      };
      declared = foldl' mergeDecls internal.options (map (m: m.options) active);
      tree = mergeTree [ ] declared (map (m: m.config) active);
      config = valuesOf tree;
      options = optionsOf declared tree;
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
      simple = name: description: check: { inherit name description check; merge = mergeEqual; };
      submoduleDefaults =
        m:
        let
          v = if isFunction m then m (builtins.intersectAttrs (functionArgs m) { inherit lib; name = ""; config = { }; }) else m;
          opts = v.options or { };
        in
        mapAttrs (_: o: o.default) (lib.filterAttrs (_: o: isOption o && o ? default) opts);
      # The element's own merge, each element or attribute an option of its own,
      # as nixpkgs' listOf and attrsOf merge through mergeDefinitions.
      elementsOf =
        t: loc: defs:
        builtins.concatLists (builtins.genList (i:
          let d = builtins.elemAt defs i; in
          builtins.genList (j:
            (mergeLeaf (loc ++ [ "[definition ${toString (i + 1)}-entry ${toString (j + 1)}]" ]) { type = t; } [
              { inherit (d) file; value = builtins.elemAt d.value j; }
            ]).value
          ) (length d.value)
        ) (length defs));
      attributesOf =
        t: loc: defs:
        let names = uniqueNames (concatMap (d: attrNames d.value) defs); in
        lib.genAttrs names (n:
          (mergeLeaf (loc ++ [ n ]) { type = t; } (concatMap (d: if d.value ? ${n} then [ { inherit (d) file; value = d.value.${n}; } ] else [ ]) defs)).value
        );
    in
    {
      str = simple "str" "string" builtins.isString;
      bool = simple "bool" "boolean" builtins.isBool;
      int = simple "int" "signed integer" builtins.isInt;
      path = simple "path" "path" (x: isPath x || isString x);
      package = simple "package" "package" (x: isDrv x || isString x);
      raw = { name = "raw"; description = "raw value"; };
      anything = { name = "anything"; description = "anything"; };
      lines = {
        name = "lines";
        description = "strings concatenated with \"\\n\"";
        check = builtins.isString;
        merge = loc: defs: builtins.concatStringsSep "\n" (map (d: d.value) defs);
      };
      port = simple "port" "16 bit unsigned integer; between 0 and 65535 (both inclusive)" (x: builtins.isInt x && x >= 0 && x < 65536);
      ints = {
        positive = simple "positiveInt" "positive integer, meaning >0" (x: builtins.isInt x && x > 0);
        unsigned = simple "unsignedInt" "unsigned integer, meaning >=0" (x: builtins.isInt x && x >= 0);
      };
      enum = values: simple "enum" "one of ${builtins.concatStringsSep ", " (map builtins.toJSON values)}" (x: builtins.elem x values);
      nullOr = t: {
        name = "nullOr";
        description = "null or ${t.description or t.name}";
        inherit t;
        check = x: x == null || (t.check or (_: true)) x;
        merge =
          loc: defs:
          let nulls = filter (d: d.value == null) defs; in
          if length nulls == length defs then null
          else if nulls != [ ] then throw "The option `${showOption loc}' is defined both null and not null, in `${(head nulls).file}'."
          else if t ? merge then t.merge loc defs
          else fallbackMerge (showOption loc) defs;
      };
      either = a: b: {
        name = "either";
        description = "${a.description or a.name} or ${b.description or b.name}";
        check = x: (a.check or (_: true)) x || (b.check or (_: true)) x;
      };
      listOf = t: {
        name = "listOf";
        description = "list of ${t.description or t.name}";
        inherit t;
        check = isList;
        merge = elementsOf t;
      };
      attrsOf = t: {
        name = "attrsOf";
        description = "attribute set of ${t.description or t.name}";
        check = isAttrs;
        merge = attributesOf t;
      };
      lazyAttrsOf = t: {
        name = "lazyAttrsOf";
        description = "lazy attribute set of ${t.description or t.name}";
        check = isAttrs;
        merge = attributesOf t;
      };
      submodule = m: {
        name = "submodule";
        description = "submodule";
        check = isAttrs;
        postMerge = v: submoduleDefaults m // v;
      };
      # As nixpkgs' attrsOf (submodule m): every attribute is its own module
      # evaluation over all of its definitions (systemd units are these).
      attrsOfSubmodule = m: {
        name = "attrsOf (submodule)";
        description = "attribute set of (submodule)";
        check = isAttrs;
        merge =
          path: defs:
          lib.genAttrs (uniqueNames (concatMap (d: attrNames d.value) defs)) (
            n:
            (evalModules {
              modules = [ m ] ++ concatMap (d: if d.value ? ${n} then [ { _file = d.file; config = d.value.${n}; } ] else [ ]) defs;
              specialArgs = { name = n; };
            }).config
          );
        # The manual documents a submodule's options under `<name>`.
        getSubOptions = prefix: (evalModules { modules = [ m ]; specialArgs = { name = "<name>"; }; }).options;
      };
      oneOf = ts: {
        name = "oneOf";
        description = "one of ${builtins.concatStringsSep ", " (map (t: t.description or t.name) ts)}";
        check = x: builtins.any (t: (t.check or (_: true)) x) ts;
      };
    };
in
{
  inherit mkIf mkMerge mkOverride mkOrder mkOption types evalModules isOption showOption;
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  mkOptionDefault = mkOverride 1500;
  mkBefore = mkOrder 500;
  mkAfter = mkOrder 1500;
  mkEnableOption = name: mkOption { type = types.bool; default = false; description = "Whether to enable ${name}."; };
  mkPackageOption = pkgs: name: extra: mkOption { type = types.package; default = pkgs.${name}; };
}
