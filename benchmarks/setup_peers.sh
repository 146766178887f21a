#!/usr/bin/env bash
# Create the peer runtimes' virtualenvs for benchmarks/peers.py, one per runtime, under benchmarks/.peers/
# (git-ignored), each from its fully pinned list in benchmarks/peer_requirements/<name>.txt.
#
#   benchmarks/setup_peers.sh                      # onnxruntime openvino deepsparse litert
#   benchmarks/setup_peers.sh deepsparse           # just one
#   PYTHON=python3.11 benchmarks/setup_peers.sh    # the interpreter the venvs use (default python3.11)
#
# DeepSparse 1.8.0 pins numpy<2 and onnx 1.14, hence a venv apart; LiteRT's brings torch==2.13.0 (pinned,
# as everywhere in this project: an unpinned torch pulls a multi-GB CUDA build) for litert-torch's
# conversion. A runtime that fails to install is reported and left out; peers.py then skips it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3.11}
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(onnxruntime openvino deepsparse litert)
failed=()
for name in "${names[@]}"; do
    [ "$name" = cascc ] && continue  # cascc runs in the project's own venv
    lock=$here/peer_requirements/$name.txt
    venv=$here/.peers/$name
    if [ ! -f "$lock" ]; then
        echo "setup_peers: no $lock (known: $(ls "$here/peer_requirements" | sed 's/\.txt//' | tr '\n' ' '))" >&2
        failed+=("$name")
        continue
    fi
    echo "setup_peers: $name -> $venv" >&2
    if { [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"; } &&
        NM_DISABLE_ANALYTICS=1 "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$lock"; then
        echo "setup_peers: $name ready" >&2
    else
        echo "setup_peers: $name failed to install; peers.py will skip it" >&2
        failed+=("$name")
    fi
done
[ ${#failed[@]} -eq 0 ] || { echo "setup_peers: not installed: ${failed[*]}" >&2; exit 1; }
