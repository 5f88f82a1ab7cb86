"""Switch scenarios written from upstream switch-to-configuration-ng (nixpkgs
pkgs/by-name/sw/switch-to-configuration-ng/src/main.rs) and nixos/tests/switch-test.nix.
Each gives both unit trees, the snapshot, optional fstabs and list files, and the exact
expected lists (and lines)."""

from __future__ import annotations

from dataclasses import dataclass, field

MASK = object()  # a symlink to /dev/null

UnitFiles = dict[str, object]  # name (may be "x.service.d/overrides.conf") -> text or MASK


def svc(exec_start: str = "/bin/true", service: str = "", unit: str = "", desc: str = "S") -> str:
    """A service as NixOS renders one (Install added to show it is ignored)."""
    return (
        f'[Unit]\nDescription={desc}\n{unit}\n[Service]\nEnvironment="PATH=/nix/store/p/bin"\n'
        f"{service}\nExecStart={exec_start}\n\n[Install]\nWantedBy=multi-user.target\n"
    )


def target(unit: str = "") -> str:
    return f"[Unit]\nDescription=T\n{unit}\n"


def sock(listen: str = "/run/s.sock") -> str:
    return f"[Unit]\nDescription=sock\n[Socket]\nListenStream={listen}\n"


@dataclass
class Scenario:
    name: str
    old: UnitFiles
    new: UnitFiles
    active: dict[str, str] | list[str]
    action: str = "switch"
    old_fstab: str = ""
    new_fstab: str = ""
    lists: dict[str, list[str]] = field(default_factory=dict)  # runtime nixos/<name>
    fragments: dict[str, str] = field(default_factory=dict)
    stop: list[str] = field(default_factory=list)
    start: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)
    reload: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    filtered: list[str] = field(default_factory=list)
    silent_skip: list[str] = field(default_factory=list)
    swapoff: list[str] = field(default_factory=list)
    lines: list[str] | None = None
    system_conf: tuple[str, str] | None = None  # old, new contents of etc/systemd/system.conf

    def __post_init__(self) -> None:
        # switch and test print SYSINIT on every run, after activation (and the WARN
        # and re-exec lines), before the reload, restart and start lines.
        if self.lines is not None and self.action != "dry-activate":
            after = [n for n, line in enumerate(self.lines) if line in AFTER_ACTIVATION]
            self.lines = [*self.lines]
            self.lines.insert(after[-1] + 1, SYSINIT)


A = "activating the configuration..."
SYSINIT = "restarting sysinit-reactivation.target"
WARN = (
    "WARN: restarting or reloading systemd units from the activation script is deprecated "
    "and will be removed in NixOS 26.11."
)
AFTER_ACTIVATION = (A, WARN, "restarting systemd...")
FSTAB_BASE = "/dev/vda1 / ext4 defaults 0 1\n"

SCENARIOS: list[Scenario] = [
    # --- services: the comparison (compare_units) ---------------------------------------------
    Scenario(
        "unchanged service", {"a.service": svc()}, {"a.service": svc()}, ["a.service"], lines=[A]
    ),
    Scenario(
        "description only",
        {"a.service": svc(desc="x")},
        {"a.service": svc(desc="y")},
        ["a.service"],
        lines=[A],
    ),
    Scenario(
        "install section only",
        {"a.service": svc()},
        {"a.service": svc().replace("WantedBy=multi-user.target", "WantedBy=default.target")},
        ["a.service"],
        lines=[A],
    ),
    Scenario(
        "changed service stop-starts",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b")},
        ["a.service"],
        stop=["a.service"],
        start=["a.service"],
        lines=[
            "stopping the following units: a.service",
            A,
            "starting the following units: a.service",
        ],
    ),
    Scenario(
        "stopIfChanged false restarts",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b", "X-StopIfChanged=false")},
        ["a.service"],
        restart=["a.service"],
        lines=[A, "restarting the following units: a.service"],
    ),
    Scenario(
        "restartIfChanged false skips",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b", "X-RestartIfChanged=false")},
        ["a.service"],
        skip=["a.service"],
        lines=["NOT restarting the following changed units: a.service", A],
    ),
    Scenario(
        "reloadIfChanged reloads",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b", "X-ReloadIfChanged=true")},
        ["a.service"],
        reload=["a.service"],
        lines=[A, "reloading the following units: a.service"],
    ),
    Scenario(
        "reloadIfChanged wins over restartIfChanged false",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b", "X-ReloadIfChanged=true\nX-RestartIfChanged=false")},
        ["a.service"],
        reload=["a.service"],
    ),
    Scenario(
        "restartIfChanged false and stopIfChanged false skip",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b", "X-RestartIfChanged=false\nX-StopIfChanged=false")},
        ["a.service"],
        skip=["a.service"],
    ),
    Scenario(
        "RefuseManualStop skips",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b", unit="RefuseManualStop=yes")},
        ["a.service"],
        skip=["a.service"],
    ),
    Scenario(
        "X-OnlyManualStart skips",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b", unit="X-OnlyManualStart=true")},
        ["a.service"],
        skip=["a.service"],
    ),
    Scenario(
        "reload trigger added",
        {"a.service": svc()},
        {"a.service": svc(unit="X-Reload-Triggers=/nix/store/t1")},
        ["a.service"],
        reload=["a.service"],
    ),
    Scenario(
        "reload trigger changed",
        {"a.service": svc(unit="X-Reload-Triggers=/nix/store/t1")},
        {"a.service": svc(unit="X-Reload-Triggers=/nix/store/t2")},
        ["a.service"],
        reload=["a.service"],
    ),
    Scenario(
        "reload trigger removed is equal",
        {"a.service": svc(unit="X-Reload-Triggers=/nix/store/t1")},
        {"a.service": svc()},
        ["a.service"],
        lines=[A],
    ),
    Scenario(
        "reload trigger and ExecStart changed",
        {"a.service": svc("/bin/a", unit="X-Reload-Triggers=/t1")},
        {"a.service": svc("/bin/b", unit="X-Reload-Triggers=/t2")},
        ["a.service"],
        stop=["a.service"],
        start=["a.service"],
    ),
    Scenario(
        "restart trigger changed",
        {"a.service": svc(unit="X-Restart-Triggers=/nix/store/r1")},
        {"a.service": svc(unit="X-Restart-Triggers=/nix/store/r2")},
        ["a.service"],
        stop=["a.service"],
        start=["a.service"],
    ),
    Scenario(
        "new section restarts",
        {"a.service": svc()},
        {"a.service": svc() + "[X-Foo]\nBar=1\n"},
        ["a.service"],
        stop=["a.service"],
        start=["a.service"],
    ),
    Scenario(
        "removed section restarts",
        {"a.service": svc() + "[X-Foo]\nBar=1\n"},
        {"a.service": svc()},
        ["a.service"],
        stop=["a.service"],
        start=["a.service"],
    ),
    Scenario(
        "renamed section restarts",
        {"a.service": svc() + "[X-Foo]\nBar=1\n"},
        {"a.service": svc() + "[X-Baz]\nBar=1\n"},
        ["a.service"],
        stop=["a.service"],
        start=["a.service"],
    ),
    Scenario(
        "ExecReload added alone reloads",
        {"a.service": svc()},
        {"a.service": svc(service="ExecReload=/bin/kill -HUP $MAINPID")},
        ["a.service"],
        reload=["a.service"],
    ),
    Scenario(
        "ExecReload changed alone reloads",
        {"a.service": svc(service="ExecReload=/bin/r1")},
        {"a.service": svc(service="ExecReload=/bin/r2")},
        ["a.service"],
        reload=["a.service"],
    ),
    Scenario(
        "ExecReload removed alone is equal",
        {"a.service": svc(service="ExecReload=/bin/r1")},
        {"a.service": svc()},
        ["a.service"],
        lines=[A],
    ),
    Scenario(
        "Service section with only ExecReload added",
        {"a.service": "[Unit]\nDescription=x\n"},
        {"a.service": "[Unit]\nDescription=x\n[Service]\nExecReload=/bin/r\n"},
        ["a.service"],
        reload=["a.service"],
    ),
    Scenario(
        "booleans are case-sensitive",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b", "X-ReloadIfChanged=True")},
        ["a.service"],
        stop=["a.service"],
        start=["a.service"],
    ),
    Scenario(
        "flag in the wrong section is not seen",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b", unit="X-RestartIfChanged=false")},
        ["a.service"],
        stop=["a.service"],
        start=["a.service"],
    ),
    Scenario(
        "comment lines inside a continuation are invisible",
        {"a.service": "[Service]\nExecStart=/bin/true \\\n# one\n  blah\n"},
        {"a.service": "[Service]\nExecStart=/bin/true \\\n# two\n  blah\n"},
        ["a.service"],
        lines=[A],
    ),
    Scenario(
        "inline comment change is invisible",
        {"a.service": "[Service]\nExecStart=/bin/sh -c a ; b\n"},
        {"a.service": "[Service]\nExecStart=/bin/sh -c a ; c\n"},
        ["a.service"],
        lines=[A],
    ),
    Scenario(
        "quotes are stripped",
        {"a.service": '[Service]\nEnvironment="A=1"\n'},
        {"a.service": "[Service]\nEnvironment=A=1\n"},
        ["a.service"],
        lines=[A],
    ),
    Scenario(
        "empty assignment in a drop-in clears",
        {"a.service": svc(service="ExecStartPre=/bin/x")},
        {
            "a.service": svc(service="ExecStartPre=/bin/x"),
            "a.service.d/overrides.conf": "[Service]\nExecStartPre=\n",
        },
        ["a.service"],
        stop=["a.service"],
        start=["a.service"],
    ),
    Scenario(
        "drop-in change is a change",
        {"a.service": svc(), "a.service.d/overrides.conf": "[Service]\nNice=1\n"},
        {"a.service": svc(), "a.service.d/overrides.conf": "[Service]\nNice=2\n"},
        ["a.service"],
        stop=["a.service"],
        start=["a.service"],
    ),
    # --- which units are examined (collect_unit_changes) --------------------------------------
    Scenario(
        "changed inactive unit is ignored",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b")},
        {"a.service": "inactive"},
        lines=[A],
    ),
    Scenario(
        "changed failed unit is ignored",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b")},
        {"a.service": "failed"},
        lines=[A],
    ),
    Scenario(
        "reloading counts as not active",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b")},
        {"a.service": "reloading"},
        lines=[A],
    ),
    Scenario(
        "activating counts as active",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b")},
        {"a.service": "activating"},
        stop=["a.service"],
        start=["a.service"],
    ),
    Scenario("new unit gets no action", {}, {"n.service": svc()}, [], lines=[A]),
    Scenario(
        "generator unit is never touched",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b")},
        ["a.service"],
        fragments={"a.service": "/run/systemd/generator/a.service"},
        lines=[A],
    ),
    Scenario(
        "removed unit stops",
        {"a.service": svc()},
        {},
        ["a.service"],
        stop=["a.service"],
        lines=["stopping the following units: a.service", A],
    ),
    Scenario(
        "removed unit with X-StopOnRemoval=false keeps running",
        {"a.service": svc(unit="X-StopOnRemoval=false")},
        {},
        ["a.service"],
        lines=[A],
    ),
    Scenario(
        "masked unit stops",
        {"a.service": svc()},
        {"a.service": MASK},
        ["a.service"],
        stop=["a.service"],
    ),
    Scenario(
        "removed failed unit is not stopped",
        {"a.service": svc()},
        {},
        {"a.service": "failed"},
        lines=[A],
    ),
    # --- sockets (handle_modified_unit) -------------------------------------------------------
    Scenario(
        "changed socket does nothing",
        {"s.socket": sock("/a")},
        {"s.socket": sock("/b")},
        ["s.socket"],
        lines=[A],
    ),
    Scenario(
        "socket-activated service stop-starts with its socket",
        {"socket-activated.service": svc("/bin/a"), "socket-activated.socket": sock()},
        {"socket-activated.service": svc("/bin/b"), "socket-activated.socket": sock()},
        ["socket-activated.service", "socket-activated.socket"],
        stop=["socket-activated.service", "socket-activated.socket"],
        start=["socket-activated.socket"],
        lines=[
            "stopping the following units: socket-activated.service, socket-activated.socket",
            A,
            "starting the following units: socket-activated.socket",
        ],
    ),
    Scenario(
        "socket-activated service with stopIfChanged false restarts",
        {"socket-activated.service": svc("/bin/a"), "socket-activated.socket": sock()},
        {
            "socket-activated.service": svc("/bin/b", "X-StopIfChanged=false"),
            "socket-activated.socket": sock(),
        },
        ["socket-activated.service", "socket-activated.socket"],
        restart=["socket-activated.service"],
        lines=[A, "restarting the following units: socket-activated.service"],
    ),
    Scenario(
        "explicit Sockets= are stopped and started",
        {
            "d.service": svc("/bin/a", "Sockets=d-one.socket d-two.socket"),
            "d-one.socket": sock(),
            "d-two.socket": sock(),
        },
        {
            "d.service": svc("/bin/b", "Sockets=d-one.socket d-two.socket"),
            "d-one.socket": sock(),
            "d-two.socket": sock(),
        },
        ["d.service", "d-one.socket", "d-two.socket"],
        stop=["d-one.socket", "d-two.socket", "d.service"],
        start=["d-one.socket", "d-two.socket"],
    ),
    Scenario(
        "transition to socket activation",
        {"t.service": svc("/bin/a")},
        {"t.service": svc("/bin/b"), "t.socket": sock()},
        ["t.service"],
        stop=["t.service"],
    ),
    Scenario(
        "X-NotSocketActivated starts the service too",
        {"u.service": svc("/bin/a"), "u.socket": sock()},
        {"u.service": svc("/bin/b", "X-NotSocketActivated=true"), "u.socket": sock()},
        ["u.service", "u.socket"],
        stop=["u.service", "u.socket"],
        start=["u.service", "u.socket"],
    ),
    Scenario(
        "failed socket still counts as in the snapshot",
        {"f.service": svc("/bin/a"), "f.socket": sock()},
        {"f.service": svc("/bin/b"), "f.socket": sock()},
        {"f.service": "active", "f.socket": "failed"},
        stop=["f.service", "f.socket"],
        start=["f.socket"],
    ),
    # --- templates (TEMPLATE_UNIT_RE) ---------------------------------------------------------
    Scenario(
        "template instance follows its template",
        {"foo@.service": svc("/bin/a")},
        {"foo@.service": svc("/bin/b")},
        ["foo@bar.service"],
        stop=["foo@bar.service"],
        start=["foo@bar.service"],
    ),
    Scenario(
        "template instance uses foo.socket",
        {"foo@.service": svc("/bin/a"), "foo.socket": sock()},
        {"foo@.service": svc("/bin/b"), "foo.socket": sock()},
        ["foo@bar.service", "foo.socket"],
        stop=["foo.socket", "foo@bar.service"],
        start=["foo.socket"],
    ),
    Scenario(
        "instance drop-in change",
        {"foo@.service": svc(), "foo@bar.service.d/overrides.conf": "[Service]\nNice=1\n"},
        {"foo@.service": svc(), "foo@bar.service.d/overrides.conf": "[Service]\nNice=5\n"},
        ["foo@bar.service"],
        stop=["foo@bar.service"],
        start=["foo@bar.service"],
    ),
    Scenario(
        "instance drop-ins removed means removed",
        {"foo@.service": svc(), "foo@bar.service.d/overrides.conf": "[Service]\nNice=1\n"},
        {"foo@.service": svc()},
        ["foo@bar.service"],
        stop=["foo@bar.service"],
    ),
    Scenario(
        "unchanged instance with a file of its own",
        {"foo@x.service": svc()},
        {"foo@x.service": svc()},
        ["foo@x.service"],
        lines=[A],
    ),
    # --- targets (collect_unit_changes) -------------------------------------------------------
    Scenario(
        "active target is started, hidden",
        {"multi-user.target": target()},
        {"multi-user.target": target()},
        ["multi-user.target"],
        filtered=["multi-user.target"],
        lines=[A],
    ),
    Scenario(
        "X-StopOnReconfiguration stops and starts, hidden",
        {"local-fs.target": target("X-StopOnReconfiguration=true")},
        {"local-fs.target": target("X-StopOnReconfiguration=true")},
        ["local-fs.target"],
        filtered=["local-fs.target"],
        lines=[A],
    ),
    Scenario(
        "RefuseManualStart target is left alone",
        {"r.target": target("RefuseManualStart=yes")},
        {"r.target": target("RefuseManualStart=yes")},
        ["r.target"],
        lines=[A],
    ),
    Scenario(
        "X-OnlyManualStart target is left alone",
        {"o.target": target("X-OnlyManualStart=true")},
        {"o.target": target("X-OnlyManualStart=true")},
        ["o.target"],
        lines=[A],
    ),
    Scenario(
        "sleep targets are never started",
        {"suspend.target": target()},
        {"suspend.target": target()},
        ["suspend.target"],
        lines=[A],
    ),
    Scenario(
        "modified target is not compared",
        {"x.target": target("Wants=a.service")},
        {"x.target": target("Wants=b.service")},
        ["x.target"],
        filtered=["x.target"],
        lines=[A],
    ),
    Scenario(
        "removed target is stopped and printed",
        {"x.target": target()},
        {},
        ["x.target"],
        stop=["x.target"],
        lines=["stopping the following units: x.target", A],
    ),
    # --- other unit types (handle_modified_unit) ----------------------------------------------
    Scenario(
        "changed path unit does nothing",
        {"p.path": "[Path]\nPathExists=/a\n"},
        {"p.path": "[Path]\nPathExists=/b\n"},
        ["p.path"],
        lines=[A],
    ),
    Scenario(
        "changed slice does nothing",
        {"s.slice": "[Slice]\nCPUQuota=10%\n"},
        {"s.slice": "[Slice]\nCPUQuota=20%\n"},
        ["s.slice"],
        lines=[A],
    ),
    Scenario(
        "changed timer restarts",
        {"t.timer": "[Timer]\nOnCalendar=daily\n"},
        {"t.timer": "[Timer]\nOnCalendar=hourly\n"},
        ["t.timer"],
        restart=["t.timer"],
    ),
    Scenario(
        "mount unit Options change reloads",
        {"m.mount": "[Mount]\nWhat=/dev/a\nWhere=/m\nOptions=ro\n"},
        {"m.mount": "[Mount]\nWhat=/dev/a\nWhere=/m\nOptions=rw\n"},
        ["m.mount"],
        reload=["m.mount"],
    ),
    Scenario(
        "mount unit What change restarts",
        {"m.mount": "[Mount]\nWhat=/dev/a\nWhere=/m\n"},
        {"m.mount": "[Mount]\nWhat=/dev/b\nWhere=/m\n"},
        ["m.mount"],
        restart=["m.mount"],
    ),
    Scenario(
        "mount unit Options added restarts",
        {"m.mount": "[Mount]\nWhat=/dev/a\nWhere=/m\n"},
        {"m.mount": "[Mount]\nWhat=/dev/a\nWhere=/m\nOptions=ro\n"},
        ["m.mount"],
        restart=["m.mount"],
    ),
    Scenario(
        "root mount unit change reloads",
        {"-.mount": "[Mount]\nWhat=/dev/a\nWhere=/\n"},
        {"-.mount": "[Mount]\nWhat=/dev/b\nWhere=/\n"},
        ["-.mount"],
        reload=["-.mount"],
    ),
    # --- fstab and swaps (parse_fstab) --------------------------------------------------------
    Scenario(
        "fstab mount removed",
        {},
        {},
        [],
        old_fstab=FSTAB_BASE + "/dev/b /test ext4 defaults\n",
        new_fstab=FSTAB_BASE,
        stop=["test.mount"],
    ),
    Scenario(
        "fstab automount removed",
        {},
        {},
        [],
        old_fstab=FSTAB_BASE + "/dev/b /test ext4 x-systemd.automount,noauto\n",
        new_fstab=FSTAB_BASE,
        stop=["test.automount"],
    ),
    Scenario(
        "fstab options changed remount",
        {},
        {},
        ["test.mount"],
        old_fstab="/dev/b /test ext4 ro\n",
        new_fstab="/dev/b /test ext4 rw\n",
        fragments={"test.mount": "/run/systemd/generator/test.mount"},
        reload=["test.mount"],
        lines=[A, "reloading the following units: test.mount"],
    ),
    Scenario(
        "fstab device changed restarts",
        {},
        {},
        [],
        old_fstab="/dev/b /test ext4 ro\n",
        new_fstab="/dev/c /test ext4 ro\n",
        restart=["test.mount"],
    ),
    Scenario(
        "root device changed, same options: skipped",
        {},
        {},
        [],
        old_fstab="/dev/a / ext4 defaults\n",
        new_fstab="/dev/b / ext4 defaults\n",
        skip=["-.mount"],
        lines=["NOT restarting the following changed units: -.mount", A],
    ),
    Scenario(
        "/nix type changed, options changed: reloaded",
        {},
        {},
        ["nix.mount"],
        old_fstab="/dev/a /nix ext4 ro\n",
        new_fstab="/dev/a /nix xfs rw\n",
        reload=["nix.mount"],
    ),
    Scenario(
        "fstab mount point escaping",
        {},
        {},
        [],
        old_fstab="/dev/b /a-b/c ext4 defaults\n",
        stop=["a\\x2db-c.mount"],
    ),
    Scenario(
        "fstab lines with # are skipped",
        {},
        {},
        [],
        old_fstab="/dev/b /test ext4 defaults # note\n",
    ),
    Scenario(
        "swap removed",
        {},
        {},
        [],
        old_fstab="/dev/sw none swap sw\n",
        swapoff=["/dev/sw"],
        lines=["stopping swap device: /dev/sw", A],
    ),
    Scenario(
        "swap removed, dry-activate",
        {},
        {},
        [],
        action="dry-activate",
        old_fstab="/dev/sw none swap sw\n",
        swapoff=["/dev/sw"],
        lines=["would stop swap device: /dev/sw", "would activate the configuration..."],
    ),
    # --- list files (record_unit, activation lists) -------------------------------------------
    Scenario(
        "leftover start-list",
        {},
        {},
        [],
        lists={"start-list": ["dbus-broker.service"]},
        start=["dbus-broker.service"],
        lines=[A, "starting the following units: dbus-broker.service"],
    ),
    Scenario(
        "leftover restart-list beats a reload-class change",
        {"a.service": svc(unit="X-Reload-Triggers=/t1")},
        {"a.service": svc(unit="X-Reload-Triggers=/t2")},
        ["a.service"],
        lists={"restart-list": ["a.service"]},
        restart=["a.service"],
    ),
    Scenario(
        "leftover reload-list",
        {"a.service": svc()},
        {"a.service": svc()},
        ["a.service"],
        lists={"reload-list": ["a.service"]},
        reload=["a.service"],
    ),
    Scenario(
        "activation restart of an inactive unit starts it",
        {"a.service": svc()},
        {"a.service": svc()},
        [],
        lists={"activation-restart-list": ["a.service"]},
        start=["a.service"],
        lines=[A, WARN, "starting the following units: a.service"],
    ),
    Scenario(
        "activation restart of an active unit restarts it",
        {"a.service": svc()},
        {"a.service": svc()},
        ["a.service"],
        lists={"activation-restart-list": ["a.service"]},
        restart=["a.service"],
        lines=[A, WARN, "restarting the following units: a.service"],
    ),
    Scenario(
        "activation restart honours restartIfChanged=false silently",
        {"a.service": svc(service="X-RestartIfChanged=false")},
        {"a.service": svc(service="X-RestartIfChanged=false")},
        ["a.service"],
        lists={"activation-restart-list": ["a.service"]},
        silent_skip=["a.service"],
        lines=[A, WARN],
    ),
    Scenario(
        "activation restart of a reloadIfChanged unit reloads",
        {"a.service": svc(service="X-ReloadIfChanged=true")},
        {"a.service": svc(service="X-ReloadIfChanged=true")},
        ["a.service"],
        lists={"activation-restart-list": ["a.service"]},
        reload=["a.service"],
    ),
    Scenario(
        "activation restart of a socket-activated service restarts both",
        {"sa.service": svc(), "sa.socket": sock()},
        {"sa.service": svc(), "sa.socket": sock()},
        ["sa.service", "sa.socket"],
        lists={"activation-restart-list": ["sa.service"]},
        restart=["sa.service", "sa.socket"],
    ),
    Scenario(
        "reload triggers and restart: restart wins",
        {"reload-triggers-and-restart.service": svc(unit="X-Reload-Triggers=/t1")},
        {"reload-triggers-and-restart.service": svc(unit="X-Reload-Triggers=/t2")},
        ["reload-triggers-and-restart.service"],
        lists={"activation-restart-list": ["reload-triggers-and-restart.service"]},
        restart=["reload-triggers-and-restart.service"],
    ),
    Scenario(
        "activation reload of active and inactive units",
        {"a.service": svc(), "b.service": svc()},
        {"a.service": svc(), "b.service": svc()},
        ["a.service"],
        lists={"activation-reload-list": ["a.service", "b.service"]},
        reload=["a.service"],
    ),
    Scenario(
        "dry-activate reads the dry lists and says would",
        {"a.service": svc("/bin/a"), "b.service": svc()},
        {"a.service": svc("/bin/b"), "b.service": svc()},
        ["a.service", "b.service"],
        action="dry-activate",
        lists={
            "dry-activation-restart-list": ["b.service"],
            "activation-restart-list": ["a.service"],
        },
        stop=["a.service"],
        start=["a.service"],
        restart=["b.service"],
        lines=[
            "would stop the following units: a.service",
            "would activate the configuration...",
            WARN,
            "would restart the following units: b.service",
            "would start the following units: a.service",
        ],
    ),
    Scenario(
        "dry-activate skip wording",
        {"a.service": svc("/bin/a")},
        {"a.service": svc("/bin/b", "X-RestartIfChanged=false")},
        ["a.service"],
        action="dry-activate",
        skip=["a.service"],
        lines=[
            "would NOT stop the following changed units: a.service",
            "would activate the configuration...",
        ],
    ),
    # --- systemd re-exec, reload re-check, sorting --------------------------------------------
    Scenario(
        "system.conf change re-executes systemd",
        {},
        {},
        [],
        system_conf=("[Manager]\nA=1\n", "[Manager]\nA=2\n"),
        lines=[A, "restarting systemd..."],
    ),
    Scenario(
        "reload of a unit whose requirement was stopped becomes a start",
        {
            "required-service.service": svc("/bin/a"),
            "test-service.service": svc(
                unit="Requires=required-service.service\nX-Reload-Triggers=/t1"
            ),
        },
        {
            "required-service.service": svc("/bin/b"),
            "test-service.service": svc(
                unit="Requires=required-service.service\nX-Reload-Triggers=/t2"
            ),
        },
        ["required-service.service", "test-service.service"],
        stop=["required-service.service"],
        start=["required-service.service", "test-service.service"],
        lines=[
            "stopping the following units: required-service.service",
            A,
            "starting the following units: required-service.service, test-service.service",
        ],
    ),
    Scenario(
        "the same under dry-activate keeps the reload",
        {
            "required-service.service": svc("/bin/a"),
            "test-service.service": svc(
                unit="Requires=required-service.service\nX-Reload-Triggers=/t1"
            ),
        },
        {
            "required-service.service": svc("/bin/b"),
            "test-service.service": svc(
                unit="Requires=required-service.service\nX-Reload-Triggers=/t2"
            ),
        },
        ["required-service.service", "test-service.service"],
        action="dry-activate",
        stop=["required-service.service"],
        start=["required-service.service"],
        reload=["test-service.service"],
    ),
    Scenario(
        "lists sort case-insensitively",
        {n: svc("/bin/a") for n in ("Zeta.service", "avahi.service", "NetworkManager.service")},
        {
            n: svc("/bin/b", "X-StopIfChanged=false")
            for n in ("Zeta.service", "avahi.service", "NetworkManager.service")
        },
        ["Zeta.service", "avahi.service", "NetworkManager.service"],
        restart=["avahi.service", "NetworkManager.service", "Zeta.service"],
        lines=[
            A,
            "restarting the following units: avahi.service, NetworkManager.service, Zeta.service",
        ],
    ),
    Scenario(
        "dash sorts before dot",
        {
            n: svc("/bin/a")
            for n in ("reload-triggers.service", "reload-triggers-and-restart.service")
        },
        {
            n: svc("/bin/b", "X-ReloadIfChanged=true")
            for n in ("reload-triggers.service", "reload-triggers-and-restart.service")
        },
        ["reload-triggers.service", "reload-triggers-and-restart.service"],
        reload=["reload-triggers-and-restart.service", "reload-triggers.service"],
    ),
    Scenario(
        "dbus-broker reloads on a trigger change",
        {
            "dbus-broker.service": svc(
                service="X-ReloadIfChanged=true", unit="X-Restart-Triggers=/nix/store/c1"
            )
        },
        {
            "dbus-broker.service": svc(
                service="X-ReloadIfChanged=true", unit="X-Restart-Triggers=/nix/store/c2"
            )
        },
        ["dbus-broker.service"],
        reload=["dbus-broker.service"],
    ),
    Scenario(
        "a mixed switch",
        {
            "a.service": svc("/bin/a"),
            "b.service": svc("/bin/a"),
            "gone.service": svc(),
            "multi-user.target": target(),
            "sshd.service": svc("/bin/sshd", "X-StopIfChanged=false"),
        },
        {
            "a.service": svc("/bin/b"),
            "b.service": svc("/bin/b", "X-RestartIfChanged=false"),
            "multi-user.target": target(),
            "sshd.service": svc("/bin/sshd2", "X-StopIfChanged=false"),
            "new.service": svc(),
        },
        ["a.service", "b.service", "gone.service", "multi-user.target", "sshd.service"],
        stop=["a.service", "gone.service"],
        start=["a.service"],
        restart=["sshd.service"],
        skip=["b.service"],
        filtered=["multi-user.target"],
        lines=[
            "stopping the following units: a.service, gone.service",
            "NOT restarting the following changed units: b.service",
            A,
            "restarting the following units: sshd.service",
            "starting the following units: a.service",
        ],
    ),
]
