#!/usr/bin/env bash
# make demo: a local control plane, the EventBridge emulator and the operator, with every
# CRD a user installs (crds/*.yaml, the files deploy/operator.yaml and the chart carry) and
# the example PartnerEventSource applied. Stays up until Ctrl-C (SIGINT) or SIGTERM, then
# stops everything and exits 0; it exits non-zero when a step fails or a component dies.
#
# A second shell joins in with:  source target/demo/env
# (the README's quick start; tests/demo.rs runs it as written).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
demo="$root/target/demo"
partner_key="AKIAPARTNERDEMO00001"

say() { echo "demo: $*" >&2; }

# One demo at a time: it owns target/demo. Taken before the traps are set, so a refused
# second demo leaves the running one's files alone. The components inherit the lock, so it is
# held as long as any of them runs.
mkdir -p "$root/target"
exec 8>"$root/target/demo.lock"
if ! flock -n 8; then
	say "another demo is running (it holds target/demo.lock); stop it first"
	exit 1
fi

pids=()
# Stops the components and exits with $1. Ctrl-C and SIGTERM are a normal end (0); the exit
# trap passes on the status of the step that failed.
cleanup() {
	local status="$1" pid
	# A second Ctrl-C does not cut the stop short (the components stop within their own
	# bounds: the control plane gives the API server and etcd 30 s each, the operator 20 s).
	trap '' INT TERM
	trap - EXIT
	say "stopping"
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	# The env names ports nothing listens on any more.
	rm -rf "$demo/data" "$demo/env"
	if ((status == 0)); then
		say "stopped"
	else
		say "stopped (exit $status)"
	fi
	exit "$status"
}
trap 'cleanup $?' EXIT
trap 'cleanup 0' INT TERM

# Runs a component in a session of its own, so a Ctrl-C in the terminal (SIGINT to the
# foreground process group) reaches this script alone and cleanup stops the components in
# order. Without it they get the SIGINT too, and one that exits at once can wake `wait -n`
# below before bash runs the INT trap: the demo then reports "a component exited" and exits 1.
# The parent-death signal stops a component when this script is killed outright (SIGKILL).
detached() {
	# exec: the async subshell becomes the component, so $! is its pid and this script its
	# parent. setsid does not fork here (the subshell leads no process group).
	exec setsid setpriv --pdeathsig TERM "$@"
}

# Reads lines from a file until one starts with $2, for at most $3 seconds; prints it.
wait_line() {
	local file="$1" prefix="$2" deadline=$((SECONDS + $3))
	while ((SECONDS < deadline)); do
		if line=$(grep -m1 "^$prefix" "$file" 2>/dev/null); then
			echo "$line"
			return 0
		fi
		sleep 0.2
	done
	say "timed out waiting for '$prefix' in $file"
	tail -n 30 "$file" >&2 || true
	return 1
}

say "building the operator and the emulator"
cargo build --quiet --workspace --bins
bin_dir="$(hack/controlplane.sh build)"

rm -rf "$demo"
mkdir -p "$demo/data"

say "starting the control plane (kube-apiserver with etcd)"
detached "$bin_dir/controlplane" --dir "$demo/data" --kubeconfig "$demo/kubeconfig" \
	--log-file "$demo/controlplane.log" >"$demo/controlplane.out" 2>&1 &
pids+=($!)
wait_line "$demo/controlplane.out" READY 180 >/dev/null

say "starting the EventBridge emulator"
detached target/debug/eventbridge-partner-emulator --region eu-west-1 >"$demo/emulator.out" 2>"$demo/emulator.log" &
pids+=($!)
endpoint="$(wait_line "$demo/emulator.out" LISTENING 30 | cut -d' ' -f2)"

export KUBECONFIG="$demo/kubeconfig"
export PATH="$bin_dir:$PATH"
# What a user installs: every CRD, from the files deploy/operator.yaml and the chart carry.
# The operator watches PartnerEventSources and PartnerAccounts and reconciles nothing until
# both are served.
say "installing the CRDs (crds/*.yaml)"
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null
kubectl apply -f examples/namespace.yaml >/dev/null

say "starting the operator"
AWS_ACCESS_KEY_ID="$partner_key" AWS_SECRET_ACCESS_KEY=demo-secret AWS_EC2_METADATA_DISABLED=true \
	detached target/debug/eventbridge-partner-operator run \
	--region eu-west-1 --aws-endpoint-url "$endpoint" \
	--http-addr 127.0.0.1:0 --log-format json --resync-interval 10s \
	--lease-namespace default >"$demo/operator.log" 2>&1 &
pids+=($!)
http_addr=""
deadline=$((SECONDS + 60))
until http_addr="$(grep -m1 -o '"addr":"[^"]*"' "$demo/operator.log" | cut -d'"' -f4)" && [[ -n "$http_addr" ]]; do
	if ((SECONDS >= deadline)); then
		say "the operator did not start"
		tail -n 30 "$demo/operator.log" >&2
		exit 1
	fi
	sleep 0.2
done

cat >"$demo/env" <<ENV
export KUBECONFIG="$demo/kubeconfig"
export AWS_ENDPOINT_URL="$endpoint"
export AWS_REGION=eu-west-1
export PARTNER_ACCOUNT_ID="$partner_key"
export METRICS_URL="http://$http_addr/metrics"
export PATH="$bin_dir:\$PATH"
ENV

kubectl apply -f examples/partnereventsource.yaml >/dev/null
kubectl wait --for=condition=Ready --timeout=60s -n tenants pes/customer-4711-orders >/dev/null
kubectl get pes -n tenants -o wide

cat <<MSG

The operator is running. In another shell:

  source target/demo/env
  kubectl get pes -n tenants -o wide
  curl -s "\$METRICS_URL" | grep eventbridge_partner_operator_aws_requests_total

and more to try there:

  kubectl describe pes -n tenants customer-4711-orders      # status, conditions, Events
  kubectl apply -f examples/invalid/account-11-digits.yaml   # rejected: names spec.account
  # the customer activates the source (as if it created the matching event bus); within
  # the 10 s resync the object shows STATE ACTIVE and an Activated Event:
  curl -s -X POST \$AWS_ENDPOINT_URL/_emulator/sources/activate -d '{"name":"aws.partner/acme.com/customer-4711/orders"}'
  # or act as the customer with any AWS SDK or CLI: the emulator takes a 12-digit access key
  # id as the caller's account (AWS_ACCESS_KEY_ID=123456789012), e.g. CreateEventBus with
  # --name and --event-source-name set to the source name.
  kubectl delete pes -n tenants customer-4711-orders           # deletes the source too

Logs: $demo/operator.log, $demo/controlplane.log, $demo/emulator.log
Press Ctrl-C to stop everything.
MSG

wait -n "${pids[@]}" || true
say "a component exited; see the logs in $demo"
cleanup 1
