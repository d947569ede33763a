#!/bin/sh
# Runs a program and fails unless it exits 0 and prints something.
out=$("$1") || { echo "$1 failed"; exit 1; }
[ -n "$out" ] || { echo "$1 printed nothing"; exit 1; }
printf '%s\n' "$out"
