# Sourced by the hack/ scripts (and mirrored by the Makefile): every go command runs with the
# toolchain go.mod's `toolchain` line names, whatever Go the machine has. The go command
# fetches that toolchain once from the module proxy into the module cache and reuses it.
# A GOTOOLCHAIN already in the environment wins.
if [[ -z "${GOTOOLCHAIN:-}" ]]; then
  GOTOOLCHAIN=$(sed -n 's/^toolchain //p' "$(dirname "${BASH_SOURCE[0]}")/../../go.mod")
  export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
fi
