{
  description = "Beyla (Rust): eBPF auto-instrumentation agent, its NixOS module, OCI image and VM tests";

  # No flake.lock is committed yet: the first `nix flake lock` (or any `nix
  # build`/`nix flake check`) on a machine with network pins this branch.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems =
        f:
        lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              overlays = [ self.overlays.default ];
            }
          )
        );

      # The kernel matrix of the NixOS VM tests: names in
      # pkgs.linuxKernel.packages (versioned) or .packageAliases (latest);
      # the linuxPackages_* names are aliases that allowAliases = false removes.
      kernels = [
        "linux_5_10"
        "linux_6_1"
        "linux_6_6"
        "linux_6_12"
        "linux_latest"
      ];
    in
    {
      overlays.default = final: _prev: {
        beyla = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (pkgs: {
        inherit (pkgs) beyla;
        default = pkgs.beyla;
        oci-image = pkgs.callPackage ./nix/oci-image.nix {
          revision = self.rev or self.dirtyRev or "unknown";
        };
      });

      # The module, with the package defaulting to this flake's build (so it
      # works without the overlay).
      nixosModules.beyla =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos-module ];
          services.beyla.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };
      nixosModules.default = self.nixosModules.beyla;

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ pkgs.beyla ];
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            rust-analyzer
            llvmPackages.clang
            llvmPackages.clang-unwrapped
            libbpf
            bpftools
            qemu
            curl
            kubeconform
            kubernetes-helm
            nixpkgs-fmt
          ];
          # The same variables as the package build (see nix/package.nix).
          env = pkgs.beyla.passthru.bpfEnv;
          hardeningDisable = pkgs.beyla.passthru.bpfHardeningDisable;
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);

      checks = forAllSystems (
        pkgs:
        let
          vmTest =
            kernel:
            import ./nix/vm-test.nix {
              inherit pkgs kernel;
              module = self.nixosModules.default;
            };
        in
        {
          package = pkgs.beyla;
          clippy = pkgs.callPackage ./nix/clippy.nix { };
          unit-tests = pkgs.beyla.overrideAttrs (_: {
            pname = "beyla-unit-tests";
            doCheck = true;
          });
          oci-image = self.packages.${pkgs.stdenv.hostPlatform.system}.oci-image;
          formatting = pkgs.runCommand "beyla-nix-formatting" { nativeBuildInputs = [ pkgs.nixpkgs-fmt ]; } ''
            cd ${./.}
            nixpkgs-fmt --check flake.nix nix/*.nix nix/tests/*.nix nixos-module/*.nix nixos-module/examples/*.nix
            touch $out
          '';
        }
        // lib.listToAttrs (
          map
            (kernel: {
              name = "vm-linux-" + lib.removePrefix "linux_" kernel;
              value = vmTest kernel;
            })
            kernels
        )
      );
    };
}
