# `cargo clippy` over the agent crate with the same sandboxed eBPF build as the
# package (build.rs runs, so the probes must compile here too).
{ beyla, clippy }:
beyla.overrideAttrs (old: {
  pname = "beyla-clippy";
  nativeBuildInputs = old.nativeBuildInputs ++ [ clippy ];
  buildPhase = ''
    runHook preBuild
    cargo clippy --locked --offline --package beyla --all-targets -- -D warnings
    runHook postBuild
  '';
  installPhase = ''
    runHook preInstall
    touch $out
    runHook postInstall
  '';
  doCheck = false;
  doInstallCheck = false;
  dontCargoInstall = true;
  dontFixup = true;
})
