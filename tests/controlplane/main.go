// Command controlplane runs a real Kubernetes control plane for integration tests:
// embedded etcd and the release's kube-apiserver in one process, on 127.0.0.1 only,
// with RBAC on and service-account tokens signed. There is no controller-manager,
// scheduler or kubelet: objects are stored and served, nothing reconciles them.
//
// When the API server is ready it writes an admin kubeconfig and prints one line,
// "READY <kubeconfig path>", on stdout; everything else goes to stderr or --log-file.
// It stops, and removes a data dir it created, on SIGTERM/SIGINT and, with
// --exit-on-stdin-eof, when its stdin closes, so it dies with the test that started it.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
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
	dir := flag.String("dir", "", "data dir for etcd, keys and certificates (default: a temporary dir, removed on exit)")
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

	err := run(*dir, *kubeconfig, *exitOnStdinEOF)
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

func run(dir, kubeconfigPath string, exitOnStdinEOF bool) error {
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

	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClientPort, etcdPeerPort, apiPort := ports[0], ports[1], ports[2]

	etcd, err := startEtcd(filepath.Join(dir, "etcd"), etcdClientPort, etcdPeerPort)
	if err != nil {
		return err
	}
	defer stopEtcd(etcd)

	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return err
	}
	saKey, err := writeServiceAccountKey(filepath.Join(secrets, "service-account.key"))
	if err != nil {
		return err
	}
	adminToken, tokenFile, err := writeTokenFile(filepath.Join(secrets, "tokens.csv"))
	if err != nil {
		return err
	}
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
	// Test data is thrown away with the process; skipping fsync keeps writes fast.
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

// writeServiceAccountKey writes a fresh RSA key; the API server signs tokens with it
// and, given the same file as --service-account-key-file, verifies them with its
// public half.
func writeServiceAccountKey(path string) (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("generating the service-account key: %w", err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	return path, os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

// writeTokenFile writes a static token file with one random admin token in group
// system:masters, which the default RBAC policy binds to cluster-admin.
func writeTokenFile(path string) (token, file string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
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
