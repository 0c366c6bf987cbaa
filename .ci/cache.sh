# Sourced by .ci/run: what CI keeps between clones, as CI services cache it, outside the clone.
#
# Compiled dependencies: one cargo target directory shared by every clone, keyed by the toolchain
# (`rustc -vV`). Not keyed by Cargo.lock: cargo's own fingerprints already key every artifact by
# crate version, features and profile, so a lock change rebuilds only the crates that changed,
# where a directory per lock would rebuild all four hundred. The project's own crates have the
# same artifact names in every clone (cargo names a path crate by its place in the workspace, not
# on disk), and a fresh clone's files are newer than any artifact, so cargo rebuilds them: the
# directory is for fresh clones, not for a working tree with older files. Cargo's lock on the
# directory serializes two CI runs. A directory of another toolchain is removed, and so is this one when
# it has outgrown ORDERFLOW_CACHE_MAX_GB (old artifacts pile up; cargo never deletes them).
#
# Tools installed from registries (cargo-deny, cargo-machete, the Python tools' wheels) live
# under the same root, keyed by their pinned versions.
ORDERFLOW_CACHE=${ORDERFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orderflow}
toolchain_key=$(rustc -vV | sha256sum | cut -c1-16)
export CARGO_TARGET_DIR="$ORDERFLOW_CACHE/target/$toolchain_key"
# Incremental compilation pays only for edits between builds; CI builds each commit once.
export CARGO_INCREMENTAL=0
mkdir -p "$ORDERFLOW_CACHE/target"
for stale in "$ORDERFLOW_CACHE"/target/*; do
    [ "$stale" = "$CARGO_TARGET_DIR" ] || rm -rf "$stale"
done
if [ -d "$CARGO_TARGET_DIR" ] \
    && [ "$(du -s --block-size=1G "$CARGO_TARGET_DIR" | cut -f1)" -gt "${ORDERFLOW_CACHE_MAX_GB:-40}" ]; then
    echo "the shared target directory has outgrown ${ORDERFLOW_CACHE_MAX_GB:-40} GB: starting it anew"
    rm -rf "$CARGO_TARGET_DIR"
fi
export ORDERFLOW_CACHE
