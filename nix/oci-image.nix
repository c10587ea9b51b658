# OCI image of the agent, built by Nix: `nix build .#oci-image` gives a
# docker-archive tarball (`docker load < result`, `podman load < result`).
# The image holds the agent and its runtime closure (glibc), CA certificates
# for https:// OTLP endpoints, and nothing else: no shell.
{ lib
, dockerTools
, beyla
, cacert
, # The source revision, set by the flake (self.rev) when the tree is clean.
  revision ? "unknown"
,
}:
dockerTools.buildLayeredImage {
  name = "beyla";
  tag = beyla.version;

  contents = [
    beyla
    dockerTools.caCertificates
  ];

  config = {
    Entrypoint = [ (lib.getExe beyla) ];
    Env = [
      # Prometheus scrape endpoint on all interfaces, port 9400 (overridable
      # with -e BEYLA_PROMETHEUS_PORT=...). Spans are printed on stdout until
      # an OTLP endpoint is set, as outside a container.
      "BEYLA_PROMETHEUS_PORT=9400"
      "BEYLA_LOG_LEVEL=INFO"
      "SSL_CERT_FILE=${cacert}/etc/ssl/certs/ca-bundle.crt"
    ];
    ExposedPorts = {
      "9400/tcp" = { };
    };
    Labels = {
      "org.opencontainers.image.title" = "beyla";
      "org.opencontainers.image.description" = beyla.meta.description;
      "org.opencontainers.image.version" = beyla.version;
      "org.opencontainers.image.licenses" = "Apache-2.0";
      "org.opencontainers.image.revision" = revision;
    };
  };
}
