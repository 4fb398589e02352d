// Command controlplane runs a real Kubernetes control plane for integration tests:
// embedded etcd and the release's kube-apiserver in one process, on 127.0.0.1 only,
// with RBAC on and service-account tokens signed. There is no controller-manager,
// scheduler or kubelet: objects are stored and served, nothing reconciles them.
//
// When the API server is ready it writes an admin kubeconfig and prints one line,
// "READY <kubeconfig path>", on stdout; everything else goes to stderr or --log-file.
// It stops, and removes a data dir it created, on SIGTERM/SIGINT and, with
// --exit-on-stdin-eof, when its stdin closes, so it dies with the test that started it.
//
// A data dir given with --dir survives the process, and a later start with the same
// --dir is the same cluster again: the same ports, serving certificate, service-account
// signing key, admin token and etcd data. So a test can restart the control plane and
// keep its clients, kubeconfigs and service-account tokens.
//
// "controlplane proxy ..." runs the fault-injecting proxy of proxy.go instead.
package main

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

const (
	// How long etcd and the API server may take to become ready.
	startTimeout = 2 * time.Minute
	// How long each may take to stop before the process exits regardless.
	stopTimeout = 30 * time.Second
	// Issuer (and audience) of service-account tokens, as in a real cluster.
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "proxy" {
		runProxyCommand(os.Args[2:])
		return
	}
	dir := flag.String("dir", "", "data dir for etcd, ports, keys and certificates, reused by a later start with the same dir (default: a temporary dir, removed on exit)")
	kubeconfig := flag.String("kubeconfig", "", "where to write the admin kubeconfig (default: <dir>/admin.kubeconfig)")
	logFile := flag.String("log-file", "", "append all logs to this file instead of stderr")
	exitOnStdinEOF := flag.Bool("exit-on-stdin-eof", false, "stop when stdin reaches EOF")
	flag.Parse()

	// This program logs through klog, as the API server does, so the log reads as one.
	if *logFile != "" {
		redirectStderr(*logFile)
	}

	removeDir := false
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "controlplane-")
		if err != nil {
			fatalf("creating a data dir: %v", err)
		}
		*dir, removeDir = tmp, true
	}
	if *kubeconfig == "" {
		*kubeconfig = filepath.Join(*dir, "admin.kubeconfig")
	}

	// Only a dir that outlives this process is started again, so only its ports need to
	// stay free in between.
	err := run(*dir, *kubeconfig, *exitOnStdinEOF, !removeDir)
	if removeDir {
		if rmErr := os.RemoveAll(*dir); rmErr != nil {
			klog.Infof("removing %s: %v", *dir, rmErr)
		}
	}
	if err != nil {
		fatalf("%v", err)
	}
	klog.Infof("stopped")
	klog.Flush()
}

func run(dir, kubeconfigPath string, exitOnStdinEOF, persistent bool) error {
	if exitOnStdinEOF {
		// The API server stops on SIGTERM (its command installs that handler itself and
		// has no other way in), so stdin's EOF becomes a SIGTERM to this process.
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			klog.Infof("stdin closed, stopping")
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}()
	}
	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ports, err := loadOrChoosePorts(filepath.Join(dir, "ports.json"), persistent)
	if err != nil {
		return err
	}
	etcdClientPort, etcdPeerPort, apiPort := ports.EtcdClient, ports.EtcdPeer, ports.APIServer

	etcd, err := startEtcd(filepath.Join(dir, "etcd"), etcdClientPort, etcdPeerPort)
	if err != nil {
		return err
	}
	defer stopEtcd(etcd)

	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return err
	}
	saKey, err := serviceAccountKey(filepath.Join(secrets, "service-account.key"))
	if err != nil {
		return err
	}
	adminToken, tokenFile, err := adminTokenFile(filepath.Join(secrets, "tokens.csv"))
	if err != nil {
		return err
	}
	// The API server generates apiserver.crt and apiserver.key here only when they are
	// missing, so a restart serves the same certificate and its CA.
	certDir := filepath.Join(dir, "certs")

	// Without a controller-manager, scheduler or kubelet, objects are only stored and
	// served. The endpoint reconciler is off: it would publish 127.0.0.1 as the
	// "kubernetes" Service's endpoint, and Endpoints validation rejects loopback.
	args := []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdClientPort),
		"--cert-dir=" + certDir,
		"--authorization-mode=RBAC",
		"--token-auth-file=" + tokenFile,
		"--service-account-issuer=" + serviceAccountIssuer,
		"--api-audiences=" + serviceAccountIssuer,
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
	}
	klog.Infof("kube-apiserver %v", args)
	apiserver := app.NewAPIServerCommand()
	apiserver.SetArgs(args)
	apiserverDone := make(chan error, 1)
	go func() { apiserverDone <- apiserver.Execute() }()

	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := waitReady(stop, server, adminToken, apiserverDone); err != nil {
		return err
	}
	caData, err := servingCA(filepath.Join(certDir, "apiserver.crt"))
	if err != nil {
		return err
	}
	if err := writeKubeconfig(kubeconfigPath, server, caData, adminToken); err != nil {
		return err
	}
	fmt.Printf("READY %s\n", kubeconfigPath)

	select {
	case <-stop.Done():
	case err := <-apiserverDone:
		return fmt.Errorf("kube-apiserver stopped on its own: %v", err)
	}
	klog.Infof("stopping kube-apiserver")
	select {
	case err := <-apiserverDone:
		if err != nil {
			klog.Infof("kube-apiserver: %v", err)
		}
	case <-time.After(stopTimeout):
		klog.Infof("kube-apiserver did not stop within %v", stopTimeout)
	}
	return nil
}

func fatalf(format string, args ...any) {
	klog.Errorf(format, args...)
	klog.Flush()
	os.Exit(1)
}

// redirectStderr points file descriptor 2 at path, so that the API server's, etcd's
// and the Go runtime's output (panics included) all land there.
func redirectStderr(path string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fatalf("opening log file: %v", err)
	}
	if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
		fatalf("redirecting stderr to %s: %v", path, err)
	}
}

// controlPlanePorts are the ports one control plane listens on, kept in its data dir
// so that a restart listens where its clients already point.
type controlPlanePorts struct {
	EtcdClient int `json:"etcdClient"`
	EtcdPeer   int `json:"etcdPeer"`
	APIServer  int `json:"apiServer"`
}

// loadOrChoosePorts returns the ports recorded in path by an earlier start, or chooses
// and records new ones. Ports of a persistent data dir come from below the kernel's
// ephemeral range: while the control plane is down for a restart, no outgoing
// connection and no other program's ":0" listener can be handed one of them.
func loadOrChoosePorts(path string, persistent bool) (controlPlanePorts, error) {
	var ports controlPlanePorts
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &ports); err != nil {
			return ports, fmt.Errorf("reading %s: %w", path, err)
		}
		if ports.EtcdClient == 0 || ports.EtcdPeer == 0 || ports.APIServer == 0 {
			return ports, fmt.Errorf("%s lacks a port: %s", path, data)
		}
		klog.Infof("reusing the ports of %s", path)
		return ports, nil
	case !errors.Is(err, os.ErrNotExist):
		return ports, err
	}
	var chosen []int
	if persistent {
		chosen, err = freePortsBelowEphemeral(3)
	} else {
		chosen, err = freePorts(3)
	}
	if err != nil {
		return ports, err
	}
	ports = controlPlanePorts{EtcdClient: chosen[0], EtcdPeer: chosen[1], APIServer: chosen[2]}
	data, err = json.Marshal(ports)
	if err != nil {
		return ports, err
	}
	return ports, os.WriteFile(path, append(data, '\n'), 0o600)
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago. All
// listeners stay open until every port is chosen, so the n ports differ.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Where freePortsBelowEphemeral looks: above the well-known and most registered
// services' ports, below the ephemeral range (read from the kernel, this when unknown).
const (
	lowestStablePort      = 10000
	defaultEphemeralFirst = 32768
)

// freePortsBelowEphemeral returns n distinct ports, free on 127.0.0.1 a moment ago, at
// random between lowestStablePort and the first ephemeral port. Go listeners set
// SO_REUSEADDR, so a port stays usable for its owner across restarts even while
// connections of the previous process linger in TIME_WAIT.
func freePortsBelowEphemeral(n int) ([]int, error) {
	first := defaultEphemeralFirst
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if fields := strings.Fields(string(data)); len(fields) == 2 {
			if v, err := strconv.Atoi(fields[0]); err == nil && v > lowestStablePort+n {
				first = v
			}
		}
	}
	ports := make([]int, 0, n)
	for attempt := 0; len(ports) < n; attempt++ {
		if attempt == 1000 {
			return nil, fmt.Errorf("no %d free ports between %d and %d", n, lowestStablePort, first)
		}
		port := lowestStablePort + rand.IntN(first-lowestStablePort)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		defer l.Close()
		ports = append(ports, port)
	}
	return ports, nil
}

// startEtcd runs a single-member etcd in this process and waits until it serves.
func startEtcd(dir string, clientPort, peerPort int) (*embed.Etcd, error) {
	clientURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}
	cfg := embed.NewConfig()
	cfg.Name = "controlplane"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	cfg.LogOutputs = []string{"stderr"}
	cfg.LogLevel = "warn"
	// Skipping fsync keeps writes fast. Test data never has to survive the machine: what
	// etcd wrote stays in the page cache when the process stops, even when it is killed.
	cfg.UnsafeNoFsync = true

	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd: %w", err)
	}
	select {
	case <-etcd.Server.ReadyNotify():
		klog.Infof("etcd ready on %s", clientURL.String())
		return etcd, nil
	case err := <-etcd.Err():
		etcd.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	case <-time.After(startTimeout):
		etcd.Close()
		return nil, fmt.Errorf("etcd was not ready within %v", startTimeout)
	}
}

func stopEtcd(etcd *embed.Etcd) {
	done := make(chan struct{})
	go func() { etcd.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		klog.Infof("etcd did not stop within %v", stopTimeout)
	}
}

// serviceAccountKey returns path, holding an RSA key: the one an earlier start wrote, or
// a fresh one. The API server signs tokens with it and, given the same file as
// --service-account-key-file, verifies them with its public half, so tokens issued
// before a restart stay valid after it.
func serviceAccountKey(path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil {
		if block, _ := pem.Decode(data); block != nil && block.Type == "RSA PRIVATE KEY" {
			if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
				klog.Infof("reusing the service-account key %s", path)
				return path, nil
			}
		}
		return "", fmt.Errorf("%s holds no RSA private key", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	key, err := rsa.GenerateKey(cryptorand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("generating the service-account key: %w", err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	return path, os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

// adminTokenFile returns the admin token of the static token file at path, writing the
// file first unless an earlier start did: one random token for user admin in group
// system:masters, which the default RBAC policy binds to cluster-admin.
func adminTokenFile(path string) (token, file string, err error) {
	if data, err := os.ReadFile(path); err == nil {
		token, _, _ = strings.Cut(strings.TrimSpace(string(data)), ",")
		if token == "" {
			return "", "", fmt.Errorf("%s holds no token", path)
		}
		klog.Infof("reusing the admin token of %s", path)
		return token, path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	raw := make([]byte, 32)
	if _, err := cryptorand.Read(raw); err != nil {
		return "", "", err
	}
	token = hex.EncodeToString(raw)
	line := token + `,admin,admin,"system:masters"` + "\n"
	return token, path, os.WriteFile(path, []byte(line), 0o600)
}

// waitReady polls /readyz as the admin until the API server answers ok, the server
// stops, or the start times out.
func waitReady(stop context.Context, server, token string, apiserverDone <-chan error) error {
	client := &http.Client{
		Timeout: 5 * time.Second,
		// The serving certificate is only read after the server is up.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	deadline := time.After(startTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(stop, http.MethodGet, server+"/readyz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == "ok" {
				klog.Infof("kube-apiserver ready on %s", server)
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-stop.Done():
			return errors.New("stopped before kube-apiserver was ready")
		case err := <-apiserverDone:
			return fmt.Errorf("kube-apiserver exited before it was ready: %v", err)
		case <-deadline:
			return fmt.Errorf("kube-apiserver was not ready within %v", startTimeout)
		}
	}
}

// servingCA returns the certificate that signed the API server's self-generated
// serving certificate: the file holds the serving certificate followed by its CA.
func servingCA(certFile string) ([]byte, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading the serving certificate: %w", err)
	}
	var last *pem.Block
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			last = block
		}
	}
	if last == nil {
		return nil, fmt.Errorf("no certificate in %s", certFile)
	}
	return pem.EncodeToMemory(last), nil
}

func writeKubeconfig(path, server string, caData []byte, token string) error {
	config := clientcmdapi.NewConfig()
	config.Clusters["controlplane"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caData}
	config.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	config.Contexts["admin"] = &clientcmdapi.Context{Cluster: "controlplane", AuthInfo: "admin"}
	config.CurrentContext = "admin"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*config, path)
}
