# Scenarios of the services.beyla module, written once and run by two
# drivers: module-lib.nix (lib.evalModules with stand-ins for pkgs; nixpkgs
# `lib` alone, any Nix from 2.8) and module-nixos.nix (a whole NixOS system
# of a real nixpkgs tree). nix/eval-check.sh runs both.
#
# `scenarios.<name>` is `{ config; check = r: [ failures ]; }` or, for a value the
# option types must refuse, `{ config; error = "regex"; }` (the driver's
# evaluation must fail with a message matching it). `r` is what the driver
# evaluated:
#   r.assertions  messages of the failed assertions
#   r.service     config.systemd.services.beyla
#   r.ports       config.networking.firewall.allowedTCPPorts
#   r.exe         the agent's executable (lib.getExe of the package)
#   r.settings    the file `settings` renders to: { path; data } (data: what
#                 the YAML holds)
#   r.check       the build-time `beyla --check-config` of a file:
#                 file -> { path; script; env }, or null when not checked
#   r.unit        the rendered beyla.service file (null in the lib driver)
{ lib
, # The agent's capabilities, in the order of agent/src/ebpf/preflight.rs.
  capabilities
,
}:
let
  exampleSettings = import ../../nixos-module/examples/settings.nix;
  exampleYaml = ../../nixos-module/examples/settings.yml;

  # `expect what expected actual`: [ ] or one failure.
  expect =
    what: expected: actual:
    lib.optional (expected != actual) "${what}: expected ${builtins.toJSON expected}, got ${builtins.toJSON actual}";
  contains =
    what: needle: haystack:
    lib.optional (!hasInfix needle haystack) "${what}: ${builtins.toJSON needle} not in ${builtins.toJSON haystack}";
  # Store paths' string context is irrelevant to a text search (and Nix 2.8's
  # builtins.match refuses it).
  hasInfix = needle: haystack: lib.hasInfix (builtins.unsafeDiscardStringContext needle) (builtins.unsafeDiscardStringContext haystack);

  # `"a" "b"` as systemd's Exec lines quote them (JSON strings, `%` and `$`
  # doubled).
  quoted = args: lib.concatMapStringsSep " " (a: lib.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON a)) args;

  execStart = r: configPath: extraArgs: quoted ([ r.exe "--config" configPath ] ++ extraArgs);

  # What every running configuration must have: no failed assertion, the
  # capabilities exactly, and the hardening of docs/install-nixos.md.
  unitBasics =
    r:
    let
      sc = r.service.serviceConfig;
    in
    expect "failed assertions" [ ] r.assertions
    ++ expect "AmbientCapabilities" capabilities sc.AmbientCapabilities
    ++ expect "CapabilityBoundingSet" capabilities sc.CapabilityBoundingSet
    ++ lib.concatLists (
      lib.mapAttrsToList (key: value: expect key value (sc.${key} or null)) {
        DynamicUser = true;
        NoNewPrivileges = true;
        LimitMEMLOCK = "infinity";
        ProtectProc = "default";
        ProcSubset = "all";
        PrivateUsers = false;
        ProtectSystem = "strict";
        ProtectHome = "read-only";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        PrivateTmp = true;
        PrivateDevices = true;
        RestrictNamespaces = true;
        MemoryDenyWriteExecute = true;
        SystemCallFilter = [
          "@system-service"
          "bpf"
          "perf_event_open"
        ];
        Restart = "on-failure";
      }
    )
    ++ contains "ExecStartPre mounts tracefs" "+" (toString sc.ExecStartPre)
    ++ lib.optionals (r.unit != null) (
      lib.concatMap
        (key: unitLines key (map (c: "${key}=${c}") capabilities) r.unit)
        [
          "AmbientCapabilities"
          "CapabilityBoundingSet"
        ]
      ++ unitLines "ExecStart" [ "ExecStart=${sc.ExecStart}" ] r.unit
    );

  # The unit file's `key=` lines are exactly `lines`.
  unitLines =
    key: lines: unit:
    expect "unit file: ${key}= lines" lines (
      lib.filter (lib.hasPrefix "${key}=") (lib.splitString "\n" (builtins.unsafeDiscardStringContext unit))
    );

  # `settings` rendered, checked at build time, and what the unit runs.
  checkedSettings =
    r: data: extraArgs:
    let
      checked = r.check r.settings.path;
    in
    expect "the YAML holds the settings" data r.settings.data
    ++ expect "the settings file is checked at build time" true (checked != null)
    ++ lib.optionals (checked != null) (
      contains "the check copies the rendered settings" "cp ${r.settings.path} beyla-config.yml" checked.script
      ++ contains "the check runs the agent" "beyla --check-config --config beyla-config.yml" checked.script
      ++ expect "ExecStart" (execStart r checked.path extraArgs) r.service.serviceConfig.ExecStart
      ++ expect "restartTriggers" [ checked.path ] (map toString r.service.restartTriggers)
    );

  assertionFailure = message: r: lib.optional (!(lib.elem message r.assertions)) "expected the failed assertion ${builtins.toJSON message}, got ${builtins.toJSON r.assertions}";

  exactlyOne = "services.beyla: set exactly one of services.beyla.settings and services.beyla.configFile.";
  needsPort = "services.beyla.openFirewall needs a Prometheus port: set services.beyla.settings.prometheus_export.port.";

  enabled = extra: { services.beyla = { enable = true; } // extra; };
in
{
  inherit hasInfix;

  scenarios.example-settings = {
    config = enabled { settings = exampleSettings; };
    check =
      r:
      unitBasics r
      ++ checkedSettings r exampleSettings [ ]
      ++ expect "no firewall port unless openFirewall" [ ] r.ports
      ++ expect "no EnvironmentFile" null (r.service.serviceConfig.EnvironmentFile or null);
  };

  scenarios.config-file-as-path = {
    config = enabled { configFile = exampleYaml; };
    check =
      r:
      let
        checked = r.check "${exampleYaml}";
      in
      unitBasics r
      ++ expect "a path is checked at build time" true (checked != null)
      ++ lib.optionals (checked != null) (
        contains "the check copies the file" "cp ${exampleYaml} beyla-config.yml" checked.script
        ++ contains "the check runs the agent" "beyla --check-config --config beyla-config.yml" checked.script
        ++ expect "ExecStart" (execStart r checked.path [ ]) r.service.serviceConfig.ExecStart
      );
  };

  scenarios.config-file-as-string = {
    config = enabled { configFile = "/etc/beyla/beyla-config.yml"; };
    check =
      r:
      unitBasics r
      ++ expect "ExecStart reads the file at start" (execStart r "/etc/beyla/beyla-config.yml" [ ]) r.service.serviceConfig.ExecStart
      ++ expect "restartTriggers" [ "/etc/beyla/beyla-config.yml" ] (map toString r.service.restartTriggers);
  };

  scenarios.check-config-off = {
    config = enabled {
      settings = exampleSettings;
      checkConfig = false;
    };
    check =
      r:
      unitBasics r
      ++ expect "the YAML holds the settings" exampleSettings r.settings.data
      ++ expect "ExecStart uses the rendered file unchecked" (execStart r r.settings.path [ ]) r.service.serviceConfig.ExecStart;
  };

  scenarios.neither-settings-nor-config-file = {
    config = enabled { };
    check = assertionFailure exactlyOne;
  };

  scenarios.both-settings-and-config-file = {
    config = enabled {
      settings = exampleSettings;
      configFile = exampleYaml;
    };
    check = assertionFailure exactlyOne;
  };

  scenarios.firewall-with-settings-port = {
    config = enabled {
      settings = exampleSettings;
      openFirewall = true;
    };
    check = r: unitBasics r ++ expect "allowedTCPPorts" [ 9090 ] r.ports;
  };

  scenarios.firewall-with-environment-port = {
    config = enabled {
      settings = exampleSettings;
      openFirewall = true;
      environment.BEYLA_PROMETHEUS_PORT = "9500";
    };
    check =
      r:
      let
        checked = r.check r.settings.path;
      in
      unitBasics r
      ++ expect "allowedTCPPorts (the variable overrides the file)" [ 9500 ] r.ports
      ++ expect "the unit's environment" "9500" (r.service.environment.BEYLA_PROMETHEUS_PORT or null)
      ++ expect "the build-time check sees the variable" "9500" (checked.env.BEYLA_PROMETHEUS_PORT or null);
  };

  scenarios.firewall-without-port = {
    config = enabled {
      settings = builtins.removeAttrs exampleSettings [ "prometheus_export" ];
      openFirewall = true;
    };
    check = assertionFailure needsPort;
  };

  scenarios.environment-file = {
    config = enabled {
      settings = exampleSettings;
      environmentFile = "/run/secrets/beyla.env";
    };
    check = r: unitBasics r ++ expect "EnvironmentFile" "/run/secrets/beyla.env" r.service.serviceConfig.EnvironmentFile;
  };

  scenarios.extra-args-quoted = {
    config = enabled {
      settings = exampleSettings;
      extraArgs = [
        "--log-level"
        "DEBUG"
        "--service-name=my app"
        "100%"
        "$HOME"
        ''say "hi"''
      ];
    };
    check =
      r:
      unitBasics r
      ++ checkedSettings r exampleSettings [
        "--log-level"
        "DEBUG"
        "--service-name=my app"
        "100%"
        "$HOME"
        ''say "hi"''
      ]
      ++ contains "ExecStart quoting" ''"--service-name=my app" "100%%" "$$HOME" "say \"hi\""'' r.service.serviceConfig.ExecStart;
  };

  scenarios.extra-capabilities = {
    config = enabled {
      settings = exampleSettings;
      extraCapabilities = [ "CAP_NET_ADMIN" ];
    };
    check =
      r:
      expect "AmbientCapabilities" (capabilities ++ [ "CAP_NET_ADMIN" ]) r.service.serviceConfig.AmbientCapabilities
      ++ expect "CapabilityBoundingSet" (capabilities ++ [ "CAP_NET_ADMIN" ]) r.service.serviceConfig.CapabilityBoundingSet;
  };

  scenarios.wrong-type-settings = {
    config = enabled { settings = "log_level: INFO"; };
    error = "services\\.beyla\\.settings.*is not of type";
  };

  scenarios.wrong-type-extra-args = {
    config = enabled {
      settings = exampleSettings;
      extraArgs = "--log-level DEBUG";
    };
    error = "services\\.beyla\\.extraArgs.*is not of type";
  };

  scenarios.wrong-type-open-firewall = {
    config = enabled {
      settings = exampleSettings;
      openFirewall = "yes";
    };
    error = "services\\.beyla\\.openFirewall.*is not of type";
  };

  scenarios.wrong-type-environment = {
    config = enabled {
      settings = exampleSettings;
      environment.BEYLA_OPEN_PORT = 8080;
    };
    error = "services\\.beyla\\.environment\\.BEYLA_OPEN_PORT.*is not of type";
  };

  scenarios.wrong-type-config-file = {
    config = enabled { configFile = 42; };
    error = "services\\.beyla\\.configFile.*is not of type";
  };
}
