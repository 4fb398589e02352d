// The Kubernetes fault proxy ("controlplane proxy"): a TLS reverse proxy in front of an
// API server that fails chosen requests of the operator's own resource the way a busy
// or flaky cluster does, so tests can watch the operator cope.
//
// It listens on 127.0.0.1 with a CA and serving certificate of its own, made at start,
// and forwards everything to the API server of --upstream-kubeconfig, verifying that
// server's CA. Clients keep their own credentials: the Authorization header passes
// through unchanged (bearer tokens only, client certificates end at the proxy). The
// kubeconfig it writes (--kubeconfig) is the upstream one with every cluster pointed at
// the proxy and its CA, so the same users (admin, service accounts) work through it.
//
// On stdout it prints "CONTROL http://127.0.0.1:<port>", then "READY <kubeconfig>".
// The control address is plain HTTP:
//
//	PUT    /faults  the faults to inject from now on (JSON, see proxyFaults)
//	GET    /faults  the faults in force
//	DELETE /faults  inject nothing
//	GET    /stats   requests seen and faults injected so far, by kind (see proxyStats)
//
// Faults apply only to partnereventsources.eventbridgepartner.dev; everything else is
// forwarded untouched. While the upstream is unreachable (restarting, say) requests are
// answered 502 Bad Gateway, as a load balancer would, and served again once it is back.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// The one resource faults apply to: the operator's own.
var faultResource = schema.GroupResource{Group: "eventbridgepartner.dev", Resource: "partnereventsources"}

// The error codes a write may be answered with, and the reasons the API server gives.
var faultCodes = []int{http.StatusConflict, http.StatusTooManyRequests, http.StatusInternalServerError}

// How long a 429 asks the client to wait (Retry-After and the Status details).
const retryAfterSeconds = 1

// How long the proxy may take to stop serving before it exits regardless.
const proxyStopTimeout = 5 * time.Second

// Kinds of requests to the resource, as counted in proxyStats.Requests.
const (
	kindStatusWrite    = "status_write"    // PATCH/PUT of .../partnereventsources/<name>/status
	kindFinalizerPatch = "finalizer_patch" // PATCH/PUT of .../partnereventsources/<name>: the operator only writes its finalizer that way
	kindWatch          = "watch"           // GET with watch=true (resumed ones included)
	kindResumedWatch   = "resumed_watch"   // a watch that resumes one the proxy broke
	kindList           = "list"
	kindGet            = "get"
	kindCreate         = "create"
	kindDelete         = "delete"
	kindOther          = "other" // other requests to the resource, and every request to anything else
)

// Kinds of faults, as counted in proxyStats.Injected.
const (
	faultStatusWrite    = "status_write"    // a status write answered with an error
	faultFinalizerPatch = "finalizer_patch" // a finalizer patch answered with an error
	faultWatchBreak     = "watch_break"     // a watch cut off mid-stream
	faultWatchGone      = "watch_gone"      // a resumed watch answered with 410 Gone
)

var (
	requestKinds = []string{kindStatusWrite, kindFinalizerPatch, kindWatch, kindResumedWatch, kindList, kindGet, kindCreate, kindDelete, kindOther}
	faultKinds   = []string{faultStatusWrite, faultFinalizerPatch, faultWatchBreak, faultWatchGone}
)

// proxyFaults is what PUT /faults takes. Absent (or null) parts inject nothing. Every
// draw comes from one generator seeded with Seed when the faults are set; requests that
// arrive concurrently take their draws in arrival order.
type proxyFaults struct {
	Seed uint64 `json:"seed"`
	// Status writes answered with an error instead of reaching the API server.
	StatusWrites *errorFault `json:"status_writes,omitempty"`
	// Patches and updates of the object itself (its finalizer) answered with an error.
	FinalizerPatches *errorFault `json:"finalizer_patches,omitempty"`
	// Every watch is cut off at a random time within this range after it starts.
	WatchBreaks *watchBreaks `json:"watch_breaks,omitempty"`
	// A watch that resumes one the proxy broke (the next watch of the same client on the
	// same path and selectors, carrying a resourceVersion other than "" and "0") is
	// answered with a 410 Gone watch event, at this rate. Watches that follow a fresh
	// list are not resumes: failing those too would leave a client no watch at all.
	GoneOnResume *goneOnResume `json:"gone_on_resume,omitempty"`
}

// errorFault answers a share of requests with an error code drawn from Codes.
type errorFault struct {
	// The share of requests answered with an error, within [0, 1].
	Rate float64 `json:"rate"`
	// Among 409 (Conflict), 429 (TooManyRequests, Retry-After: 1) and 500 (InternalError).
	Codes []int `json:"codes"`
	// When above 0, a write to an object that has just failed this many times in a row
	// gets through. Clients back off exponentially per object, so an unbounded run of
	// failures stretches a test by minutes without showing anything new.
	MaxInARow int `json:"max_in_a_row,omitempty"`
}

// watchBreaks cuts every watch after a random time between MinMs and MaxMs.
type watchBreaks struct {
	MinMs int64 `json:"min_ms"`
	MaxMs int64 `json:"max_ms"`
}

// goneOnResume answers a share of resumed watches with 410 Gone.
type goneOnResume struct {
	// Within [0, 1].
	Rate float64 `json:"rate"`
}

// check reports the first thing wrong with the faults.
func (f *proxyFaults) check() error {
	for name, e := range map[string]*errorFault{"status_writes": f.StatusWrites, "finalizer_patches": f.FinalizerPatches} {
		if e == nil {
			continue
		}
		if e.Rate < 0 || e.Rate > 1 {
			return fmt.Errorf("%s.rate %v is not within [0, 1]", name, e.Rate)
		}
		if e.MaxInARow < 0 {
			return fmt.Errorf("%s.max_in_a_row %d is negative", name, e.MaxInARow)
		}
		if len(e.Codes) == 0 {
			return fmt.Errorf("%s.codes is empty", name)
		}
		for _, code := range e.Codes {
			if !slices.Contains(faultCodes, code) {
				return fmt.Errorf("%s.codes: %d is not one of %v", name, code, faultCodes)
			}
		}
	}
	if b := f.WatchBreaks; b != nil && (b.MinMs <= 0 || b.MaxMs < b.MinMs) {
		return fmt.Errorf("watch_breaks: need 0 < min_ms <= max_ms, got %d and %d", b.MinMs, b.MaxMs)
	}
	if g := f.GoneOnResume; g != nil && (g.Rate < 0 || g.Rate > 1) {
		return fmt.Errorf("gone_on_resume.rate %v is not within [0, 1]", g.Rate)
	}
	return nil
}

// proxyStats is what GET /stats returns. Every kind is present, zero or not.
type proxyStats struct {
	// Requests that reached the proxy, by kind (kind* constants).
	Requests map[string]uint64 `json:"requests"`
	// Faults injected, by kind (fault* constants).
	Injected map[string]uint64 `json:"injected"`
	// Error answers injected (status writes and finalizer patches), by HTTP code.
	InjectedByCode map[string]uint64 `json:"injected_by_code"`
	// Requests answered 502 because the upstream could not be reached.
	UpstreamUnavailable uint64 `json:"upstream_unavailable"`
}

func newProxyStats() proxyStats {
	stats := proxyStats{
		Requests:       map[string]uint64{},
		Injected:       map[string]uint64{},
		InjectedByCode: map[string]uint64{},
	}
	for _, kind := range requestKinds {
		stats.Requests[kind] = 0
	}
	for _, kind := range faultKinds {
		stats.Injected[kind] = 0
	}
	for _, code := range faultCodes {
		stats.InjectedByCode[strconv.Itoa(code)] = 0
	}
	return stats
}

// faultProxy holds the faults in force, their generator, the counts, and which
// watches it broke.
type faultProxy struct {
	forward *httputil.ReverseProxy

	mu     sync.Mutex
	faults proxyFaults
	rng    *rand.Rand
	stats  proxyStats
	// Watch streams (see watchKey) the proxy cut off and that have not resumed since.
	broken map[string]bool
	// Errors injected in a row, by request kind and object path, for MaxInARow.
	inARow map[string]int
}

// errWatchBroken is the cause a watch is cancelled with when the proxy breaks it.
var errWatchBroken = errors.New("watch broken by the fault proxy")

// runProxyCommand is "controlplane proxy [flags]".
func runProxyCommand(args []string) {
	flags := flag.NewFlagSet("proxy", flag.ExitOnError)
	upstreamKubeconfig := flags.String("upstream-kubeconfig", "", "kubeconfig of the API server to forward to (required)")
	kubeconfig := flags.String("kubeconfig", "", "where to write the kubeconfig that reaches the upstream through the proxy (required)")
	logFile := flags.String("log-file", "", "append all logs to this file instead of stderr")
	exitOnStdinEOF := flags.Bool("exit-on-stdin-eof", false, "stop when stdin reaches EOF")
	_ = flags.Parse(args)
	if *upstreamKubeconfig == "" || *kubeconfig == "" {
		fatalf("proxy: --upstream-kubeconfig and --kubeconfig are required")
	}
	if *logFile != "" {
		redirectStderr(*logFile)
	}
	if err := runProxy(*upstreamKubeconfig, *kubeconfig, *exitOnStdinEOF); err != nil {
		fatalf("proxy: %v", err)
	}
	klog.Infof("proxy stopped")
	klog.Flush()
}

func runProxy(upstreamKubeconfig, kubeconfigPath string, exitOnStdinEOF bool) error {
	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if exitOnStdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			klog.Infof("stdin closed, stopping")
			cancel()
		}()
	}

	upstream, upstreamTLS, err := upstreamOf(upstreamKubeconfig)
	if err != nil {
		return err
	}
	caPEM, serving, err := proxyCertificates()
	if err != nil {
		return err
	}

	p := &faultProxy{
		stats:  newProxyStats(),
		broken: map[string]bool{},
		inARow: map[string]int{},
		rng:    rand.New(rand.NewPCG(0, 0)),
	}
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(upstream) },
		Transport: &http.Transport{
			TLSClientConfig:     upstreamTLS,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			// Bodies pass through as the upstream encoded them.
			DisableCompression: true,
		},
		// Watches are streams: every event goes out as soon as it arrives.
		FlushInterval: -1,
		ErrorHandler:  p.upstreamFailed,
	}

	apiListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	controlListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	apiServer := &http.Server{
		Handler:           p,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{serving}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	controlServer := &http.Server{Handler: p.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 2)
	go func() { served <- apiServer.ServeTLS(apiListener, "", "") }()
	go func() { served <- controlServer.Serve(controlListener) }()

	server := "https://" + apiListener.Addr().String()
	if err := writeProxyKubeconfig(upstreamKubeconfig, kubeconfigPath, server, caPEM); err != nil {
		return err
	}
	klog.Infof("proxy for %s on %s, control on http://%s", upstream, server, controlListener.Addr())
	fmt.Printf("CONTROL http://%s\n", controlListener.Addr())
	fmt.Printf("READY %s\n", kubeconfigPath)

	select {
	case <-stop.Done():
	case err := <-served:
		return fmt.Errorf("serving stopped: %w", err)
	}
	ctx, cancelShutdown := context.WithTimeout(context.Background(), proxyStopTimeout)
	defer cancelShutdown()
	_ = controlServer.Shutdown(ctx)
	// Open watches never go idle: close them rather than wait.
	_ = apiServer.Close()
	return nil
}

// upstreamOf returns the server of the kubeconfig's current context and a TLS config
// that trusts that server's CA.
func upstreamOf(path string) (*url.URL, *tls.Config, error) {
	config, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	current, ok := config.Contexts[config.CurrentContext]
	if !ok {
		return nil, nil, fmt.Errorf("%s: no current context", path)
	}
	cluster, ok := config.Clusters[current.Cluster]
	if !ok {
		return nil, nil, fmt.Errorf("%s: no cluster %q", path, current.Cluster)
	}
	server, err := url.Parse(cluster.Server)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: server %q: %w", path, cluster.Server, err)
	}
	caData := cluster.CertificateAuthorityData
	if len(caData) == 0 && cluster.CertificateAuthority != "" {
		if caData, err = os.ReadFile(cluster.CertificateAuthority); err != nil {
			return nil, nil, err
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caData) {
		return nil, nil, fmt.Errorf("%s: no CA certificate for %s", path, cluster.Server)
	}
	return server, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// proxyCertificates makes a CA and, signed by it, a serving certificate for 127.0.0.1
// and localhost; it returns the CA's PEM (for kubeconfigs) and the serving pair.
func proxyCertificates() ([]byte, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "controlplane fault proxy CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(cryptorand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "controlplane fault proxy"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(cryptorand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	serving := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), serving, nil
}

// writeProxyKubeconfig writes the upstream kubeconfig with every cluster served by the
// proxy: same users and contexts, the proxy's server and CA.
func writeProxyKubeconfig(upstreamPath, path, server string, caPEM []byte) error {
	config, err := clientcmd.LoadFromFile(upstreamPath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", upstreamPath, err)
	}
	for _, cluster := range config.Clusters {
		cluster.Server = server
		cluster.CertificateAuthority = ""
		cluster.CertificateAuthorityData = caPEM
		cluster.InsecureSkipTLSVerify = false
		cluster.TLSServerName = ""
	}
	return clientcmd.WriteToFile(*config, path)
}

// request is what the proxy needs to know of one request.
type request struct {
	kind string
	// The object's name and path (without subresource), for requests to one object.
	name, object string
	// For watches: the resourceVersion it starts from, and which stream it continues.
	resourceVersion string
	watchKey        string
}

// classify sorts a request into one of the request kinds.
func classify(r *http.Request) request {
	prefix := "/apis/" + faultResource.Group + "/"
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		return request{kind: kindOther}
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	// <version>[/watch][/namespaces/<ns>]/partnereventsources[/<name>[/<subresource>]]
	if len(parts) < 2 {
		return request{kind: kindOther}
	}
	parts = parts[1:]
	watchPath := parts[0] == "watch"
	if watchPath {
		parts = parts[1:]
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	if len(parts) == 0 || parts[0] != faultResource.Resource || len(parts) > 3 {
		return request{kind: kindOther}
	}
	query := r.URL.Query()
	watch := watchPath || query.Get("watch") == "true" || query.Get("watch") == "1"
	object := ""
	if len(parts) >= 2 {
		object = strings.TrimSuffix(r.URL.Path, "/status")
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet && watch:
		return request{kind: kindWatch, resourceVersion: query.Get("resourceVersion"), watchKey: watchKey(r)}
	case len(parts) == 1 && r.Method == http.MethodGet:
		return request{kind: kindList}
	case len(parts) == 1 && r.Method == http.MethodPost:
		return request{kind: kindCreate}
	case len(parts) == 1 && r.Method == http.MethodDelete:
		return request{kind: kindDelete}
	case len(parts) == 2 && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		return request{kind: kindFinalizerPatch, name: parts[1], object: object}
	case len(parts) == 2 && r.Method == http.MethodGet:
		return request{kind: kindGet, name: parts[1]}
	case len(parts) == 2 && r.Method == http.MethodDelete:
		return request{kind: kindDelete, name: parts[1]}
	case len(parts) == 3 && parts[2] == "status" && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		return request{kind: kindStatusWrite, name: parts[1], object: object}
	case len(parts) == 3 && parts[2] == "status" && r.Method == http.MethodGet:
		return request{kind: kindGet, name: parts[1]}
	}
	return request{kind: kindOther}
}

// watchKey names the stream a watch belongs to: its client, path and selectors. A
// client resuming a watch asks for the same again, from a later resourceVersion.
func watchKey(r *http.Request) string {
	query := r.URL.Query()
	return strings.Join([]string{
		r.Header.Get("Authorization"),
		r.UserAgent(),
		r.URL.Path,
		query.Get("labelSelector"),
		query.Get("fieldSelector"),
	}, "\x00")
}

// ServeHTTP injects the faults in force into one request, or forwards it.
func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := classify(r)
	switch req.kind {
	case kindStatusWrite, kindFinalizerPatch:
		if code, ok := p.drawWriteError(req); ok {
			klog.Infof("injected %d into %s %s (%s)", code, r.Method, r.URL.Path, req.kind)
			writeStatusError(w, code, req.name)
			return
		}
	case kindWatch:
		gone, breakAfter := p.drawWatchFaults(req)
		if gone {
			klog.Infof("injected 410 Gone into the resumed watch %s from resourceVersion %s", r.URL.Path, req.resourceVersion)
			writeGone(w, req.resourceVersion)
			return
		}
		if breakAfter > 0 {
			ctx, cancel := context.WithCancelCause(r.Context())
			defer cancel(nil)
			timer := time.AfterFunc(breakAfter, func() {
				p.watchBroken(req.watchKey)
				klog.Infof("breaking the watch %s after %v", r.URL.Path, breakAfter)
				cancel(errWatchBroken)
			})
			defer timer.Stop()
			r = r.WithContext(ctx)
		}
	default:
		p.count(req.kind)
	}
	// Cancelling a streaming response makes the reverse proxy abort the connection
	// (panic(http.ErrAbortHandler), which the server recovers quietly): to the client the
	// watch breaks as if the network had dropped it.
	p.forward.ServeHTTP(w, r)
}

// count counts a request that takes no fault.
func (p *faultProxy) count(kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests[kind]++
}

// drawWriteError counts a status write or finalizer patch and decides whether it fails,
// and with which code.
func (p *faultProxy) drawWriteError(req request) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests[req.kind]++
	fault := p.faults.StatusWrites
	if req.kind == kindFinalizerPatch {
		fault = p.faults.FinalizerPatches
	}
	key := req.kind + " " + req.object
	if fault == nil || p.rng.Float64() >= fault.Rate {
		delete(p.inARow, key)
		return 0, false
	}
	if fault.MaxInARow > 0 && p.inARow[key] >= fault.MaxInARow {
		delete(p.inARow, key)
		return 0, false
	}
	p.inARow[key]++
	code := fault.Codes[p.rng.IntN(len(fault.Codes))]
	p.stats.Injected[req.kind]++
	p.stats.InjectedByCode[strconv.Itoa(code)]++
	return code, true
}

// drawWatchFaults counts a watch and decides whether it is answered with 410 Gone (a
// resumed watch only), or else after how long it breaks (0: it does not).
func (p *faultProxy) drawWatchFaults(req request) (gone bool, breakAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests[kindWatch]++
	resumed := p.broken[req.watchKey] && req.resourceVersion != "" && req.resourceVersion != "0"
	delete(p.broken, req.watchKey)
	if resumed {
		p.stats.Requests[kindResumedWatch]++
		if g := p.faults.GoneOnResume; g != nil && p.rng.Float64() < g.Rate {
			p.stats.Injected[faultWatchGone]++
			return true, 0
		}
	}
	if b := p.faults.WatchBreaks; b != nil {
		ms := b.MinMs + p.rng.Int64N(b.MaxMs-b.MinMs+1)
		return false, time.Duration(ms) * time.Millisecond
	}
	return false, 0
}

// watchBroken records that the proxy cut off a watch of this stream.
func (p *faultProxy) watchBroken(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Injected[faultWatchBreak]++
	p.broken[key] = true
}

// upstreamFailed answers a request the upstream could not: 502, as a load balancer
// would, unless the proxy itself broke the watch or the client went away.
func (p *faultProxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(context.Cause(r.Context()), errWatchBroken) {
		panic(http.ErrAbortHandler)
	}
	if r.Context().Err() != nil {
		return
	}
	p.mu.Lock()
	p.stats.UpstreamUnavailable++
	p.mu.Unlock()
	klog.Infof("upstream unavailable for %s %s: %v", r.Method, r.URL.Path, err)
	http.Error(w, "upstream unavailable: "+err.Error(), http.StatusBadGateway)
}

// writeStatusError answers with the Status the API server sends for this code.
func writeStatusError(w http.ResponseWriter, code int, name string) {
	cause := errors.New("injected by the Kubernetes fault proxy")
	var status *apierrors.StatusError
	switch code {
	case http.StatusConflict:
		status = apierrors.NewConflict(faultResource, name, cause)
	case http.StatusTooManyRequests:
		status = apierrors.NewTooManyRequests("too many requests, please try again later (injected by the Kubernetes fault proxy)", retryAfterSeconds)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	default:
		status = apierrors.NewInternalError(cause)
	}
	body := status.Status()
	body.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	writeJSON(w, code, body)
}

// writeGone answers a watch the way the API server does when its resourceVersion is
// too old: 200, one ERROR event carrying a 410 Expired Status, end of stream.
func writeGone(w http.ResponseWriter, resourceVersion string) {
	event := map[string]any{
		"type": "ERROR",
		"object": metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status:   metav1.StatusFailure,
			Message:  fmt.Sprintf("too old resource version: %s (injected by the Kubernetes fault proxy)", resourceVersion),
			Reason:   metav1.StatusReasonExpired,
			Code:     http.StatusGone,
		},
	}
	writeJSON(w, http.StatusOK, event)
}

// writeJSON writes one JSON value with its length, so simple clients can read it.
func writeJSON(w http.ResponseWriter, code int, value any) {
	body, err := json.Marshal(value)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// controlHandler serves the control address: /faults and /stats.
func (p *faultProxy) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		faults := p.faults
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, faults)
	})
	mux.HandleFunc("PUT /faults", func(w http.ResponseWriter, r *http.Request) {
		var faults proxyFaults
		decoder := json.NewDecoder(r.Body)
		decoder.DisallowUnknownFields()
		if err := decoder.Decode(&faults); err != nil {
			http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := faults.check(); err != nil {
			http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		p.setFaults(faults)
		writeJSON(w, http.StatusOK, faults)
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		p.setFaults(proxyFaults{})
		writeJSON(w, http.StatusOK, proxyFaults{})
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		body, err := json.Marshal(p.stats)
		p.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, http.StatusOK, json.RawMessage(body))
	})
	return mux
}

// setFaults puts faults in force with a generator seeded afresh from their seed.
// Watches already running keep the break time they drew.
func (p *faultProxy) setFaults(faults proxyFaults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = faults
	p.rng = rand.New(rand.NewPCG(faults.Seed, faults.Seed^0x9e3779b97f4a7c15))
	p.inARow = map[string]int{}
	encoded, _ := json.Marshal(faults)
	klog.Infof("faults now %s", encoded)
}
