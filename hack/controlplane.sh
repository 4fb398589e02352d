#!/usr/bin/env bash
# Builds the test control plane (tests/controlplane: kube-apiserver with embedded etcd)
# and kubectl from the same Kubernetes release, into a git-ignored cache.
#
#   hack/controlplane.sh build     build unless already built; prints the bin dir last
#   hack/controlplane.sh bin-dir   prints the bin dir only
#
# The bin dir is .cache/controlplane/<key>/bin, where <key> is a hash of the Go module
# (go.mod, go.sum and every .go file: the control plane and its fault proxy), this script
# and the Go toolchain, so any change to them builds afresh. Progress goes to stderr;
# stdout carries only the bin dir.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
module="$root/tests/controlplane"
cache="$root/.cache/controlplane"

key() {
	{
		cat "$module/go.mod" "$module/go.sum" "${BASH_SOURCE[0]}"
		# Names as well as contents, in a fixed order: adding, renaming or removing a
		# file changes the key too.
		(cd "$module" && find . -name '*.go' -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		go version
	} | sha256sum | cut -c1-16
}

bin_dir() {
	echo "$cache/$(key)/bin"
}

say() {
	echo "controlplane.sh: $*" >&2
}

# Runs a build phase at low priority (the machine is shared with cargo) and reports
# how long it took.
phase() {
	local name="$1" start=$SECONDS
	shift
	say "$name ..."
	(cd "$module" && nice -n 10 "$@")
	say "$name done in $((SECONDS - start))s"
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
	local version time major minor ldflags
	version="$(cd "$module" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
	time="$(cd "$module" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
	major="${version#v}" && major="${major%%.*}"
	minor="${version#v*.}" && minor="${minor%%.*}"
	say "building Kubernetes $version into $dir (the first build takes many minutes)"

	# The release's own build stamps its version this way; without it the server and
	# kubectl would both report v0.0.0-master.
	ldflags="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		ldflags+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=clean -X $pkg.buildDate=$time"
	done

	local tmp="$dir.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	phase "downloading modules" go list -deps . k8s.io/kubernetes/cmd/kubectl >/dev/null
	phase "building controlplane" go build -trimpath -ldflags="$ldflags" -o "$tmp/controlplane" .
	phase "building kubectl" go build -trimpath -ldflags="$ldflags" -o "$tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
	touch "$tmp/.complete"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	# Builds of earlier keys are dead weight (~200 MB each); a process still running
	# one keeps its open binary regardless.
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
