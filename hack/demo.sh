#!/usr/bin/env bash
# make demo: a local control plane, the EventBridge emulator and the operator, with the
# example PartnerEventSource applied. Stays up until Ctrl-C or SIGTERM, then stops everything.
#
# A second shell joins in with:  source target/demo/env
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
demo="$root/target/demo"
partner_key="AKIAPARTNERDEMO00001"

say() { echo "demo: $*" >&2; }

pids=()
cleanup() {
	trap - INT TERM EXIT
	say "stopping"
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$demo/data"
	say "stopped"
	exit "${1:-0}"
}
trap cleanup INT TERM EXIT

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
"$bin_dir/controlplane" --dir "$demo/data" --kubeconfig "$demo/kubeconfig" \
	--log-file "$demo/controlplane.log" >"$demo/controlplane.out" 2>&1 &
pids+=($!)
wait_line "$demo/controlplane.out" READY 180 >/dev/null

say "starting the EventBridge emulator"
target/debug/eventbridge-partner-emulator --region eu-west-1 >"$demo/emulator.out" 2>"$demo/emulator.log" &
pids+=($!)
endpoint="$(wait_line "$demo/emulator.out" LISTENING 30 | cut -d' ' -f2)"

export KUBECONFIG="$demo/kubeconfig"
export PATH="$bin_dir:$PATH"
kubectl apply --server-side -f crds/partnereventsources.eventbridgepartner.dev.yaml >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/partnereventsources.eventbridgepartner.dev >/dev/null
kubectl apply -f examples/namespace.yaml >/dev/null

say "starting the operator"
AWS_ACCESS_KEY_ID="$partner_key" AWS_SECRET_ACCESS_KEY=demo-secret AWS_EC2_METADATA_DISABLED=true \
	target/debug/eventbridge-partner-operator run \
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
  kubectl describe pes -n tenants customer-4711-orders      # status, conditions, Events
  kubectl apply -f examples/invalid/account-11-digits.yaml   # rejected: names spec.account
  curl -s \$METRICS_URL | grep eventbridge_partner_operator_aws_requests_total
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
