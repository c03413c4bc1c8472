package charttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// scheme knows every kind the chart may render except ServiceMonitor, which
// has no k8s.io/api type (see serviceMonitor).
var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(appsv1.AddToScheme(scheme))
	utilruntime.Must(policyv1.AddToScheme(scheme))
	utilruntime.Must(networkingv1.AddToScheme(scheme))
}

// strictCodec decodes YAML the way the API server does with
// fieldValidation=Strict: an unknown or duplicate field is an error, and
// field names are case-sensitive.
var strictCodec = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// chart renders. Decoding rejects any field not listed here.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// DeepCopyObject makes serviceMonitor a runtime.Object; the tests never copy it.
func (s *serviceMonitor) DeepCopyObject() runtime.Object { c := *s; return &c }

// rendered is every object of one release, by kind, in manifest order.
type rendered struct {
	all             []runtime.Object
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	pvcs            []*corev1.PersistentVolumeClaim
	serviceAccounts []*corev1.ServiceAccount
	pdbs            []*policyv1.PodDisruptionBudget
	ingresses       []*networkingv1.Ingress
	netpols         []*networkingv1.NetworkPolicy
	serviceMonitors []*serviceMonitor
	prometheusRules []*prometheusRule
}

// kinds counts the objects of each kind.
func (r *rendered) kinds() map[string]int {
	n := map[string]int{}
	for _, o := range r.all {
		n[o.GetObjectKind().GroupVersionKind().Kind]++
	}
	return n
}

var sourceLine = regexp.MustCompile(`(?m)^# Source: .*$`)

// decodeManifest splits a Helm manifest into its documents and strictly
// decodes each into its API type. Every problem fails the test.
func decodeManifest(t *testing.T, manifest string) *rendered {
	t.Helper()
	r := &rendered{}
	for _, doc := range strings.Split(manifest, "\n---\n") {
		doc = strings.TrimPrefix(strings.TrimSpace(doc), "---")
		src := sourceLine.FindString(doc)
		if strings.TrimSpace(sourceLine.ReplaceAllString(doc, "")) == "" {
			continue
		}
		obj, err := decodeObject([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v\n%s", src, err, doc)
			continue
		}
		r.all = append(r.all, obj)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			r.deployments = append(r.deployments, o)
		case *corev1.Service:
			r.services = append(r.services, o)
		case *corev1.ConfigMap:
			r.configMaps = append(r.configMaps, o)
		case *corev1.Secret:
			r.secrets = append(r.secrets, o)
		case *corev1.PersistentVolumeClaim:
			r.pvcs = append(r.pvcs, o)
		case *corev1.ServiceAccount:
			r.serviceAccounts = append(r.serviceAccounts, o)
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, o)
		case *networkingv1.Ingress:
			r.ingresses = append(r.ingresses, o)
		case *networkingv1.NetworkPolicy:
			r.netpols = append(r.netpols, o)
		case *serviceMonitor:
			r.serviceMonitors = append(r.serviceMonitors, o)
		case *prometheusRule:
			r.prometheusRules = append(r.prometheusRules, o)
		default:
			t.Errorf("%s: unexpected object %T", src, obj)
		}
		checkMeta(t, src, obj)
	}
	if len(r.all) == 0 {
		t.Fatalf("manifest has no objects:\n%s", manifest)
	}
	return r
}

// decodeObject decodes one YAML document strictly.
func decodeObject(doc []byte) (runtime.Object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	if tm.APIVersion == "monitoring.coreos.com/v1" && tm.Kind == "ServiceMonitor" {
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		sm := &serviceMonitor{}
		if err := dec.Decode(sm); err != nil {
			return nil, fmt.Errorf("decode ServiceMonitor: %w", err)
		}
		if sm.Name == "" || len(sm.Spec.Selector.MatchLabels) == 0 || len(sm.Spec.Endpoints) == 0 {
			return nil, fmt.Errorf("ServiceMonitor needs metadata.name, spec.selector and spec.endpoints")
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Port == "" || !strings.HasPrefix(ep.Path, "/") {
				return nil, fmt.Errorf("ServiceMonitor endpoint needs a port name and a path: %+v", ep)
			}
		}
		return sm, nil
	}
	if tm.APIVersion == "monitoring.coreos.com/v1" && tm.Kind == "PrometheusRule" {
		return decodePrometheusRule(doc) // monitoring_test.go
	}
	obj, gvk, err := strictCodec.Decode(doc, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	if gvk.GroupVersion().String() != tm.APIVersion || gvk.Kind != tm.Kind {
		return nil, fmt.Errorf("decoded as %v, want %s %s", gvk, tm.APIVersion, tm.Kind)
	}
	return obj, nil
}

// checkMeta checks what the API server would refuse in metadata: names and
// labels that are not valid, and a namespace set in the template (Helm sets
// it at install).
func checkMeta(t *testing.T, src string, obj runtime.Object) {
	t.Helper()
	m, err := metaOf(obj)
	if err != nil {
		t.Errorf("%s: %v", src, err)
		return
	}
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	nameCheck := validation.IsDNS1123Subdomain
	if kind == "Service" {
		nameCheck = validation.IsDNS1035Label
	}
	for _, msg := range nameCheck(m.Name) {
		t.Errorf("%s: %s name %q: %s", src, kind, m.Name, msg)
	}
	for k, v := range m.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			t.Errorf("%s: label key %q: %s", src, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			t.Errorf("%s: label %s value %q: %s", src, k, v, msg)
		}
	}
	for _, want := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
		if m.Labels[want] == "" {
			t.Errorf("%s: %s %s has no %s label", src, kind, m.Name, want)
		}
	}
}

func metaOf(obj runtime.Object) (*metav1.ObjectMeta, error) {
	if sm, ok := obj.(*serviceMonitor); ok {
		return &sm.ObjectMeta, nil
	}
	if pr, ok := obj.(*prometheusRule); ok {
		return &pr.ObjectMeta, nil
	}
	a, ok := obj.(metav1.ObjectMetaAccessor)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return a.GetObjectMeta().(*metav1.ObjectMeta), nil
}
