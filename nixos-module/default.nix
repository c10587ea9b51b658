# services.beyla: the Beyla eBPF auto-instrumentation agent as a systemd
# service. See docs/install-nixos.md.
{ config
, lib
, pkgs
, utils
, ...
}:
let
  cfg = config.services.beyla;
  format = pkgs.formats.yaml { };

  # The capabilities the agent needs, and nothing more (why each: the table in
  # docs/running.md). CAP_SYS_ADMIN is among them because the kernel allows
  # uprobes (HTTPS through OpenSSL) to no other capability.
  capabilities = import ./capabilities.nix ++ cfg.extraCapabilities;

  settingsFile = format.generate "beyla-config.yml" cfg.settings;

  # `beyla --check-config` at build time: the file (with the non-secret
  # variables of `environment`) must load, or the system does not build.
  checked =
    file:
    let
      name = if lib.hasSuffix ".toml" (toString file) then "beyla-config.toml" else "beyla-config.yml";
    in
    pkgs.runCommand name
      {
        nativeBuildInputs = [ cfg.package ];
        env = cfg.environment;
        preferLocalBuild = true;
      }
      ''
        cp ${file} ${name}
        beyla --check-config --config ${name} > effective.yml
        cp ${name} $out
      '';

  # A config file given as a Nix path (or a store path) can be checked at build
  # time too; one given as a plain string path outside the store (for example
  # a secret managed elsewhere) is only read when the service starts.
  checkable = file: builtins.isPath file || lib.isStorePath file;

  configFile =
    if cfg.configFile == null then
      (if cfg.checkConfig then checked settingsFile else settingsFile)
    else if cfg.checkConfig && checkable cfg.configFile then
      checked cfg.configFile
    else
      cfg.configFile;

  prometheusPort =
    let
      fromSettings = lib.attrByPath [ "prometheus_export" "port" ] null cfg.settings;
      fromEnv = cfg.environment.BEYLA_PROMETHEUS_PORT or null;
      port = if fromEnv != null then fromEnv else fromSettings;
    in
    if port == null then null else lib.toInt (toString port);
in
{
  options.services.beyla = {
    enable = lib.mkEnableOption "Beyla, the eBPF auto-instrumentation agent that turns the HTTP, gRPC, SQL, Redis and Kafka traffic of unmodified processes into OpenTelemetry traces and metrics";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.beyla;
      defaultText = lib.literalExpression "pkgs.beyla";
      description = ''
        The Beyla package. The flake's `nixosModules.default` sets it to the
        flake's own `packages.<system>.default`; when this file is imported
        directly, `pkgs.beyla` comes from the flake's `overlays.default`.
      '';
    };

    settings = lib.mkOption {
      type = lib.types.submodule { freeformType = format.type; };
      default = { };
      example = import ./examples/settings.nix;
      description = ''
        The agent's configuration, written to a `beyla-config.yml` (YAML):
        the same keys as Beyla's config file (docs/configuration.md):
        `discovery`, `ebpf`, `otel_traces_export`, `otel_metrics_export`,
        `prometheus_export`, `routes`, `log_level`, `trace_printer`,
        `shutdown_timeout`. The rendered file is checked at build time with
        `beyla --check-config` (see {option}`services.beyla.checkConfig`), so
        an unknown key or a bad value fails the build with the agent's own
        error message. Exactly one of `settings` and
        {option}`services.beyla.configFile` must be set. Secrets (OTLP
        headers) belong in {option}`services.beyla.environmentFile`, not here:
        settings end up in the world-readable Nix store.
      '';
    };

    configFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = lib.literalExpression "./beyla-config.yml";
      description = ''
        An existing Beyla config file (`.yml`, `.yaml` or `.toml`), used
        instead of {option}`services.beyla.settings`. A Nix path is copied to
        the store and checked at build time like `settings`; a string path
        outside the store (such as `"/etc/beyla/beyla-config.yml"`) is read
        when the service starts and not checked at build time.
      '';
    };

    checkConfig = lib.mkOption {
      type = lib.types.bool;
      default = true;
      example = false;
      description = ''
        Whether to run `beyla --check-config --config FILE` on the rendered
        configuration at build time (no root and no kernel access needed),
        with the variables of {option}`services.beyla.environment` set.
        Turn it off when the configuration is only complete together with
        {option}`services.beyla.environmentFile`, for example when the
        processes to instrument are selected by `BEYLA_OPEN_PORT` from there
        (the check refuses a configuration that selects nothing).
      '';
    };

    environment = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      default = { };
      example = {
        BEYLA_OPEN_PORT = "8080";
        OTEL_SERVICE_NAME = "my-app";
        OTEL_RESOURCE_ATTRIBUTES = "deployment.environment=prod";
      };
      description = ''
        Non-secret environment variables of the service (`BEYLA_*`,
        `OTEL_*`, see docs/configuration.md). They override the config file,
        as the agent's precedence rules say, and are also set for the
        build-time check. They are stored in the Nix store: put secrets in
        {option}`services.beyla.environmentFile`.
      '';
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/secrets/beyla.env";
      description = ''
        A file of `NAME=value` lines read by systemd when the service starts
        (`EnvironmentFile=`), for secrets that must stay out of the Nix store,
        such as `OTEL_EXPORTER_OTLP_HEADERS=Authorization=Basic%20...`.
        Its variables override {option}`services.beyla.environment` and the
        config file.
      '';
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      example = true;
      description = ''
        Whether to open the Prometheus scrape port in the firewall: the port
        of `settings.prometheus_export.port` (or of
        `environment.BEYLA_PROMETHEUS_PORT`), which must then be set.
      '';
    };

    extraArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [
        "--log-level"
        "DEBUG"
        "--capture-size"
        "2048"
      ];
      description = ''
        Extra command-line arguments of `beyla`, after `--config FILE`.
        Flags override the config file and the environment.
      '';
    };

    extraCapabilities = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "CAP_NET_ADMIN" ];
      description = ''
        Capabilities added to the service's default set (`CAP_BPF`,
        `CAP_PERFMON`, `CAP_SYS_PTRACE`, `CAP_DAC_READ_SEARCH`,
        `CAP_SYS_ADMIN`: why each, in docs/running.md). `CAP_NET_ADMIN` is
        only needed by network-level features that attach traffic-control
        (TC) programs; no feature of this version does.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = (cfg.settings != { }) != (cfg.configFile != null);
        message = "services.beyla: set exactly one of services.beyla.settings and services.beyla.configFile.";
      }
      {
        assertion = cfg.openFirewall -> prometheusPort != null;
        message = "services.beyla.openFirewall needs a Prometheus port: set services.beyla.settings.prometheus_export.port.";
      }
    ];

    networking.firewall.allowedTCPPorts = lib.mkIf (cfg.openFirewall && prometheusPort != null) [
      prometheusPort
    ];

    systemd.services.beyla = {
      description = "Beyla eBPF auto-instrumentation agent";
      wantedBy = [ "multi-user.target" ];
      wants = [
        "network-online.target"
        "sys-kernel-tracing.mount"
        "sys-kernel-debug.mount"
      ];
      after = [
        "network-online.target"
        "sys-kernel-tracing.mount"
        "sys-kernel-debug.mount"
      ];
      restartTriggers = [ configFile ];
      inherit (cfg) environment;

      serviceConfig = {
        ExecStart = utils.escapeSystemdExecArgs (
          [
            (lib.getExe cfg.package)
            "--config"
            "${configFile}"
          ]
          ++ cfg.extraArgs
        );
        # tracefs must be mounted: the agent's own mount would stay inside
        # the service's mount namespace, where /sys is read-only; "+" runs
        # this one command as root, outside the sandbox, in case the host has
        # not mounted it yet.
        ExecStartPre = "+${pkgs.writeShellScript "beyla-mount-tracefs" ''
          ${pkgs.util-linux}/bin/mountpoint -q /sys/kernel/tracing \
            || ${pkgs.util-linux}/bin/mount -t tracefs tracefs /sys/kernel/tracing \
            || true
        ''}";
        EnvironmentFile = lib.mkIf (cfg.environmentFile != null) cfg.environmentFile;
        Restart = "on-failure";
        RestartSec = "5s";

        # Not root: a transient system user, with exactly these capabilities.
        DynamicUser = true;
        AmbientCapabilities = capabilities;
        CapabilityBoundingSet = capabilities;
        NoNewPrivileges = true;

        # BPF maps are charged to RLIMIT_MEMLOCK on kernels before 5.11.
        LimitMEMLOCK = "infinity";

        # The agent reads other processes' /proc entries (exe, fd, net): no
        # hidepid, no ProcSubset=pid, no PrivateUsers (which would make the
        # capabilities useless outside the service's user namespace).
        ProtectProc = "default";
        ProcSubset = "all";
        PrivateUsers = false;

        # /sys stays visible (read-only) so that /sys/kernel/btf/vmlinux,
        # /sys/kernel/tracing and /sys/kernel/debug/tracing can be read.
        ProtectSystem = "strict";
        ProtectHome = "read-only";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        PrivateTmp = true;
        PrivateDevices = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        UMask = "0077";
        # AF_NETLINK: the C library's name resolution may ask the kernel for
        # the host's addresses (getaddrinfo with AI_ADDRCONFIG).
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
          "AF_NETLINK"
        ];
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "bpf"
          "perf_event_open"
        ];
        SystemCallErrorNumber = "EPERM";
      };
    };
  };
}
