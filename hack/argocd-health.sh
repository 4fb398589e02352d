#!/usr/bin/env bash
# Builds tests/argocd (Argo CD's own health assessment as a command, see its main.go) into
# a git-ignored cache.
#
#   hack/argocd-health.sh build     build unless already built; prints the bin dir last
#   hack/argocd-health.sh bin-dir   prints the bin dir only
#
# The bin dir is .cache/argocd-health/<key>/bin, where <key> is a hash of the Go module
# (go.mod, go.sum, main.go), this script and the Go toolchain, so any change to them builds
# afresh. Argo CD v3.6 needs Go 1.27: the pinned toolchain below comes from the Go module
# proxy (the go command fetches and caches it) whatever Go the machine has, as long as that
# Go is 1.21 or newer. Progress goes to stderr; stdout carries only the bin dir.
set -euo pipefail

# The toolchain the module builds with; go.mod asks for at least the Go that Argo CD needs.
export GOTOOLCHAIN=go1.27.4

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
module="$root/tests/argocd"
cache="$root/.cache/argocd-health"

key() {
	{
		cat "$module/go.mod" "$module/go.sum" "$module/main.go" "${BASH_SOURCE[0]}"
		(cd "$module" && go version)
	} | sha256sum | cut -c1-16
}

bin_dir() {
	echo "$cache/$(key)/bin"
}

say() {
	echo "argocd-health.sh: $*" >&2
}

build() {
	local dir started=$SECONDS
	dir="$(bin_dir)"
	if [[ -f "$dir/.complete" ]]; then
		echo "$dir"
		return
	fi
	mkdir -p "$cache"
	# Two test runs may start at once: one builds, the other waits for it.
	exec 9>"$cache/.lock"
	if ! flock -n 9; then
		say "waiting for another build to finish"
		flock 9
	fi
	if [[ -f "$dir/.complete" ]]; then
		echo "$dir"
		return
	fi

	# go.sum is committed: builds read it and never rewrite it.
	export GOFLAGS="-mod=readonly -buildvcs=false"
	local version
	version="$(cd "$module" && go list -m -f '{{.Version}}' github.com/argoproj/argo-cd/v3)"
	say "building Argo CD $version's health assessment with $(cd "$module" && go version) into $dir (the first build takes minutes)"
	local tmp="$dir.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	(cd "$module" && nice -n 10 go build -trimpath -ldflags="-s -w" -o "$tmp/argocd-health" .)
	touch "$tmp/.complete"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	# Builds of earlier keys are dead weight; a process still running one keeps its open
	# binary regardless.
	local old
	for old in "$cache"/*/; do
		if [[ "${old%/}" != "${dir%/bin}" ]]; then
			rm -rf "$old"
		fi
	done
	say "built in $((SECONDS - started))s"
	echo "$dir"
}

case "${1:-}" in
build) build ;;
bin-dir) bin_dir ;;
*)
	echo "usage: $0 build|bin-dir" >&2
	exit 2
	;;
esac
