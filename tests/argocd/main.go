// Command argocd-health assesses the health of Kubernetes objects with Argo CD's own code,
// configured from an argocd-cm ConfigMap, so the project's health check for
// PartnerEventSource is judged by the Go code an Argo CD application controller runs rather
// than by a stand-alone Lua interpreter.
//
//	argocd-health --argocd-cm examples/argocd/argocd-cm.yaml [FILE ...]
//
// The ConfigMap is loaded into a fake Kubernetes clientset and read back through Argo CD's
// settings manager (util/settings), which turns its resource.customizations keys into
// resource overrides exactly as a running Argo CD does. Each object is then assessed by
// gitops-engine's health.GetResourceHealth with those overrides (util/lua), the same call
// the application controller makes for every live resource.
//
// Objects come from the FILEs, or stdin when there are none: JSON or YAML, several documents
// per file, and a List (such as `kubectl get -o json` prints for many objects) counts as its
// items. The result is one JSON array on stdout with, per object in input order, its kind,
// namespace, name, health status and message, and the error Argo CD would log, if any.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

// verdict is what the program prints for one object.
type verdict struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Status is empty when Argo CD has no health check for the object's kind.
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

func main() {
	configMapPath := flag.String("argocd-cm", "", "the argocd-cm ConfigMap (YAML or JSON) holding the resource customizations")
	flag.Parse()
	if *configMapPath == "" {
		fail(errors.New("--argocd-cm is required"))
	}
	// The settings manager logs through logrus; keep stdout for the verdicts.
	log.SetOutput(os.Stderr)
	log.SetLevel(log.WarnLevel)

	overrides, err := resourceOverrides(*configMapPath)
	if err != nil {
		fail(err)
	}

	var objects []*unstructured.Unstructured
	if flag.NArg() == 0 {
		if objects, err = readObjects(os.Stdin, "stdin"); err != nil {
			fail(err)
		}
	}
	for _, path := range flag.Args() {
		file, err := os.Open(path)
		if err != nil {
			fail(err)
		}
		read, err := readObjects(file, path)
		file.Close()
		if err != nil {
			fail(err)
		}
		objects = append(objects, read...)
	}

	verdicts := make([]verdict, 0, len(objects))
	for _, obj := range objects {
		v := verdict{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
		status, err := health.GetResourceHealth(obj, lua.ResourceHealthOverrides(overrides))
		if status != nil {
			v.Status = string(status.Status)
			v.Message = status.Message
		}
		if err != nil {
			v.Error = err.Error()
		}
		verdicts = append(verdicts, v)
	}
	out, err := json.MarshalIndent(verdicts, "", "  ")
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

// resourceOverrides reads the ConfigMap at path and returns the resource overrides Argo
// CD's settings manager builds from it.
func resourceOverrides(path string) (map[string]v1alpha1.ResourceOverride, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var configMap corev1.ConfigMap
	if err := yaml.UnmarshalStrict(text, &configMap); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if configMap.Kind != "ConfigMap" || configMap.Name != common.ArgoCDConfigMapName {
		return nil, fmt.Errorf("%s: want ConfigMap %s, got %s %s", path, common.ArgoCDConfigMapName, configMap.Kind, configMap.Name)
	}
	namespace := configMap.Namespace
	if namespace == "" {
		namespace = "argocd"
		configMap.Namespace = namespace
	}
	// The settings manager watches argocd-cm and argocd-secret (labelled part-of argocd,
	// as an installation labels them) in Argo CD's namespace.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name:      common.ArgoCDSecretName,
		Namespace: namespace,
		Labels:    map[string]string{"app.kubernetes.io/part-of": "argocd"},
	}}
	if configMap.Labels == nil {
		configMap.Labels = map[string]string{}
	}
	configMap.Labels["app.kubernetes.io/part-of"] = "argocd"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	manager := settings.NewSettingsManager(ctx, fake.NewClientset(&configMap, secret), namespace)
	overrides, err := manager.GetResourceOverrides()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return overrides, nil
}

// readObjects decodes every document of r (JSON or YAML), expanding Lists into their items.
func readObjects(r io.Reader, name string) ([]*unstructured.Unstructured, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objects []*unstructured.Unstructured
	for {
		var fields map[string]any
		if err := decoder.Decode(&fields); err != nil {
			if errors.Is(err, io.EOF) {
				return objects, nil
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if fields == nil {
			continue // an empty document
		}
		obj := &unstructured.Unstructured{Object: fields}
		if obj.IsList() {
			err := obj.EachListItem(func(item runtime.Object) error {
				objects = append(objects, item.(*unstructured.Unstructured))
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		objects = append(objects, obj)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "argocd-health:", err)
	os.Exit(1)
}
