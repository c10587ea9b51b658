# services.beyla.settings of the NixOS VM tests (nix/vm-test.nix); also
# checked by scripts/check-packaging.sh with `beyla --check-config`.
{
  log_level = "INFO";
  trace_printer = "json";
  discovery.services = [
    {
      name = "sample-python";
      open_port = 8080;
    }
  ];
  prometheus_export = {
    port = 9400;
    path = "/metrics";
  };
}
