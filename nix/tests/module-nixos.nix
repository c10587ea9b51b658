# The module scenarios (module-scenarios.nix) in a whole NixOS system of a
# real nixpkgs tree, with the agent package of nix/package.nix: the unit file
# is rendered by NixOS itself and the config files are real derivations.
# Needs Nix 2.18 or newer (what nixpkgs asks for); nothing is built.
#
#   nix-instantiate --eval --strict --json nix/tests/module-nixos.nix \
#     --arg nixpkgs /path/to/nixpkgs --arg capabilities '[ "CAP_BPF" ... ]' \
#     -A results.example-settings          # [ ] when it passes
{ nixpkgs
, capabilities
, system ? "x86_64-linux"
,
}:
let
  lib = import (nixpkgs + "/lib");
  inherit (import ./module-scenarios.nix { inherit lib capabilities; }) scenarios hasInfix;

  pkgs = import nixpkgs {
    inherit system;
    overlays = [ (final: _: { beyla = final.callPackage ../package.nix { }; }) ];
    config.allowAliases = false;
  };

  nixos =
    config:
    import (nixpkgs + "/nixos/lib/eval-config.nix") {
      system = null;
      modules = [
        ../../nixos-module
        config
        {
          nixpkgs.pkgs = pkgs;
          boot.loader.grub.enable = false;
          fileSystems."/" = {
            device = "/dev/vda";
            fsType = "ext4";
          };
          system.stateVersion = lib.trivial.release;
        }
      ];
    };

  evaluate =
    scenario:
    let
      inherit (nixos scenario.config) config;
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
            env = trigger.drvAttrs;
          }
        else
          null;
      unit = config.systemd.units."beyla.service".text;
    };

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
  # The whole system, to instantiate: its failed assertions stop it here.
  toplevel = lib.mapAttrs (_: s: (nixos s.config).config.system.build.toplevel) scenarios;
}
