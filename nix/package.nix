# The agent: `beyla`, with its eBPF probes compiled inside the Nix sandbox.
#
# agent/build.rs compiles ebpf/probes/*.bpf.c with `clang -target bpf`, links
# them with `bpftool gen object` and runs bindgen on ebpf/include/events.h. It
# reads CLANG, BPFTOOL and LIBBPF_INCLUDE from the environment; bindgen finds
# libclang through LIBCLANG_PATH (set by rustPlatform.bindgenHook). Nothing is
# read from /sys at build time.
{ lib
, rustPlatform
, llvmPackages
, libbpf
, bpftools
, writeShellScript
,
}:
let
  version = (lib.importTOML ../agent/Cargo.toml).package.version;

  # The unwrapped clang: the cc-wrapper adds host flags (hardening,
  # -fzero-call-used-regs, -fstack-protector, libc include paths) that the bpf
  # target rejects. The unwrapped binary is given its resource directory
  # (stddef.h, stdint.h for a freestanding target) explicitly.
  clangBpf = writeShellScript "clang-bpf" ''
    exec ${llvmPackages.clang-unwrapped}/bin/clang \
      -resource-dir ${lib.getLib llvmPackages.clang-unwrapped}/lib/clang/${lib.versions.major llvmPackages.clang-unwrapped.version} \
      "$@"
  '';

  bpfEnv = {
    CLANG = "${clangBpf}";
    BPFTOOL = "${lib.getExe' bpftools "bpftool"}";
    LIBBPF_INCLUDE = "${lib.getDev libbpf}/include";
  };

  # Flags the bpf target does not support, should a wrapped compiler ever be
  # used for the probes (the devShell's `clang` is the wrapped one).
  bpfHardeningDisable = [
    "zerocallusedregs"
    "stackprotector"
    "fortify"
    "pic"
  ];
in
rustPlatform.buildRustPackage {
  pname = "beyla";
  inherit version;

  # Only what the build reads (nix/source.nix says what and why).
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions (map (path: ../. + "/${path}") (import ./source.nix));
  };

  cargoLock.lockFile = ../Cargo.lock;

  cargoBuildFlags = [
    "--package"
    "beyla"
  ];
  cargoTestFlags = [
    "--package"
    "beyla"
  ];
  # Unit tests run in checks.<system>.unit-tests; the eBPF integration tests
  # need root and a real kernel (the NixOS VM tests cover that).
  doCheck = false;

  nativeBuildInputs = [
    llvmPackages.clang-unwrapped
    bpftools
    rustPlatform.bindgenHook
  ];
  buildInputs = [ libbpf ];

  env = bpfEnv;
  hardeningDisable = bpfHardeningDisable;

  passthru = {
    inherit bpfEnv bpfHardeningDisable;
  };

  meta = {
    description = "eBPF auto-instrumentation agent: HTTP, gRPC, SQL, Redis and Kafka traffic of unmodified processes to OpenTelemetry traces and metrics";
    license = lib.licenses.asl20;
    mainProgram = "beyla";
    platforms = [
      "x86_64-linux"
      "aarch64-linux"
    ];
  };
}
