# stdenv.mkDerivation in miniature, doing what makes nixpkgs' one cost: a
# finalAttrs fixpoint; a meta check against a schema, with meta.platforms matched
# against an elaborated host platform (as lib.meta.availableOn) and meta.position;
# propagated inputs closed over with genericClosure; per-input environment strings;
# hardening flags; multiple outputs; overrideAttrs; a /bin/sh builder over the
# stage's stdenv.
{ lib, system }:
stdenvDrv:
let
  # As lib.systems.elaborate: the platform as an attribute set of facts.
  parts = builtins.match "([^-]+)-(.+)" system;
  cpu = builtins.elemAt parts 0;
  kernel = builtins.elemAt parts 1;
  hostPlatform = {
    inherit system;
    config = "${cpu}-unknown-${kernel}-gnu";
    parsed = {
      cpu = { name = cpu; bits = if builtins.match ".*64.*" cpu != null then 64 else 32; significantByte = "littleEndian"; family = if builtins.match "(x86_64|i686)" cpu != null then "x86" else cpu; };
      kernel = { name = kernel; execFormat = "elf"; families = { }; };
      vendor = "unknown";
      abi = "gnu";
    };
    isLinux = kernel == "linux";
    isDarwin = kernel == "darwin";
    is64bit = hostPlatform.parsed.cpu.bits == 64;
    isx86_64 = cpu == "x86_64";
    isAarch64 = cpu == "aarch64";
    libc = "glibc";
    linker = "bfd";
    extensions = { sharedLibrary = ".so"; executable = ""; };
  };
  matchAttrs = pattern: attrs: builtins.all (k: let p = pattern.${k}; in
    if builtins.isAttrs p then builtins.isAttrs (attrs.${k} or null) && matchAttrs p attrs.${k}
    else (attrs.${k} or null) == p) (builtins.attrNames pattern);
  platformMatch = platform: elem: if builtins.isString elem then platform.system == elem else matchAttrs elem platform;
  availableOn = platform: meta:
    (!(meta ? platforms) || builtins.any (platformMatch platform) meta.platforms)
    && builtins.all (elem: !(platformMatch platform elem)) (meta.badPlatforms or [ ]);
  metaSchema = {
    description = builtins.isString; homepage = builtins.isString; license = builtins.isAttrs;
    platforms = builtins.isList; broken = builtins.isBool; maintainers = builtins.isList;
    mainProgram = builtins.isString; longDescription = builtins.isString; priority = builtins.isInt;
    badPlatforms = builtins.isList; position = builtins.isString; available = builtins.isBool;
    outputsToInstall = builtins.isList;
  };
  checkMeta =
    name: meta:
    let
      bad = builtins.filter (k: !(metaSchema ? ${k}) || !(metaSchema.${k} meta.${k})) (builtins.attrNames meta);
      license = meta.license or { free = true; };
    in
    if bad != [ ] then throw "${name}: invalid meta attributes ${builtins.concatStringsSep ", " bad}"
    else if meta.broken or false then throw "${name} is marked as broken"
    else if !(license.free or true) && !(builtins.elem system [ ]) then true
    else if !meta.available then throw "${name} is not supported on ${system}"
    else true;
  hardeningFlags = [ "fortify" "stackprotector" "pic" "strictoverflow" "format" "relro" "bindnow" "zerocallusedregs" "stackclashprotection" "fortify3" "trivialautovarinit" ];
  mkDerivation =
    attrsOrFn:
    let
      attrs = if builtins.isFunction attrsOrFn then lib.fix attrsOrFn else attrsOrFn;
      pname = attrs.pname or null;
      version = attrs.version or "1.0";
      name = attrs.name or "${pname}-${version}";
      pos = builtins.unsafeGetAttrPos (if pname != null then "pname" else "name") attrs;
      meta = (attrs.meta or { }) // {
        position = if pos == null then "<unknown>" else "${pos.file}:${toString pos.line}";
        available = availableOn hostPlatform (attrs.meta or { });
        outputsToInstall = [ "out" ];
      };
      outputs = attrs.outputs or [ "out" ];
      buildInputs = attrs.buildInputs or [ ];
      propagated = map (x: x.drv) (builtins.genericClosure {
        startSet = map (d: { key = d.outPath; drv = d; }) (attrs.propagatedBuildInputs or [ ]);
        operator = i: map (d: { key = d.outPath; drv = d; }) (i.drv.propagatedBuildInputs or [ ]);
      });
      allInputs = buildInputs ++ propagated;
      disabled = attrs.hardeningDisable or [ ];
      defaultBuild = ''
        mkdir -p "$out/bin" "$out/share/${name}"
        printf '#!/bin/sh\necho %s\n' '${name}' > "$out/bin/${if pname == null then name else pname}"
        chmod +x "$out/bin/"*
        printf '%s\n' "$src" > "$out/share/${name}/src"
        for o in $outputs; do [ "$o" = out ] || { eval "d=\$$o"; mkdir -p "$d/share"; echo "$o" > "$d/share/output"; }; done
      '';
      drvAttrs =
        removeAttrs attrs [ "buildCommand" "meta" "passthru" "pname" "version" "propagatedBuildInputs" "hardeningDisable" ]
        // {
          inherit name system outputs;
          src = attrs.src or "";
          stdenv = stdenvDrv;
          buildInputs = allInputs;
          NIX_CFLAGS_COMPILE = builtins.concatStringsSep " " (map (d: "-isystem ${d}/include") allInputs);
          NIX_LDFLAGS = builtins.concatStringsSep " " (map (d: "-L${d}/lib -rpath ${d}/lib") allInputs);
          NIX_HARDENING_ENABLE = builtins.concatStringsSep " " (builtins.filter (f: !(builtins.elem f disabled)) hardeningFlags);
          nixpkgsRevision = builtins.readFile ../revision;
          builder = "/bin/sh";
          args = [ "-c" ("PATH=/usr/bin:/bin\nset -e\n" + (attrs.buildCommand or defaultBuild)) ];
        };
      drv = builtins.seq (checkMeta name meta) (derivation drvAttrs);
      applyOverride =
        f:
        let
          r = if builtins.isFunction f then f attrs else f;
          r' = if builtins.isFunction r then r attrs else r;
        in
        mkDerivation (attrs // r');
    in
    drv
    // (attrs.passthru or { })
    // lib.genAttrs outputs (o: drv.${o})
    // {
      inherit pname version meta outputs;
      all = map (o: drv.${o}) outputs;
      propagatedBuildInputs = attrs.propagatedBuildInputs or [ ];
      src = attrs.src or "";
      overrideAttrs = applyOverride;
    };
in
mkDerivation
