#!/usr/bin/env bash
# Makes sure headless Chromium is installed (Debian's `chromium`), for the test that loads
# `fstream report`'s page in a browser. Idempotent; prints the browser's path.
set -euo pipefail

if ! command -v chromium >/dev/null; then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
command -v chromium
