# The example of services.beyla.settings (shown in the option's
# documentation). scripts/check-packaging.sh evaluates this file to JSON,
# compares it with settings.yml beside it and runs `beyla --check-config` on
# it: the same data the module renders with pkgs.formats.yaml.
{
  log_level = "INFO";
  discovery.services = [
    {
      name = "my-app";
      open_port = 8080;
    }
  ];
  ebpf = {
    wakeup_len = 100;
    track_request_headers = false;
    high_request_volume = false;
  };
  otel_traces_export = {
    endpoint = "http://tempo:4318";
    sampler = {
      name = "parentbased_traceidratio";
      arg = "0.5";
    };
  };
  prometheus_export = {
    port = 9090;
    path = "/metrics";
  };
  routes = {
    patterns = [ "/users/{id}" ];
    ignored_patterns = [ "/health" ];
    ignore_mode = "traces";
  };
}
