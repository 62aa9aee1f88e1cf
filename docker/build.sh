#!/usr/bin/env bash
# Build the receval step images (train, predict, evaluate) with docker, podman or buildah.
#
#   docker/build.sh [--engine docker|podman|buildah] [--tag TAG] [--registry REG] [--base-image IMAGE]
#                   [--wheelhouse DIR] [--push] [-- EXTRA ENGINE ARGS]
#
# The build itself is hermetic: it installs from a wheelhouse with `pip --no-index`. Without
# --wheelhouse, one is made first INSIDE the base image (`ENGINE run BASE_IMAGE ... pip wheel`, which
# uses your index), so every wheel matches the image's Python and platform, not this machine's.
# Images: REG/receval-train:TAG, REG/receval-predict:TAG, REG/receval-evaluate:TAG.
# The created label is now, or SOURCE_DATE_EPOCH when set (reproducible builds).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
version="$(python3 -c 'import re,sys; print(re.search(r"__version__ = \"(.+?)\"", open(sys.argv[1]).read()).group(1))' "$repo/src/receval/_version.py")"
engine="" tag="$version" registry="ghcr.io/receval" base_image="" wheelhouse="" push=0 extra=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --engine) engine="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --base-image) base_image="$2"; shift 2 ;;
    --wheelhouse) wheelhouse="$2"; shift 2 ;;
    --push) push=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [[ -z "$engine" ]]; then
  for candidate in docker podman buildah; do
    if command -v "$candidate" >/dev/null 2>&1; then engine="$candidate"; break; fi
  done
fi
[[ -n "$engine" ]] || { echo "build.sh: no docker, podman or buildah on PATH" >&2; exit 2; }

# The image's Python, unless told otherwise: the Dockerfile's own default base.
wheel_image="${base_image:-$(sed -n 's/^ARG BASE_IMAGE=//p' "$here/Dockerfile" | head -n 1)}"
[[ -n "$wheel_image" ]] || { echo "build.sh: no BASE_IMAGE default in $here/Dockerfile" >&2; exit 2; }

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
wheels="$context/wheelhouse"
if [[ -n "$wheelhouse" ]]; then
  # -a keeps modification times: the layer cache then recognises unchanged wheels
  cp -a "$wheelhouse" "$wheels"
else
  mkdir "$wheels"
  # A venv, as in the Dockerfile: a Debian base's python3 has no pip of its own. The source is
  # copied first: pip builds a local project in place, and /src is mounted read-only.
  in_base='set -e; cp -r /src /tmp/receval-src; python3 -m venv /tmp/wheel-env;
    /tmp/wheel-env/bin/python -m pip wheel --quiet --wheel-dir /out /tmp/receval-src'
  echo "build.sh: making the wheelhouse inside $wheel_image" >&2
  case "$engine" in
    buildah)
      ctr="$(buildah from "$wheel_image")"
      buildah run -v "$repo:/src:ro" -v "$wheels:/out" "$ctr" -- sh -c "$in_base"
      buildah rm "$ctr" >/dev/null ;;
    *)
      # this user's ids, so that the wheels in the bind mount are ours to clean up
      "$engine" run --rm --user "$(id -u):$(id -g)" -e HOME=/tmp -e PIP_DISABLE_PIP_VERSION_CHECK=1 \
        -v "$repo:/src:ro" -v "$wheels:/out" "$wheel_image" sh -c "$in_base" ;;
  esac
fi
ls "$wheels"/receval-"$version"-*.whl >/dev/null 2>&1 \
  || { echo "build.sh: the wheelhouse has no receval-$version wheel" >&2; exit 2; }
# The context the Dockerfile expects: deps/ (cached layer) apart from receval/ (changes with the code)
mkdir "$context/deps" "$context/receval"
mv "$wheels"/receval-*.whl "$context/receval/"
mv "$wheels"/*.whl "$context/deps/" 2>/dev/null || true
rm -rf "$wheels"

args=(--build-arg "RECEVAL_VERSION=$version"
      --build-arg "VCS_REF=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
      --build-arg "BUILD_DATE=$(date -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"} +%Y-%m-%dT%H:%M:%SZ)")
[[ -n "$base_image" ]] && args+=(--build-arg "BASE_IMAGE=$base_image")

for target in train predict evaluate; do
  image="$registry/receval-$target:$tag"
  echo "build.sh: $engine building $image" >&2
  case "$engine" in
    # buildah alone does not cache layers by default; --layers lets the 2nd and 3rd target reuse
    # the install stage instead of installing the wheelhouse three times.
    buildah) buildah bud --layers "${args[@]}" --target "$target" -t "$image" -f "$here/Dockerfile" "${extra[@]}" "$context" ;;
    *) "$engine" build "${args[@]}" --target "$target" -t "$image" -f "$here/Dockerfile" "${extra[@]}" "$context" ;;
  esac
  if [[ "$push" == 1 ]]; then "$engine" push "$image"; fi
done
