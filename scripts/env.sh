# Sourced by the other scripts: where facegate keeps its cache, and the model mirror beside the checkout.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export FACEGATE_HOME=${FACEGATE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/facegate}
if [ -z "${FACEGATE_MODEL_MIRROR:-}" ] && [ -d "$root/../shared/models" ]; then
  export FACEGATE_MODEL_MIRROR="$root/../shared/models"
fi
# Node.js from the registry, where scripts/console.sh had to install it (an older distribution's).
export PATH="$FACEGATE_HOME/node/node_modules/node/bin:$PATH"
