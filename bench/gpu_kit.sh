#!/usr/bin/env bash
# What a GPU machine with no network needs to run bench/gpu_check.sh, carried in one folder (a kit):
# the grader's Python packages that a CUDA image lacks (its python3 has torch, numpy, Lightning,
# scikit-image, matplotlib and pandas), as wheels for that image's Python; the shared libraries
# WeasyPrint loads (Pango, HarfBuzz, fontconfig and theirs) and bubblewrap, as Debian packages; and
# the report's CJK font.
#
#   bash bench/gpu_kit.sh fetch KIT [PYTHON_VERSION]   # here, with the network (Debian, apt and pip)
#   source bench/gpu_kit.sh install KIT [ROOT]          # there: sets PYTHONPATH, LD_LIBRARY_PATH,
#                                                       # FONTCONFIG_FILE and PATH for this shell
#
# install unpacks the Debian packages under ROOT (default /opt/xai-kit), never over /, and links
# only the libraries the machine lacks (by soname, as ldconfig knows them), so its own stay in use.
# The package list was read off an image whose python3 is 3.12 (bench/RESULTS.md, gpu_check).

kit_packages=(
  dask==2026.8.0 distributed==2026.8.0 partd==1.4.2 locket==1.0.0 importlib-metadata==10.2.0
  lazy-importer==0.1.0 tblib==3.2.2 tornado==6.6.1 zict==3.0.0
  weasyprint==70.0 pydyf==0.13.0 cffi==2.1.1 pycparser==3.12 tinyhtml5==2.1.0 webencodings==0.6.1
  tinycss2==1.5.1 cssselect2==0.10.1 pyphen==0.18.1
  pydantic==2.14.4 annotated-types==0.8.0 pydantic-core==2.50.5 typing-inspection==0.4.5
  fastapi==0.165.0 starlette==1.10.0 opentelemetry-api==1.45.2 uvicorn==0.55.0 sqlalchemy==2.1.9
)
kit_debs=(
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfribidi0 libthai0 libthai-data
  libdatrie1 libgraphite2-3 libfontconfig1 fontconfig-config libfreetype6 libglib2.0-0 libbrotli1
  libpng16-16 libexpat1 libpcre2-8-0 libffi8 libmount1 libblkid1 libselinux1 fonts-dejavu-core
  bubblewrap libcap2
)

kit_fetch() {
  local kit="$1" version="${2:-3.12}" python="${PYTHON:-.venv/bin/python}"
  mkdir -p "$kit/wheels" "$kit/debs" "$kit/fonts"
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$kit/wheels" "${kit_packages[@]}"
  # lime publishes a source distribution only; its wheel is pure Python.
  "$python" -m pip wheel -q --no-deps -w "$kit/wheels" lime==0.2.0.1
  (cd "$kit/debs" && apt-get download "${kit_debs[@]}")
  cp /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc "$kit/fonts/"
}

kit_install() {
  local kit root="${2:-/opt/xai-kit}" python="${PYTHON:-python3}"
  kit="$(cd "$1" && pwd)" || return 1
  mkdir -p "$root/lib" "$root/bin" "$root/debs" "$root/fontcache"
  # A folder named site-packages: the sandbox binds such folders on PYTHONPATH for its servers.
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$root/site-packages" "$kit"/wheels/*.whl || return 1
  local deb library name known
  known="$(ldconfig -p)"  # once, and not in a pipe: grep -q's early exit would fail it under pipefail
  for deb in "$kit"/debs/*.deb; do dpkg -x "$deb" "$root/debs"; done
  for library in "$root"/debs/usr/lib/x86_64-linux-gnu/*.so.* "$root"/debs/lib/x86_64-linux-gnu/*.so.*; do
    [ -L "$library" ] || continue  # a soname is a link to the versioned file
    name="$(basename "$library")"
    grep -q "^[[:space:]]*$name " <<<"$known" || ln -sf "$library" "$root/lib/$name"
  done
  command -v bwrap >/dev/null || ln -sf "$root/debs/usr/bin/bwrap" "$root/bin/bwrap"
  cat > "$root/fonts.conf" <<CONF
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <dir>/usr/share/fonts</dir>
  <dir>$kit/fonts</dir>
  <dir>$root/debs/usr/share/fonts</dir>
  <cachedir>$root/fontcache</cachedir>
</fontconfig>
CONF
  # matplotlib finds fonts by fc-list, which a CUDA image lacks, or in its own list of folders, which
  # holds the user's: the figures' CJK font goes there (the PDF's comes through FONTCONFIG_FILE).
  mkdir -p "$HOME/.local/share/fonts" && ln -sf "$kit"/fonts/*.ttc "$HOME/.local/share/fonts/"
  export PYTHONPATH="$root/site-packages${PYTHONPATH:+:$PYTHONPATH}"
  export LD_LIBRARY_PATH="$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export FONTCONFIG_FILE="$root/fonts.conf"
  export PATH="$PATH:$root/bin"
  echo "kit installed under $root: $(ls "$root/lib" | wc -l) libraries linked ($(ls "$root/lib" | tr '\n' ' '))"
}

case "${1:-}" in
  fetch) shift; kit_fetch "$@" ;;
  install) shift; kit_install "$@" ;;
  *) echo "usage: bash bench/gpu_kit.sh fetch KIT [PYTHON_VERSION] | source bench/gpu_kit.sh install KIT [ROOT]" >&2
     return 2 2>/dev/null || exit 2 ;;
esac
