# NixOS VM test: boots a VM on one kernel of the matrix with services.beyla
# enabled next to the Python sample app (vm-tests/apps/python/server.py), and
# checks that requests become spans (BEYLA_TRACE_PRINTER=json, read back from
# the journal) and Prometheus metrics (curl on the scrape port).
#
# Needs a Linux machine with Nix, network for the first fetch, and KVM
# (system feature "kvm"); see docs/install-nixos.md.
{ pkgs
, module
, # A name in pkgs.linuxKernel.packages or .packageAliases: "linux_6_1".
  kernel
,
}:
pkgs.testers.runNixOSTest {
  name = "beyla-" + kernel;

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ module ];

      boot.kernelPackages = (pkgs.linuxKernel.packages // pkgs.linuxKernel.packageAliases).${kernel};
      virtualisation.memorySize = 2048;
      virtualisation.cores = 2;
      environment.systemPackages = [
        pkgs.curl
        pkgs.libcap
      ];

      # The sample app runs as its own unprivileged user: the agent must see it
      # through /proc and the kernel, not because they share a uid.
      systemd.services.sample-app = {
        description = "Python sample HTTP/1.1 service";
        wantedBy = [ "multi-user.target" ];
        environment.PORT = "8080";
        serviceConfig = {
          ExecStart = "${pkgs.python3}/bin/python3 ${../vm-tests/apps/python/server.py}";
          DynamicUser = true;
        };
      };

      services.beyla = {
        enable = true;
        openFirewall = true;
        settings = import ./vm-test-settings.nix;
      };
    };

  testScript = ''
    import json

    start_all()
    machine.wait_for_unit("sample-app.service")
    machine.wait_for_open_port(8080)
    machine.wait_for_unit("beyla.service")
    machine.wait_for_open_port(9400)

    with subtest("the agent runs unprivileged, with exactly its capabilities"):
        pid = machine.succeed("systemctl show --property MainPID --value beyla.service").strip()
        uid = machine.succeed(f"stat -c %u /proc/{pid}").strip()
        assert uid != "0", f"beyla (pid {pid}) runs as root"
        status = machine.succeed(f"cat /proc/{pid}/status")
        cap_eff = next(l for l in status.splitlines() if l.startswith("CapEff:")).split()[1]
        decoded = machine.succeed(f"capsh --decode={cap_eff}").strip().split("=", 1)[1]
        expected = sorted(c.lower() for c in json.loads('${builtins.toJSON (import ../nixos-module/capabilities.nix)}'))
        assert sorted(decoded.split(",")) == expected, f"CapEff {decoded}, expected {expected}"

    def spans():
        out = machine.succeed("journalctl --unit beyla.service --output cat --no-pager")
        found = []
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    pass
        return found

    def user_spans():
        return [s for s in spans() if s.get("attributes", {}).get("url.path") == "/users/42"]

    def request_traced(last_try):
        machine.succeed("curl -sf http://127.0.0.1:8080/users/42")
        return len(user_spans()) > 0

    # retry's timeout is passed by position: its keyword is `timeout` in older
    # test drivers and `timeout_seconds` in newer ones.
    with subtest("requests become spans"):
        retry(request_traced, 180)
        span = user_spans()[0]
        print(json.dumps(span))
        attrs = span["attributes"]
        assert span["kind"] == "server", span
        assert attrs["http.request.method"] == "GET", span
        assert attrs["http.response.status_code"] == 200, span
        assert attrs["http.route"] == "/users/*", span
        assert attrs["server.port"] == 8080, span
        assert span["resource"]["service.name"] == "sample-python", span
        assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16, span

    with subtest("requests become Prometheus metrics"):
        for _ in range(5):
            machine.succeed("curl -sf http://127.0.0.1:8080/users/42")
        def counted(last_try):
            metrics = machine.succeed("curl -sf http://127.0.0.1:9400/metrics")
            lines = [l for l in metrics.splitlines()
                     if l.startswith("http_server_request_duration_seconds_count{")
                     and 'http_route="/users/*"' in l]
            if last_try:
                print(metrics)
            return any(float(l.rsplit(" ", 1)[1]) >= 1 for l in lines)
        retry(counted, 60)

    with subtest("an orderly stop logs the counters"):
        machine.succeed("systemctl stop beyla.service")
        machine.succeed("journalctl --unit beyla.service --output cat --no-pager | grep -F 'stopped: events_read='")
  '';
}
