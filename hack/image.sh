#!/usr/bin/env bash
# Builds the operator image from the project's Dockerfile, unchanged, with rootful podman.
#
#   hack/image.sh              stand-in base images if missing, then the Dockerfile (make image)
#   hack/image.sh --committed  the same, from the committed tree (git archive HEAD) instead of
#                              the work tree, e.g. while uncommitted work does not build
#   hack/image.sh bases        only the stand-in base images
#   hack/image.sh name         prints the image reference the build tags
#
# No container registry is reachable from the project's machines, so the two images the
# Dockerfile starts FROM are made here from Debian's packages and tagged with the upstream
# names; `podman build --pull=never` then builds the Dockerfile as written:
#
#   gcr.io/distroless/cc-debian12:nonroot   the packages distroless cc-debian12 carries
#       (RUNTIME_PACKAGES below), each extracted as distroless does it (no maintainer
#       scripts, no dependencies pulled in, hence no shell), the CA bundle made from the
#       ca-certificates package, the users root, nobody and nonroot (65532), user 65532.
#   rust:1.95-bookworm                      Debian bookworm with the build tools of the
#       upstream image's buildpack-deps base, and this machine's Rust toolchain (which must
#       be the release the tag names) under /usr/local/rustup and /usr/local/cargo as
#       upstream; also this machine's CA bundle, so cargo inside the build reaches
#       crates.io through this machine's TLS-inspecting egress, and its cargo config if any.
#
# Each base image carries a label with a key of its recipe (this script, the package list,
# the toolchain); one whose key matches is reused, so bases are built once per machine.
# The builder stage runs for real (`cargo build --locked --release` inside the container,
# with crates fetched from crates.io over the host network); its cargo registry and target
# dir are the Dockerfile's cache mounts and survive between builds.
#
# Installs podman, runc and mmdebstrap from Debian's packages when they are missing (as
# root). Prints the time of each phase and the image size. Heavy work runs with nice.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/hack/containers.conf}"

SUITE=bookworm
# What gcr.io/distroless/cc-debian12 is made of: distroless's base (base-files, netbase,
# tzdata, ca-certificates, libc6, libssl3) plus the C/C++ runtime of its cc flavour.
RUNTIME_PACKAGES=(base-files netbase tzdata ca-certificates libc6 libssl3 libgcc-s1 libgomp1 libstdc++6)
# The upstream rust image is buildpack-deps:bookworm plus rustup; these are the parts of
# buildpack-deps a Rust build uses (a C toolchain for build scripts such as aws-lc-sys,
# pkg-config and OpenSSL headers, git and curl for cargo).
BUILDER_PACKAGES=(ca-certificates curl git gcc g++ libc6-dev make pkg-config libssl-dev perl xz-utils)
LABEL=dev.eventbridgepartner.stand-in

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
IMAGE="${IMAGE:-localhost/eventbridge-partner-operator:$version}"

say() { echo "image.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}

timings=()
phase_started=0
phase_name=""
phase() {
	end_phase
	phase_name="$1"
	phase_started=$SECONDS
	say "== $phase_name"
}
end_phase() {
	if [[ -n "$phase_name" ]]; then
		timings+=("$(printf '%-58s %5ss' "$phase_name" "$((SECONDS - phase_started))")")
		phase_name=""
	fi
}

# The two FROM images of the Dockerfile, in order (builder, runtime), as podman names them.
from_images() {
	awk 'toupper($1) == "FROM" { print $2 }' Dockerfile
}
qualified() {
	case "$1" in
	*.*/* | localhost/*) echo "$1" ;;
	*/*) echo "docker.io/$1" ;;
	*) echo "docker.io/library/$1" ;;
	esac
}

ensure_packages() {
	local missing=()
	command -v podman >/dev/null || missing+=(podman)
	command -v runc >/dev/null || missing+=(runc)
	command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
	if ((${#missing[@]} == 0)); then
		return
	fi
	if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
		die "missing ${missing[*]}: install Debian's ${missing[*]} packages (apt-get install ${missing[*]}) as root"
	fi
	say "installing ${missing[*]} from Debian's packages"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		podman runc mmdebstrap fuse-overlayfs uidmap slirp4netns containernetworking-plugins >&2
}

# The label value an image carries, or nothing when it is absent.
image_label() {
	podman image inspect --format "{{index .Labels \"$LABEL\"}}" "$1" 2>/dev/null || true
}

runtime_key() {
	{
		echo "runtime $SUITE ${RUNTIME_PACKAGES[*]}"
		sed -n '/^build_runtime_base()/,/^}/p' "${BASH_SOURCE[0]}"
	} | sha256sum | cut -c1-16
}

builder_key() {
	{
		echo "builder $SUITE ${BUILDER_PACKAGES[*]}"
		rustc --version --verbose
		sed -n '/^build_builder_base()/,/^}/p' "${BASH_SOURCE[0]}"
		cat /etc/ssl/certs/ca-certificates.crt
		cat "${CARGO_HOME:-$HOME/.cargo}/config.toml" 2>/dev/null || true
	} | sha256sum | cut -c1-16
}

# Downloads the packages with mmdebstrap (apt resolves them and checks the archive's
# signatures) and keeps the .deb files in $2.
download_debs() {
	local include="$1" out="$2" work
	work="$(mktemp -d)"
	mmdebstrap --quiet --variant=extract --include="$include" \
		--skip=output/dev,output/mknod,cleanup/apt/cache --format=directory "$SUITE" "$work/root" >&2
	mkdir -p "$out"
	mv "$work/root/var/cache/apt/archives/"*.deb "$out/"
	rm -rf "$work"
}

build_runtime_base() {
	local ref="$1" key="$2" work rootfs deb pkg
	work="$(mktemp -d)"
	rootfs="$work/rootfs"
	download_debs "$(IFS=,; echo "${RUNTIME_PACKAGES[*]}")" "$work/debs"
	mkdir -p "$rootfs/var/lib/dpkg/status.d"
	# Only the listed packages, extracted without their dependencies or maintainer
	# scripts (ca-certificates and tzdata would pull in debconf and perl), as distroless
	# does; each leaves its control file in status.d for image scanners.
	for pkg in "${RUNTIME_PACKAGES[@]}"; do
		deb="$(ls "$work/debs/${pkg}_"*.deb)"
		dpkg-deb --extract "$deb" "$rootfs"
		dpkg-deb --field "$deb" >"$rootfs/var/lib/dpkg/status.d/$pkg"
		echo "Status: install ok installed" >>"$rootfs/var/lib/dpkg/status.d/$pkg"
	done
	# Documentation other than the licences, as distroless.
	find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
	rm -rf "$rootfs/usr/share/man" "$rootfs/usr/share/info" "$rootfs/usr/share/lintian"
	# The CA bundle update-ca-certificates would write, from the package's certificates.
	mkdir -p "$rootfs/etc/ssl/certs"
	find "$rootfs/usr/share/ca-certificates" -name '*.crt' -print0 | sort -z |
		xargs -0 cat >"$rootfs/etc/ssl/certs/ca-certificates.crt"
	cat >"$rootfs/etc/passwd" <<-'PASSWD'
		root:x:0:0:root:/root:/sbin/nologin
		nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
		nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
	PASSWD
	cat >"$rootfs/etc/group" <<-'GROUP'
		root:x:0:
		nobody:x:65534:
		tty:x:5:
		staff:x:50:
		nonroot:x:65532:
	GROUP
	install -d -m 0700 "$rootfs/root"
	install -d -m 0700 -o 65532 -g 65532 "$rootfs/home/nonroot"
	install -d -m 1777 "$rootfs/tmp"
	for sh in bin/sh bin/bash bin/dash usr/bin/sh usr/bin/bash usr/bin/dash; do
		[[ ! -e "$rootfs/$sh" ]] || die "the runtime base has a shell ($sh)"
	done
	tar -C "$rootfs" --numeric-owner -cf - . | podman import \
		--change 'USER 65532' \
		--change 'WORKDIR /home/nonroot' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
		--change "LABEL $LABEL=$key" \
		--message "stand-in for $ref: ${RUNTIME_PACKAGES[*]} from Debian $SUITE" \
		- "$ref" >/dev/null
	rm -rf "$work"
}

build_builder_base() {
	local ref="$1" key="$2" want="$3" work rootfs sysroot toolchain triple tool
	sysroot="$(rustc --print sysroot)"
	triple="$(rustc --version --verbose | sed -n 's/^host: //p')"
	toolchain="$want-$triple"
	work="$(mktemp -d)"
	rootfs="$work/rootfs"
	nice -n 10 mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${BUILDER_PACKAGES[*]}")" \
		--aptopt='APT::Install-Recommends "false"' \
		--skip=output/dev,output/mknod --format=directory "$SUITE" "$rootfs" >&2
	# The Rust toolchain as the upstream image lays it out: rustup's proxies in
	# /usr/local/cargo/bin, the toolchain in /usr/local/rustup (without its HTML docs).
	mkdir -p "$rootfs/usr/local/rustup/toolchains/$toolchain" "$rootfs/usr/local/cargo/bin"
	tar -C "$sysroot" --exclude=./share/doc -cf - . | tar -C "$rootfs/usr/local/rustup/toolchains/$toolchain" -xf -
	printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$toolchain" \
		>"$rootfs/usr/local/rustup/settings.toml"
	install -m 0755 "$(command -v rustup)" "$rootfs/usr/local/cargo/bin/rustup"
	for tool in cargo rustc rustdoc cargo-clippy clippy-driver cargo-fmt rustfmt rust-gdb rust-lldb; do
		ln -s rustup "$rootfs/usr/local/cargo/bin/$tool"
	done
	# This machine's CA bundle (it holds the CA of the machine's egress) and cargo config.
	cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
	if [[ -f "${CARGO_HOME:-$HOME/.cargo}/config.toml" ]]; then
		cp "${CARGO_HOME:-$HOME/.cargo}/config.toml" "$rootfs/usr/local/cargo/config.toml"
	fi
	chmod -R a+w "$rootfs/usr/local/cargo" "$rootfs/usr/local/rustup"
	rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
	tar -C "$rootfs" --numeric-owner -cf - . | nice -n 10 podman import \
		--change 'ENV RUSTUP_HOME=/usr/local/rustup' \
		--change 'ENV CARGO_HOME=/usr/local/cargo' \
		--change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change "ENV RUST_VERSION=$want" \
		--change "LABEL $LABEL=$key" \
		--message "stand-in for $ref: Debian $SUITE with ${BUILDER_PACKAGES[*]} and Rust $want" \
		- "$ref" >/dev/null
	rm -rf "$work"
}

bases() {
	local images builder runtime want have key
	mapfile -t images < <(from_images)
	((${#images[@]} == 2)) || die "expected two FROM lines in the Dockerfile, found ${#images[@]}"
	builder="$(qualified "${images[0]}")"
	runtime="$(qualified "${images[1]}")"

	phase "runtime base ($runtime)"
	key="$(runtime_key)"
	if [[ "$(image_label "$runtime")" == "$key" ]]; then
		say "$runtime is built (recipe $key)"
	else
		say "making $runtime from Debian $SUITE packages"
		build_runtime_base "$runtime" "$key"
	fi

	phase "builder base ($builder)"
	# rust:1.95-bookworm -> 1.95: this machine's toolchain must be that release.
	want="$(echo "${images[0]}" | sed -n 's/^[^:]*:\([0-9][0-9.]*\)-.*$/\1/p')"
	have="$(rustc --version | awk '{ print $2 }')"
	[[ -n "$want" ]] || die "cannot read the Rust release from ${images[0]}"
	[[ "$have" == "$want" || "$have" == "$want".* ]] ||
		die "the Dockerfile builds with Rust $want, this machine has $have"
	key="$(builder_key)"
	if [[ "$(image_label "$builder")" == "$key" ]]; then
		say "$builder is built (recipe $key)"
	else
		say "making $builder from Debian $SUITE packages and Rust $have"
		build_builder_base "$builder" "$key" "$have"
	fi
	end_phase
}

# Reads podman build's output, passes it on to stderr, and appends the time of each stage
# ("[n/m] STEP 1/k: FROM ...") to the file $1.
stage_times() {
	local file="$1" line stage="" started=$SECONDS
	while IFS= read -r line; do
		printf '%s\n' "$line" >&2
		if [[ "$line" =~ ^\[([0-9]+)/([0-9]+)\]\ STEP\ 1/[0-9]+:\ FROM\ (.*)$ ]]; then
			if [[ -n "$stage" ]]; then
				printf '%-56s %5ss\n' "$stage" "$((SECONDS - started))" >>"$file"
			fi
			stage="stage ${BASH_REMATCH[1]}/${BASH_REMATCH[2]} (${BASH_REMATCH[3]})"
			started=$SECONDS
		fi
	done
	if [[ -n "$stage" ]]; then
		printf '%-56s %5ss\n' "$stage" "$((SECONDS - started))" >>"$file"
	fi
}

image() {
	local size stages context="$root" committed=""
	stages="$(mktemp)"
	if [[ "${1:-}" == --committed ]]; then
		committed="$(mktemp -d)"
		# shellcheck disable=SC2064 # the dir is known now
		trap "rm -rf '$committed'" EXIT
		git archive --format=tar HEAD | tar -x -C "$committed"
		context="$committed"
		say "building the committed tree ($(git rev-parse --short HEAD))"
	fi
	phase "podman build (the Dockerfile)"
	# One build of the context as it is now; the network is the host's, so cargo in the
	# builder stage fetches crates from crates.io.
	nice -n 10 podman build --pull=never --network host --layers \
		-t "$IMAGE" -f "$context/Dockerfile" "$context" 2>&1 | stage_times "$stages"
	end_phase
	if [[ -n "$committed" ]]; then
		rm -rf "$committed"
	fi
	while IFS= read -r line; do
		timings+=("  $line")
	done <"$stages"
	rm -f "$stages"
	# Each build leaves its builder stage behind as an untagged image of over 1 GB, which a
	# build of another context cannot use; the cache mounts keep what makes rebuilds fast.
	# Only images made on the stand-ins (they inherit the label) are pruned.
	podman image prune --force --filter "label=$LABEL" >/dev/null
	size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
	mkdir -p target/image
	{
		echo "image=$IMAGE"
		echo "size_bytes=$size"
		echo "id=$(podman image inspect --format '{{.Id}}' "$IMAGE")"
		printf 'phase=%s\n' "${timings[@]}"
	} >target/image/summary.env
	say "phases:"
	printf '  %s\n' "${timings[@]}" >&2
	say "$IMAGE: $(awk -v s="$size" 'BEGIN { printf "%.1f MB (%d bytes)", s / 1e6, s }')"
}

main() {
	phase "packages (podman, runc, mmdebstrap)"
	ensure_packages
	end_phase
	bases
	image "$@"
}

case "${1:-build}" in
build) main ;;
--committed) main --committed ;;
bases)
	ensure_packages
	bases
	printf '  %s\n' "${timings[@]}" >&2
	;;
name) echo "$IMAGE" ;;
*)
	echo "usage: $0 [build|--committed|bases|name]" >&2
	exit 2
	;;
esac
