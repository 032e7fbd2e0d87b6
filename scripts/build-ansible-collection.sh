#!/bin/sh
# Build the vfiokit.passthrough Ansible collection tarball into OUTDIR (default dist/ansible).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$here/dist/ansible"}
mkdir -p "$out"
ansible-galaxy collection build "$here/integrations/ansible" --output-path "$out" --force
