#!/usr/bin/env bash
# Fill services/{catalog,processor,gateway}/wheels/ with the wheels each image needs, so
# `docker build` installs with `pip install --no-index` (containers cannot reach an index).
# The wheels are for the base image's Python (CPython 3.11, manylinux, this machine's
# architecture), whatever Python runs this script. Downloads go to one shared cache
# (deploy/.cache/wheels) first; each service's folder gets only its own wheels from it.
set -euo pipefail

cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
cache=deploy/.cache/wheels
arch=$(uname -m)
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do
  platforms+=(--platform "${tag}_${arch}")
done
target=(--only-binary=:all: --python-version 3.11 --implementation cp "${platforms[@]}")

requirements() {
  # The dependencies a service's pyproject.toml declares (with its extras, for the catalog).
  "$python" - "$1" <<'PY'
import sys, tomllib
with open(f"services/{sys.argv[1]}/pyproject.toml", "rb") as file:
    project = tomllib.load(file)["project"]
extras = [dep for deps in project.get("optional-dependencies", {}).values() for dep in deps]
print("\n".join(["setuptools>=68", *project["dependencies"], *extras]))
PY
}

mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for service in catalog processor gateway; do
  requirements "$service" >"$work/$service.txt"
done
cat "$work"/*.txt | sort -u >"$work/all.txt"
"$python" -m pip download --quiet --disable-pip-version-check "${target[@]}" \
  --find-links "$cache" --dest "$cache" -r "$work/all.txt"
for service in catalog processor gateway; do
  rm -rf "services/$service/wheels"
  "$python" -m pip download --quiet --disable-pip-version-check "${target[@]}" \
    --no-index --find-links "$cache" --dest "services/$service/wheels" -r "$work/$service.txt"
  echo "services/$service/wheels: $(find "services/$service/wheels" -name '*.whl' | wc -l) wheels"
done
