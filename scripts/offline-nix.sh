# Source this to run Nix without a network: no substituters, no global registry.
# (Machines with a network do not need it.)
_nixlayer_registry="${TMPDIR:-/tmp}/nixlayer-empty-registry.json"
[ -f "$_nixlayer_registry" ] || printf '{"flakes":[],"version":2}' > "$_nixlayer_registry"
NIX_CONFIG="experimental-features = nix-command flakes
substituters =
flake-registry = $_nixlayer_registry
build-users-group =
${NIX_CONFIG:-}"
export NIX_CONFIG
unset _nixlayer_registry
