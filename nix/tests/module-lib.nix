# The module scenarios (module-scenarios.nix) evaluated with lib.evalModules
# and nothing of nixpkgs but `lib`: the NixOS options the module sets are
# declared here, and the few packages it names are stand-ins that record how
# they were called. Works with any Nix from 2.8 on, in seconds.
#
#   nix-instantiate --eval --strict --json nix/tests/module-lib.nix \
#     --arg nixpkgs /path/to/nixpkgs --arg capabilities '[ "CAP_BPF" ... ]' \
#     -A results.example-settings          # [ ] when it passes
{ nixpkgs
, capabilities
,
}:
let
  lib = import (nixpkgs + "/lib");
  inherit (import ./module-scenarios.nix { inherit lib capabilities; }) scenarios hasInfix;

  # A stand-in derivation: a store-like path named after its inputs, and the
  # attributes it was made from (`drvAttrs`, as a real derivation has).
  fake =
    name: attrs:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" (name + builtins.toJSON attrs))}-${name}";
      drvAttrs = attrs // { inherit name; };
    }
    // lib.optionalAttrs (attrs ? meta) { inherit (attrs) meta; };

  pkgs = {
    formats = import (nixpkgs + "/pkgs/pkgs-lib/formats.nix") { inherit lib pkgs; };
    callPackage = f: args: f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // args);
    runCommand = name: env: script: fake name (env // { buildCommand = script; });
    writeShellScript = name: text: fake name { inherit text; };
    remarshal = fake "remarshal" { };
    remarshal_0_17 = fake "remarshal" { };
    util-linux = fake "util-linux" { };
    beyla = fake "beyla-0.1.0" { meta.mainProgram = "beyla"; };
  };

  # The NixOS options that services.beyla defines values of.
  nixosOptions =
    { lib, ... }:
    {
      options = {
        assertions = lib.mkOption {
          type = lib.types.listOf lib.types.unspecified;
          default = [ ];
        };
        networking.firewall.allowedTCPPorts = lib.mkOption {
          type = lib.types.listOf lib.types.port;
          default = [ ];
        };
        systemd.services = lib.mkOption {
          type = lib.types.attrsOf (
            lib.types.submodule {
              freeformType = lib.types.attrsOf lib.types.anything;
              options.serviceConfig = lib.mkOption {
                type = lib.types.attrsOf lib.types.anything;
                default = { };
              };
            }
          );
          default = { };
        };
      };
    };

  evaluate =
    scenario:
    let
      inherit
        (lib.evalModules {
          modules = [
            ../../nixos-module
            nixosOptions
            scenario.config
          ];
          specialArgs = {
            inherit pkgs;
            utils = import (nixpkgs + "/nixos/lib/utils.nix") {
              inherit lib pkgs;
              config = { };
            };
          };
        })
        config
        ;
      service = config.systemd.services.beyla;
      settingsFile = (pkgs.formats.yaml { }).generate "beyla-config.yml" config.services.beyla.settings;
      trigger = lib.head service.restartTriggers;
    in
    {
      assertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
      inherit service;
      ports = config.networking.firewall.allowedTCPPorts;
      exe = lib.getExe config.services.beyla.package;
      settings = {
        path = settingsFile.outPath;
        data = settingsFile.drvAttrs.value;
      };
      check =
        file:
        if lib.isDerivation trigger && hasInfix "cp ${file} " trigger.drvAttrs.buildCommand then
          {
            path = trigger.outPath;
            script = trigger.drvAttrs.buildCommand;
            env = trigger.drvAttrs.env;
          }
        else
          null;
      unit = null;
    };

  # What an error scenario must fail on: everything the unit is made of.
  force =
    r:
    builtins.deepSeq [
      r.assertions
      r.ports
      r.service.serviceConfig.ExecStart
      r.service.environment
    ] "evaluated without error";
in
{
  results = lib.mapAttrs (_: s: if s ? error then force (evaluate s) else s.check (evaluate s)) scenarios;
  errors = lib.mapAttrs (_: s: s.error or null) scenarios;
}
