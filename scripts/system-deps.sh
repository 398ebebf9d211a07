#!/usr/bin/env bash
# Install the Debian packages the PDF (CJK font, HarfBuzz subsetting), the sandbox (bubblewrap) and the tests (poppler,
# chromium)
# need, when run as root with apt-get; otherwise say exactly what to install and fail.
set -euo pipefail

missing=()
fc-list 2>/dev/null | grep "Noto Sans CJK" >/dev/null || missing+=(fonts-noto-cjk)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
# The dashboard tests (tests/test_dashboard.py) drive Debian's chromium through Playwright, headless;
# Playwright's own browser download is never used.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# WeasyPrint subsets fonts with HarfBuzz; without it, fontTools takes seconds per CJK PDF.
ldconfig -p 2>/dev/null | grep libharfbuzz-subset >/dev/null || missing+=(libharfbuzz-subset0)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fc-cache -f >/dev/null 2>&1 || true
  exit 0
fi
echo "xai-grader needs these system packages: ${missing[*]}" >&2
echo "on Debian or Ubuntu, run:  sudo apt-get install ${missing[*]}" >&2
exit 1
