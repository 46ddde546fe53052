{
  description = "claude-cli-api: an OpenAI-compatible Chat Completions server (OpenAI passthrough or the claude CLI)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: {
        default = pkgs.rustPlatform.buildRustPackage {
          pname = "claude-cli-api";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          # The integration tests start servers and child processes; they
          # run in CI (make check) rather than in the build sandbox.
          doCheck = false;
          meta = {
            description = "OpenAI-compatible Chat Completions server with an OpenAI passthrough and a claude CLI backend";
            license = pkgs.lib.licenses.mit;
            mainProgram = "claude-cli-api";
          };
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            rustc
            cargo
            clippy
            rustfmt
            python3
            nodejs
            gnumake
          ];
        };
      });
    };
}
