# ruff: noqa: E501  (Nix templates keep their own line length)
"""The scale stand-in's NixOS modules: generated text, a dozen and a half options
each with descriptions and examples, and a config section guarded by `enable`."""

from __future__ import annotations

import random

SYLLABLES = [
    "ab", "ar", "ba", "bel", "cor", "da", "del", "en", "fa", "fin", "ga", "gor", "ha", "hel",
    "in", "ja", "ka", "kor", "la", "lin", "ma", "mor", "na", "nel", "or", "pa", "pel", "qu",
    "ra", "ril", "sa", "sel", "ta", "tor", "u", "va", "vel", "wa", "xi", "ya", "zel", "zo",
]  # fmt: skip


def prose(rng: random.Random, subject: str, sentences: tuple[int, int] = (2, 4)) -> str:
    """A paragraph of generated words: NixOS option descriptions run to a few
    hundred characters, and they are most of a module's text."""
    out = []
    for _ in range(rng.randint(*sentences)):
        words = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
                 for _ in range(rng.randint(8, 16))]  # fmt: skip
        out.append(f"{subject.capitalize()} {' '.join(words)}.")
    return " ".join(out)


def opt(rng: random.Random, name: str, body: str, what: str, example: str | None = None) -> str:
    """One option declaration with a description and, for a third of them, an example."""
    desc = prose(rng, what).replace("\\", "").replace('"', "")
    ex = ""
    if example is None and rng.random() < 0.33:
        example = f'lib.literalExpression "{rng.choice(SYLLABLES)}{rng.randint(1, 99)}"'
    if example is not None:
        ex = f" example = {example};"
    return f'    {name} = mkOption {{ {body}{ex} description = "{desc}"; }};\n'


def module_nix(  # noqa: PLR0917
    rng: random.Random, i: int, kind: str, name: str, pkg: str, on: bool, extras: list[str]
) -> str:
    """One NixOS-style module: a dozen and a half options with descriptions and
    examples, and a config section guarded by `enable` (a service's with its unit,
    hardening, user, group, state directory, firewall port and /etc file)."""
    ns = {"service": "services", "program": "programs", "hardware": "hardware"}[kind]
    settings = " ".join(f'k{j} = "{rng.randint(0, 999)}";' for j in range(rng.randint(2, 6)))
    extra = " ".join(f"pkgs.{p}" for p in extras)
    enable = (
        opt(rng, "enable", "type = types.bool; default = true;", f"whether to enable {name}")
        if on
        else f'    enable = mkEnableOption "{name}";\n'
    )
    bare = pkg.strip(chr(34))
    options = (
        enable
        + opt(
            rng,
            "package",
            f'type = types.package; default = pkgs.{pkg}; defaultText = lib.literalExpression "pkgs.{bare}";',
            f"the {name} package",
        )
        + opt(
            rng,
            "extraArgs",
            "type = types.listOf types.str; default = [ ];",
            "extra arguments",
            '[ "--verbose" ]',
        )
        + opt(
            rng,
            "settings",
            f"type = types.attrsOf types.str; default = {{ {settings} }};",
            "settings",
        )
        + opt(
            rng,
            "logLevel",
            'type = types.enum [ "debug" "info" "warn" "error" ]; default = "info";',
            "the log level",
        )
        + opt(
            rng,
            "dataDir",
            f'type = types.str; default = "/var/lib/{name}";',
            f"where {name} keeps its state",
        )
        + opt(rng, "group", f'type = types.str; default = "{name}";', "the group")
        + opt(
            rng,
            "environmentFile",
            "type = types.nullOr types.path; default = null;",
            "a file of environment variables",
        )
        + opt(
            rng,
            "extraPackages",
            f'type = types.listOf types.package; default = [ {extra} ]; defaultText = "{len(extras)} packages";',
            "packages added to the path",
        )
        + opt(
            rng,
            "restartSec",
            f"type = types.ints.unsigned; default = {rng.randint(1, 30)};",
            "seconds between restarts",
        )
        + opt(
            rng,
            "extraEnvironment",
            "type = types.attrsOf types.str; default = { };",
            "extra environment variables",
            '{ LANG = "C"; }',
        )
        + opt(
            rng,
            "timeoutSec",
            f"type = types.ints.unsigned; default = {rng.randint(5, 300)};",
            "the start timeout",
        )
        + opt(rng, "logFile", "type = types.nullOr types.str; default = null;", "a log file")
        + opt(
            rng, "hardening", "type = types.bool; default = true;", "whether to sandbox the service"
        )
    )
    head = f"""# generated: {kind} module {i}
{{ config, lib, pkgs, ... }}:
let
  cfg = config.{ns}.{name};
  inherit (lib) mkOption mkEnableOption mkIf mkMerge types;
in
{{
  options.{ns}.{name} = {{
{options}"""
    if kind == "service":
        port = 1024 + i
        cmd = (
            "${cfg.package}/bin/${cfg.package.pname} --port ${toString cfg.port} "
            '--log ${cfg.logLevel} ${lib.concatStringsSep " " cfg.extraArgs}'
        )
        # Half the units run a start script: one derivation each, as NixOS' unit scripts.
        script = f"      script = ''\n        exec {cmd}\n      '';\n" if i % 2 == 0 else ""
        execline = f'          ExecStart = "{cmd}";\n' if i % 2 else ""
        env = name.replace("-", "_").upper()
        return (
            head
            + opt(rng, "port", f"type = types.port; default = {port};", "the port")
            + opt(rng, "user", f'type = types.str; default = "{name}";', "the user")
            + opt(
                rng,
                "openFirewall",
                "type = types.bool; default = false;",
                "whether to open the port",
            )
            + f"""  }};

  config = mkIf cfg.enable {{
    assertions = [
      {{ assertion = cfg.port != 0 && cfg.user != ""; message = "services.{name}: port and user must be set"; }}
      {{ assertion = cfg.environmentFile == null || cfg.logFile == null || cfg.hardening; message = "services.{name}: a log file needs hardening off"; }}
    ];
    environment.systemPackages = [ cfg.package ] ++ cfg.extraPackages;
    environment.etc."{name}/{name}.conf".text = lib.concatStringsSep "\\n" (lib.mapAttrsToList (k: v: "${{k}} = ${{v}}") cfg.settings);
    users.users."{name}" = {{ isNormalUser = false; home = cfg.dataDir; group = cfg.group; }};
    users.groups."{name}" = {{ }};
    systemd.tmpfiles.rules = [ "d ${{cfg.dataDir}} 0750 ${{cfg.user}} ${{cfg.group}} -" ];
    networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall [ cfg.port ];
    systemd.services."{name}" = {{
      description = "{name} daemon";
      wantedBy = [ "multi-user.target" ];
      unitConfig.After = "network.target";
      environment = cfg.extraEnvironment // {{ {env}_PORT = toString cfg.port; }};
{script}      serviceConfig = mkMerge [
        {{
{execline}          User = cfg.user;
          Group = cfg.group;
          Restart = "on-failure";
          RestartSec = cfg.restartSec;
          TimeoutStartSec = cfg.timeoutSec;
          StateDirectory = "{name}";
        }}
        (mkIf (cfg.environmentFile != null) {{ EnvironmentFile = cfg.environmentFile; }})
        (mkIf cfg.hardening {{
          CapabilityBoundingSet = "";
          LockPersonality = true;
          NoNewPrivileges = true;
          PrivateDevices = true;
          PrivateTmp = true;
          ProtectClock = true;
          ProtectControlGroups = true;
          ProtectHome = true;
          ProtectHostname = true;
          ProtectKernelLogs = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectSystem = "strict";
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = [ "@system-service" "~@privileged" ];
          UMask = "0077";
        }})
      ];
    }};
  }};
}}
"""
        )
    if kind == "program":
        return (
            head
            + opt(rng, "extraConfig", 'type = types.lines; default = "";', "extra configuration")
            + f"""  }};

  config = mkIf cfg.enable {{
    environment.systemPackages = [ cfg.package ] ++ cfg.extraPackages;
    environment.etc."{name}/config".text = cfg.extraConfig + lib.concatStringsSep "\\n" (lib.mapAttrsToList (k: v: "${{k}}=${{v}}") cfg.settings);
    environment.variables = cfg.extraEnvironment;
  }};
}}
"""
        )
    return (
        head
        + opt(
            rng, "level", f"type = types.ints.unsigned; default = {rng.randint(0, 9)};", "the level"
        )
        + f"""  }};

  config = mkIf cfg.enable {{
    boot.kernelParams = [ "{name}.level=${{toString cfg.level}}" ];
    environment.systemPackages = [ cfg.package ] ++ cfg.extraPackages;
  }};
}}
"""
    )
